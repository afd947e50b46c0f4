"""The field overlay: the same drift the samplers use, signed by the run's direction."""

import numpy as np
import pytest
import torch

from models.overlay import arrow_grid, field_frames
from models.run.config import RunConfig
from models.run.simulate import build
from models.samplers import eta_drift


@pytest.mark.parametrize("process", ["vp", "fm"])
@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["forward", "reverse"])
def test_overlay_fields_match_the_sampler_and_point_along_the_motion(process, direction):
    cfg = RunConfig(process=process, kind="sde", eta=0.5)
    path, _, field = build(cfg)
    pts = arrow_grid(cfg.extent, 6)
    times = torch.tensor([0.1, 0.5, 0.9])
    if direction < 0:
        times = times.flip(0)
    out = field_frames(field, path, pts, times, 0.5)
    for i, t in enumerate(times.tolist()):
        drift = eta_drift(field, path, pts, t, direction, 0.5).numpy()
        np.testing.assert_allclose(out["drift"][i], direction * drift, rtol=1e-5, atol=1e-6)
        f = field(pts, t, ("velocity", "score"))
        np.testing.assert_allclose(out["velocity"][i], direction * f["velocity"].numpy(), rtol=1e-6)
        np.testing.assert_allclose(out["score"][i], f["score"].numpy(), rtol=1e-6)


def test_overlay_is_finite_at_the_singular_end():
    cfg = RunConfig(process="fm", kind="sde", eta=1.0)
    path, _, field = build(cfg)
    out = field_frames(field, path, arrow_grid(cfg.extent, 4), torch.tensor([0.0, 1.0]), 1.0)
    assert all(np.isfinite(v).all() for v in out.values())

"""Runs from a data set as the source, through ``simulate`` and the app (docs/MATH.md §5.1): they
start on the source, land on the data (against fresh samples of it), and what cannot apply is
refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from app.session.state import FlowState
from models.datasets import make_dataset
from models.run.config import RunConfig
from models.run.reference import with_sw2
from models.run.simulate import simulate

SOURCE = dict(process="fm", dataset="moons", source="8gaussians")


def _nearest_centre_distance(x: np.ndarray, name: str) -> np.ndarray:
    centres = make_dataset(name).reference().points.numpy()
    return np.sqrt(((x[:, None, :] - centres[None]) ** 2).sum(-1)).min(1)


def test_a_reverse_run_starts_on_the_source_and_lands_on_the_data():
    result = simulate(RunConfig(**SOURCE, solver="heun", steps=50, particles=2000))
    sigma_s = make_dataset("8gaussians").reference().sigma
    start = _nearest_centre_distance(result.trajectories[0], "8gaussians")
    assert np.quantile(start, 0.99) < 4 * sigma_s  # each start sits on one of the 8 modes
    assert with_sw2(result).sw2_ratio < 1.5  # SW2 to fresh moons over the noise floor


def test_the_conditional_paths_join_a_source_sample_to_a_data_sample():
    result = simulate(RunConfig(**SOURCE, kind="conditional", direction="forward", steps=20,
                                particles=1000))  # fmt: skip
    x0, x1 = result.trajectories[0], result.trajectories[-1]
    mid = result.trajectories[10]
    np.testing.assert_allclose(mid, 0.5 * (x0 + x1), atol=1e-5)  # straight lines, a = 1 − t
    assert np.quantile(_nearest_centre_distance(x1, "8gaussians"), 0.99) < 0.6


def test_a_forward_ode_carries_the_data_onto_the_source():
    result = simulate(RunConfig(**SOURCE, solver="heun", direction="forward", steps=50,
                                particles=1000))  # fmt: skip
    end = _nearest_centre_distance(result.trajectories[-1], "8gaussians")
    assert np.median(end) < 0.2


def test_the_exact_density_and_the_pde_follow_the_pairs():
    result = simulate(RunConfig(**SOURCE, steps=20, particles=500, resolution=64, pde=True))
    assert result.exact_density is not None and result.pde_density is not None
    cell = (8 / 64) ** 2
    assert result.exact_density.sum(axis=(1, 2)) * cell == pytest.approx(1, abs=0.02)
    assert result.pde_mass[-1] == pytest.approx(1, abs=0.02)


@pytest.mark.parametrize(
    "settings, words",
    [
        (dict(kind="sde"), "run the ODE or the conditional paths"),
        (dict(log_density=True), "log-density"),
        (dict(process="vp"), "flow matching"),
        (dict(source="nowhere"), "unknown source"),
    ],
)
def test_what_cannot_apply_is_refused_in_one_line(settings, words):
    with pytest.raises(ValueError, match=words) as caught:
        RunConfig(**{**SOURCE, **settings}).validate()
    assert "\n" not in str(caught.value)


def test_the_app_shows_the_exact_field_where_a_learned_one_was_asked():
    state = FlowState(**SOURCE, field="pretrained", steps=10, particles=200)
    state.recompute()
    assert state.result.source.kind == "exact"
    assert "flow from N(0, I)" in state.notice
    start = _nearest_centre_distance(state.result.trajectories[0], "8gaussians")
    assert np.quantile(start, 0.9) < 0.5  # and it is the source's flow: starts on the 8 modes

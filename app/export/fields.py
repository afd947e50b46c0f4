"""The overlay fields of a finished run, for ``flowscope export``.

The same fields the app computes for its arrows (``FlowState.field_arrows``; a test checks
they agree): the field that moved the particles, sampled on the page's grid of arrow tails at
every frame, and for a learned field its difference from the exact one.
"""

from __future__ import annotations

import torch

from app.session.state import ARROWS
from models.overlay import arrow_grid, difference_frames, field_frames
from models.run.simulate import RunResult, build


def overlay_fields(result: RunResult, dataset=None, make_field=None) -> dict:
    """{kind: (T+1, P, 2)} for every overlay kind, and 'points' (P, 2); 'difference' only
    when ``make_field`` (a learned field, as ``simulate`` takes it) moved the particles."""
    config = result.config
    path, _, exact = build(config, dataset)
    field = exact if make_field is None else make_field(path, exact)
    points = arrow_grid(config.extent, ARROWS)
    times = torch.from_numpy(result.times)
    arrows = field_frames(field, path, points, times, config.noise_level)
    if make_field is not None:
        arrows["difference"] = difference_frames(field, exact, points, times)
    arrows["points"] = points.numpy()
    return arrows

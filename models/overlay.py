"""Fields sampled on a coarse grid for every frame, for the arrow overlay of the views."""

from __future__ import annotations

import numpy as np
import torch

from models.fields import ExactField
from models.paths import GaussianPath

OVERLAY_KINDS = ("velocity", "score", "drift")


def arrow_grid(extent: tuple[float, float, float, float], n: int) -> torch.Tensor:
    """Centres of an n x n grid over the extent, shape (n², 2) float32, row-major in y."""
    x0, x1, y0, y1 = extent
    xs = x0 + (x1 - x0) * (torch.arange(n) + 0.5) / n
    ys = y0 + (y1 - y0) * (torch.arange(n) + 0.5) / n
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).float()


def field_frames(
    field: ExactField, path: GaussianPath, points: torch.Tensor, times, eta: float
) -> dict[str, np.ndarray]:
    """Velocity, score and sampler drift at ``points`` for every time.

    Args:
        field: the exact field.
        path: its path.
        points: where to evaluate, shape (P, 2).
        times: the run's times, shape (F,); their order gives the direction of the drift.
        eta: the run's noise level; the drift is v + sign(dt) ½ η² g² s (docs/MATH.md §4).

    Returns:
        {kind: (F, P, 2) float32}; non-finite values (g² at the singular end) are set to 0.
        Velocity and drift are multiplied by sign(dt), so that for a reverse run they point
        the way particles move; the score, a gradient of log p_t, is not.
    """
    ts = [float(t) for t in times]
    sign = 1.0 if ts[-1] >= ts[0] else -1.0
    out = {k: np.zeros((len(ts), len(points), 2), np.float32) for k in OVERLAY_KINDS}
    g2 = path.coefficients(torch.tensor(ts, dtype=torch.float64)).diffusion2.tolist()
    for i, t in enumerate(ts):
        f = field(points, t, ("velocity", "score"))
        v, s = f["velocity"].cpu().numpy(), f["score"].cpu().numpy()
        out["velocity"][i] = sign * v
        out["score"][i] = s
        with np.errstate(invalid="ignore", over="ignore"):  # g² = ∞ at the singular end
            # the η-family drift of models.samplers.eta_drift, from the values in hand
            drift = v + sign * 0.5 * eta**2 * g2[i] * s if eta > 0 else v
            out["drift"][i] = sign * drift
    for v in out.values():
        np.nan_to_num(v, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def difference_frames(learned, exact, points: torch.Tensor, times) -> np.ndarray:
    """Learned minus exact velocity at ``points`` (P, 2) for every time: (F, P, 2) float32,
    multiplied by sign(dt) like the velocity of :func:`field_frames`."""
    ts = [float(t) for t in times]
    sign = 1.0 if ts[-1] >= ts[0] else -1.0
    out = np.zeros((len(ts), len(points), 2), np.float32)
    with torch.no_grad():
        for i, t in enumerate(ts):
            diff = learned(points, t)["velocity"] - exact(points, t)["velocity"]
            out[i] = sign * diff.cpu().numpy()
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def run_overlay(result, n: int, difference: bool = False) -> dict:
    """The overlay fields of a finished run (``models.run.result.RunResult``): {kind:
    (T+1, P, 2)} of the field that moved its particles (``result.source``, guided as the run
    was) on an n x n grid of tails, 'points' (P, 2), and with ``difference`` (a learned field)
    its difference from the exact field (guided alike).
    """
    from models.run.guided import guided_field
    from models.run.simulate import build  # the run module imports nothing of this one

    config, make = result.config, result.source.make
    path, _, exact = build(config, result.dataset)
    field = exact if make is None else make(path, exact)
    if config.guided:  # the guided field moved the particles; the difference is guided alike
        probes = torch.Generator().manual_seed(config.seed + 1)
        guided_exact = guided_field(config, exact, exact, probes)
        field = guided_exact if field is exact else guided_field(config, field, exact, probes)
        exact = guided_exact
    points = arrow_grid(config.extent, n)
    times = torch.from_numpy(result.times)
    arrows = field_frames(field, path, points, times, config.noise_level)
    if difference:
        arrows["difference"] = difference_frames(field, exact, points, times)
    arrows["points"] = points.numpy()
    return arrows

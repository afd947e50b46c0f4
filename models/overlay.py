"""Fields sampled on a coarse grid for every frame, for the arrow overlay of the views: the
velocity, score and sampler drift, and the probability current with its drift and diffusion
parts (``models/current.py``, docs/MATH.md §6.1)."""

from __future__ import annotations

import numpy as np
import torch

from models.current import CURRENT_KINDS, grid_density, sde_coefficients, split_current, splits
from models.fields import ExactField
from models.paths import GaussianPath

FIELD_KINDS = ("velocity", "score", "drift")
OVERLAY_KINDS = (*FIELD_KINDS, *CURRENT_KINDS)


def arrow_grid(extent: tuple[float, float, float, float], n: int) -> torch.Tensor:
    """Centres of an n x n grid over the extent, shape (n², 2) float32, row-major in y."""
    x0, x1, y0, y1 = extent
    xs = x0 + (x1 - x0) * (torch.arange(n) + 0.5) / n
    ys = y0 + (y1 - y0) * (torch.arange(n) + 0.5) / n
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).float()


def field_frames(
    field: ExactField,
    path: GaussianPath,
    points: torch.Tensor,
    times,
    eta: float,
    current=None,
    density: torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    """Velocity, score and sampler drift at ``points`` for every time, and the probability
    current of ``current``'s density.

    Args:
        field: the field that moves the particles.
        path: its path.
        points: where to evaluate, shape (P, 2).
        times: the run's times, shape (F,); their order gives the direction of the drift.
        eta: the run's noise level; the drift is v + sign(dt) ½ η² g² s (docs/MATH.md §4).
        current: the field whose density's current J = v p is drawn (``field`` itself: its
            values are reused), with its drift and diffusion parts where they exist
            (``models.current.splits``); None: no current kinds.
        density: ``current``'s p_t at the points for each time, shape (F, P)
            (``models.current.grid_density``); None: exp of its ``log_density``.

    Returns:
        {kind: (F, P, 2) float32}; non-finite values (g² at the singular end) are set to 0.
        Velocity, drift and the three current kinds are multiplied by sign(dt), so that for a
        reverse run they point the way particles and probability move in the run's own time
        (docs/MATH.md §6.1); the score, a gradient of log p_t, is not.
    """
    ts = [float(t) for t in times]
    sign = 1.0 if ts[-1] >= ts[0] else -1.0
    shape = (len(ts), len(points), 2)
    out = {k: np.zeros(shape, np.float32) for k in FIELD_KINDS}
    f_sde, g2 = sde_coefficients(path, ts)
    held = None if current is None else {k: np.zeros(shape, np.float32) for k in ("v", "s")}
    for i, t in enumerate(ts):
        f = field(points, t, ("velocity", "score"))
        v, s = f["velocity"].cpu().numpy(), f["score"].cpu().numpy()
        out["velocity"][i] = sign * v
        out["score"][i] = s
        with np.errstate(invalid="ignore", over="ignore"):  # g² = ∞ at the singular end
            # the η-family drift of models.samplers.eta_drift, from the values in hand
            drift = v + sign * 0.5 * eta**2 * g2[i] * s if eta > 0 else v
            out["drift"][i] = sign * drift
        if held is not None:  # the current's field's values (in hand if it is this one)
            with torch.no_grad():
                c = f if current is field else current(points, t, ("velocity", "score"))
            held["v"][i], held["s"][i] = c["velocity"].cpu(), c["score"].cpu()
    if held is not None:
        if density is None:
            with torch.no_grad():
                density = torch.stack([torch.exp(current.log_density(points, t)).cpu() for t in ts])
        score = torch.from_numpy(held["s"]) if splits(current) else None
        parts = split_current(f_sde, g2, points, torch.as_tensor(density),
                              torch.from_numpy(held["v"]), score)  # fmt: skip
        out.update({kind: sign * value.numpy() for kind, value in parts.items()})
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


def current_source(config, field, exact):
    """The field whose density's current a run's overlay draws (docs/MATH.md §6.1): the field
    that moves the particles where it has a closed-form density (the exact field, the M
    training points', a flow from a source), else (a learned field) the exact one, whose p_t
    the network learns; None for a guided run, whose particles follow no density in closed
    form (the tilted target is not the guided flow's marginal, docs/MATH.md §12)."""
    if config.guided:
        return None
    return field if hasattr(field, "log_density") else exact


def overlay_refusal(config, kind: str) -> str | None:
    """Why a run of ``config`` has no arrows of overlay ``kind`` (one line), or None."""
    if kind in CURRENT_KINDS and config.guided:
        return (f"--overlay {kind}: a guided run's particles follow no density in closed "
                "form, so it has no probability current to draw")  # fmt: skip
    if kind in CURRENT_KINDS[:2] and config.source != "gaussian":
        return (f"--overlay {kind}: a flow from a data set as the source is no diffusion, so "
                "its current J = ρv does not split into drift and diffusion (--overlay "
                "current draws J)")  # fmt: skip
    return None


def run_overlay(result, n: int, difference: bool = False) -> dict:
    """The overlay fields of a finished run (``models.run.result.RunResult``): {kind:
    (T+1, P, 2)} of the field that moved its particles (``result.source``, guided as the run
    was) on an n x n grid of tails, 'points' (P, 2), and with ``difference`` (a learned field)
    its difference from the exact field (guided alike). The current kinds are those of
    :func:`current_source`'s density (none for a guided run, J alone for a flow from a
    source).
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
    current = current_source(config, field, exact)
    density = None if current is None else grid_density(current, times, config.extent, n)
    arrows = field_frames(field, path, points, times, config.noise_level, current, density)
    if difference:
        arrows["difference"] = difference_frames(field, exact, points, times)
    arrows["points"] = points.numpy()
    return arrows

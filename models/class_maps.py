"""A class of a mixture on a grid: where points come from, p(c | x_t), and the tilted target
p_{w,t} ∝ p_t(x|c)^w p_t(x)^(1−w) that guidance is the score of (docs/MATH.md §12).

Both are ratios of sums of Gaussian kernels over the components, which far from the data
underflow in any float type while their ratios do not. So every sum is kept as a logarithm:
the isotropic Gaussian factorises over the axes, and with each axis's largest logit taken out
a class's sum at every cell is one (H, M_c) @ (M_c, W) product of per-axis factors in float64
(:func:`_class_logs`); cells where the factorised sum still underflows (the best component per
axis is not the best jointly, at small c) are summed point by point with ``logsumexp``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.datasets import Reference
from models.density import Grid
from models.evaluation.metrics import sliced_w2
from models.fields import ExactField

FALLBACK_CELLS = 4096  # cells summed point by point at once: (4096, M) float64 logits


def _class_logs(exact: ExactField, t: float, xs: Tensor, ys: Tensor, keep: Tensor):
    """(log Σ_i k_i, log Σ_{i∈c} k_i) at the cells xs × ys, each (H, W) float64, with
    k_i = exp(−|x − a x_i|² / 2c²) (log 0 = −inf where the class has no weight at all).

    Args: xs (W,), ys (H,) the cell centres; keep (M,) bool, the class's components."""
    k, pts = exact.scalars(t), exact.reference.points.double()
    logits = [(u[:, None] - k["a"] * pts[:, axis]) ** 2 / (-2 * k["c2"])  # (n, M) per axis
              for u, axis in ((xs, 0), (ys, 1))]  # fmt: skip
    shifts = [lg.amax(1, keepdim=True) for lg in logits]  # each axis's largest logit
    fx, fy = (torch.exp(lg - s) for lg, s in zip(logits, shifts, strict=True))
    base = shifts[1] + shifts[0].T  # (H, W): what the shifts took out
    with torch.no_grad():
        total, mine = fy @ fx.T, fy[:, keep] @ fx[:, keep].T
    log_all, log_class = torch.log(total) + base, torch.log(mine) + base
    lost = ~(total > 1e-250)  # underflowed (or NaN): point by point
    if lost.any():
        cells = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[lost]
        parts = [], []
        for chunk in cells.split(FALLBACK_CELLS):
            sq = ((chunk[:, None, :] - k["a"] * pts[None]) ** 2).sum(-1) / (-2 * k["c2"])
            parts[0].append(torch.logsumexp(sq, 1))
            parts[1].append(torch.logsumexp(sq[:, keep], 1) if keep.any() else
                            torch.full((len(chunk),), -math.inf, dtype=sq.dtype))  # fmt: skip
        log_all[lost], log_class[lost] = torch.cat(parts[0]), torch.cat(parts[1])
    return log_all, log_class


def posterior_frames(reference: Reference, path, times: Tensor, grid: Grid, label: int) -> Tensor:
    """p(c | x_t) of class ``label`` at the grid's cell centres for each time, (F, H, W) float32
    in [0, 1]: the map of where a point at time t comes from. (π_c p_t(x|c) / p_t(x) is the
    class's share of the kernels' sum: equal weights.)"""
    exact, keep = ExactField(path, reference, dtype=torch.float64), reference.labels == label
    xs, ys = grid.centres()
    out = []
    for t in times.tolist():
        log_all, log_class = _class_logs(exact, t, xs, ys, keep)
        out.append(torch.exp(log_class - log_all).clamp(0, 1).float())
    return torch.stack(out)


def tilted_density(
    reference: Reference, path, times: Tensor, grid: Grid, label: int, weight: float
) -> Tensor:
    """p_{w,t}(x) ∝ p_t(x|c)^w p_t(x)^(1−w), normalised on the grid, (F, H, W) float32: the
    density whose score the guided field is at each time (and at t = 0 the target people
    expect guidance to sample).

    In the log domain, log p_t + w (log p(c|x_t) − log π_c): no negative power of a density
    that underflows, and no floor where it does (the constants drop in the normalisation).
    """
    exact, keep = ExactField(path, reference, dtype=torch.float64), reference.labels == label
    if not bool(keep.any()):
        raise ValueError(f"the data set has no class {label}")
    xs, ys = grid.centres()
    dx, dy = grid.cell
    out = []
    for t in times.tolist():
        log_all, log_class = _class_logs(exact, t, xs, ys, keep)
        # −inf where the class has no weight: −1e300, so that w = 0 gives p_t itself
        tilt = (log_class - log_all).clamp(min=-1e300)
        log_p = log_all + float(weight) * tilt
        dens = torch.exp(log_p - log_p.max())
        out.append((dens / (dens.sum() * dx * dy)).float())
    return torch.stack(out)


def sample_grid(density: Tensor, grid: Grid, n: int, generator: torch.Generator) -> Tensor:
    """n points drawn from a density on the grid (H, W): a cell by its mass, then uniformly
    within it, (n, 2) float32. ValueError for a density with no mass (or not finite)."""
    probs = density.reshape(-1).double().clamp_min(0)
    total = float(probs.sum())
    if not (math.isfinite(total) and total > 0):
        raise ValueError("the density to sample has no mass on its grid")
    cells = torch.multinomial(probs / total, n, replacement=True, generator=generator)
    (x0, x1, y0, y1), (ny, nx) = grid.extent, grid.shape
    jitter = torch.rand((n, 2), generator=generator, dtype=torch.float64)
    col, row = cells % nx, cells // nx
    x = x0 + (col + jitter[:, 0]) * (x1 - x0) / nx
    y = y0 + (row + jitter[:, 1]) * (y1 - y0) / ny
    return torch.stack([x, y], 1).float()


# The target's sampling grid: cells of σ_d / 4 over the data's box ± 6 σ_d (the jitter within a
# cell then adds a variance h²/12 < 0.6 % of σ_d²), at most MAX_TARGET_CELLS per axis; data that
# would need cells wider than σ_d / 2 (a few points spread over ±1000 at a small bandwidth) get
# no target readout, rather than one that measures the grid.
MIN_TARGET_CELLS, MAX_TARGET_CELLS = 64, 1024


def target_grid(reference: Reference) -> Grid | None:
    """The grid the tilted target is drawn on, or None where it cannot resolve σ_d."""
    pts, sigma = reference.points.double(), float(reference.sigma)
    lo, hi = pts.min(0).values - 6 * sigma, pts.max(0).values + 6 * sigma
    span = float((hi - lo).max())
    cells = max(MIN_TARGET_CELLS, math.ceil(span / (sigma / 4)))
    if span / min(cells, MAX_TARGET_CELLS) > sigma / 2:
        return None
    cells = min(cells, MAX_TARGET_CELLS)
    return Grid((float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])), (cells, cells))


def target_gap(samples: Tensor, reference: Reference, path, label: int, weight: float,
               group: int = 1000, groups: int = 4, seed: int = 7) -> float | None:  # fmt: skip
    """SW2 of the samples (n, 2) to the tilted target at t = 0 over its noise floor: 1 means
    "as close as another sample of p_w". Up to ``groups`` groups of ``group`` samples are each
    compared with their own draw of the target, the floor with as many pairs of draws (one
    group's ratio swings by ±50 % with the sample drawn). None where the data's extent is too
    many kernel widths for a grid (:func:`target_grid`)."""
    grid = target_grid(reference)
    if grid is None:
        return None
    parts = samples.float().split(group)[:groups]
    parts = [p for p in parts if len(p) == len(parts[0])]  # equal sizes: one floor fits all
    frame = tilted_density(reference, path, torch.zeros(1, dtype=torch.float64), grid,
                           label, weight)[0]  # fmt: skip
    gen, n = torch.Generator().manual_seed(seed), len(parts[0])
    draw = lambda: sample_grid(frame, grid, n, gen)  # noqa: E731
    gap = sum(sliced_w2(p, draw(), generator=gen) for p in parts) / len(parts)
    floor = sum(sliced_w2(draw(), draw(), generator=gen) for _ in parts) / len(parts)
    return gap / floor

"""How much work a grid solve does (docs/MATH.md §6): at which frames the field is evaluated
(knots), the most advection sub-steps a solve may take, and the subnormal values that would
make each sub-step slow.
"""

from __future__ import annotations

import numpy as np
import torch

from models.density import Grid
from models.paths import GaussianPath

KNOT_STEP = 0.1  # |Δ log c²| between field evaluations (field_knots); 0: every frame
KNOT_GAP = 8  # at most this many frames between two evaluations of the field
BEND = 0.2  # a knot also where log c² leaves its chord by BEND · step (``_bends``)
# Work bound of one solve: at most this many advection sub-steps per cell across the grid's
# longer side (the CFL count grows with 1/Δ). Default runs need at most ~36 (T = 20..1000, every
# data set, VP/FM/trig, ODE/SDE, both directions, 96² and 128²); past the bound (few SDE steps,
# or a field very fast at the box's edge; docs/MATH.md §6) a solve is refused.
SUBSTEPS_PER_CELL = 100


def field_knots(path: GaussianPath, times, sigma: float, step: float = KNOT_STEP) -> list[int]:
    """Indices of the frame times where the field is evaluated: the first, the last, and each
    frame where log c², c² = a² σ_d² + b² (the width of every mixture component), has moved by
    ``step`` or more since the previous knot. Between knots the field is interpolated linearly
    in t: the exact field's only length scale is c, so it changes little while c does (near
    the noisy end of VP, c stays ≈ 1 for a third of the run). A knot also comes before
    log c² bends away from its chord since the last knot (``_bends``).
    """
    ts = [float(t) for t in times]
    co = path.coefficients(torch.as_tensor(ts, dtype=torch.float64))
    logc2 = torch.log(co.a**2 * sigma**2 + co.b**2).tolist()
    knots = [0]
    for i in range(1, len(logc2) - 1):
        k = knots[-1]
        if abs(logc2[i] - logc2[k]) >= step or i - k >= KNOT_GAP or \
                _bends(ts, logc2, k, i + 1, BEND * step):  # fmt: skip
            knots.append(i)
    return [*knots, len(logc2) - 1] if len(logc2) > 1 else knots


def _bends(ts: list[float], values: list[float], k: int, j: int, tol: float) -> bool:
    """Whether ``values`` between frames k and j leave the chord from k to j by ``tol`` or
    more: a knot must come before j. Where log c² starts to move from rest (sub-VP near the
    data end: c² even dips below σ_d² first) the field's speed grows from 0 within a few
    frames that change log c² by less than ``step``, and one linear interpolation over them
    moved the density too early (TV 0.062 at 128², 8 gaussians forward; 0.024 with BEND)."""
    slope = (values[j] - values[k]) / (ts[j] - ts[k])
    return any(abs(values[m] - values[k] - slope * (ts[m] - ts[k])) >= tol for m in range(k + 1, j))


def flush_subnormal(rho: np.ndarray) -> None:
    """Set ρ's subnormal cells (|ρ| < 2.2e-308) to 0, in place. Where the mass has left most of
    the box, they fill it and make each sub-step 10-20x slower; they are 0 in the float32
    frames either way."""
    np.putmask(rho, np.abs(rho) < _TINY, 0.0)


_TINY = np.finfo(np.float64).tiny


def substep_budget(grid: Grid) -> int:
    """The most advection sub-steps one solve on ``grid`` may take: ``SUBSTEPS_PER_CELL`` per
    cell across its longer side (9,600 at 96², 12,800 at 128²)."""
    return SUBSTEPS_PER_CELL * max(grid.shape)


class SubstepBudgetError(ValueError):
    """A solve that would take more advection sub-steps than ``substep_budget``."""

    def __init__(self, needed: int, budget: int, more: bool):
        at_least = "at least " if more else ""
        super().__init__(
            f"the PDE needs {at_least}{needed:,} sub-steps for this run, more than its "
            f"{budget:,} (few SDE steps make each step long, or the field is very fast at the "
            "edge of the box); use more steps, or show the particles' density"
        )

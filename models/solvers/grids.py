"""Time grids for solvers: uniform, log-SNR, Karras and quadratic (docs/MATH.md §4).

:func:`make_times` gives a strictly monotone float64 (T+1,) grid from ``start`` to ``end``
(either order), whose ends are exactly ``start`` and ``end``. The log-SNR and Karras grids are
spaced in λ = log(a/b) and σ = b/a = e^{−λ}, and mapped back to t by bisection on λ(t)
(strictly decreasing on every path). λ is infinite at the ends of some paths (λ(0) = +∞
everywhere, λ(1) = −∞ on fm and trig), so σ is clamped into [SIGMA_MIN, SIGMA_MAX] before the
spacing; the grid's own end points stay exactly ``start`` and ``end`` (they replace the
clamped first and last nodes), so a run from t = 1 starts at 1 and its first step reaches the
grid's second node (the exact and exponential steps are finite there, see
models/solvers/exponential.py).
"""

from __future__ import annotations

import math
import operator

import torch
from torch import Tensor

from models.paths import GaussianPath

GRIDS = ("uniform", "logsnr", "karras", "quadratic")
# Where a reverse run stops (how close to t = 0): 1e-3 for every process. It is the learned
# field's own t_min (models/learned/network.py clamps times below it), λ is finite there, and
# b(t_min) is 0.011 (VP linear), 0.001 (fm), 0.0016 (trig): below every data set's σ_d ≥ 0.04,
# so the particles are as sharp as the data.
DEFAULT_T_MIN = {"vp": 1e-3, "fm": 1e-3, "trig": 1e-3}
# σ = b/a clamp for the log-SNR and Karras grids. 1e3 is above every VP schedule's own σ(1) at
# its default β (linear 151, cosine 87), so VP grids are not changed; on fm and trig the grid's
# first node t(σ = 1e3) (0.999, 0.99936) is replaced by t = 1 itself. 1e-4 is below σ(t_min)
# of every path, so it only acts on grids that run to t = 0 itself.
SIGMA_MIN, SIGMA_MAX = 1e-4, 1e3
KARRAS_RHO = 7.0
BISECTIONS = 100  # halvings of [lo, hi]: float64 resolution for t down to 1e-17 of the span


def default_t_min(path: GaussianPath | str) -> float:
    """How close to t = 0 a reverse run on this process stops by default (see DEFAULT_T_MIN)."""
    name = path if isinstance(path, str) else path.name
    return DEFAULT_T_MIN.get(name, 1e-3)


def lambda_of(path: GaussianPath, t: Tensor) -> Tensor:
    """λ(t) = log a − log b, float64 of t's shape: −∞ where a = 0, +∞ where b = 0."""
    c = path.coefficients(t.to(torch.float64))
    return torch.log(c.a) - torch.log(c.b)


def t_of_lambda(path: GaussianPath, lam: Tensor, lo: float, hi: float) -> Tensor:
    """The t in [lo, hi] with λ(t) = lam (vectorized bisection; λ decreases in t), float64 of
    lam's shape. Targets outside [λ(hi), λ(lo)] land on the nearer end."""
    lam = lam.to(torch.float64)
    left = torch.full_like(lam, lo)
    right = torch.full_like(lam, hi)
    for _ in range(BISECTIONS):
        mid = 0.5 * (left + right)
        above = lambda_of(path, mid) > lam  # λ(mid) above the target: the root is right of mid
        left = torch.where(above, mid, left)
        right = torch.where(above, right, mid)
    return 0.5 * (left + right)


def _sigma_range(path: GaussianPath, t_noise: float, t_data: float) -> tuple[float, float]:
    """(σ at the noise end, σ at the data end), clamped into [floor, SIGMA_MAX]: the floor is
    SIGMA_MIN, or σ(0) where that is positive and lower (ve and edm start at σ_min > 0 and
    their λ is finite at t = 0, so their grids keep their own σ_min, EDM's discretization)."""
    lam = lambda_of(path, torch.tensor([t_noise, t_data, 0.0], dtype=torch.float64))
    sigma = torch.exp(-lam).tolist()
    floor = min(SIGMA_MIN, sigma[2]) if sigma[2] > 0 else SIGMA_MIN
    sigma = [min(max(s, floor), SIGMA_MAX) for s in sigma[:2]]
    if not sigma[0] > sigma[1]:
        raise ValueError(
            f"t {t_data:g}..{t_noise:g} lies outside the σ range {floor:g}..{SIGMA_MAX:g} "
            "that the log-SNR and Karras grids cover; use the uniform grid"
        )
    return sigma[0], sigma[1]


def _descending(path: GaussianPath, grid: str, steps: int, hi: float, lo: float) -> Tensor:
    """The grid from hi down to lo (hi > lo), float64 (steps+1,), before its ends are pinned."""
    frac = torch.arange(steps + 1, dtype=torch.float64) / steps  # 0 at hi, 1 at lo
    if grid == "uniform":
        return hi + (lo - hi) * frac
    if grid == "quadratic":  # t = lo + (hi − lo) u², u from 1 down to 0: dense near the data
        return lo + (hi - lo) * (1.0 - frac) ** 2
    sigma_hi, sigma_lo = _sigma_range(path, hi, lo)
    if grid == "logsnr":  # λ = −log σ uniform from the noise end to the data end
        lam = -math.log(sigma_hi) + (math.log(sigma_hi) - math.log(sigma_lo)) * frac
    elif grid == "karras":  # Karras et al. (2022), eq. 5: uniform in σ^{1/ρ}
        r = 1.0 / KARRAS_RHO
        lam = -KARRAS_RHO * torch.log(sigma_hi**r + (sigma_lo**r - sigma_hi**r) * frac)
    else:
        raise ValueError(f"unknown time grid {grid!r}; choose from {', '.join(GRIDS)}")
    return t_of_lambda(path, lam, lo, hi)


def make_times(
    path: GaussianPath, grid: str, steps: int, start: float, end: float | None = None
) -> Tensor:
    """A strictly monotone time grid, float64 (steps+1,), exactly ``start`` at index 0 and
    ``end`` at index steps, the other times strictly between them.

    Args:
        path: the Gaussian path (λ and σ of the log-SNR and Karras grids are its own).
        grid: one of GRIDS. ``quadratic``: t = lo + (hi − lo) u², u uniform, so steps shrink
            towards the data end (t_i = t_min + (1 − t_min)(i/T)² for a run from 1 to t_min).
            ``karras``: σ_i = (σ_max^{1/ρ} + i/T (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, ρ = 7, from
            the noise end. Each is built from the noise end (the larger t) to the data end and
            reversed for a forward run, so a forward grid is the reverse grid played backwards.
        steps: T ≥ 1.
        start, end: in [0, 1], different; ``end`` defaults to the path's default t_min.
    """
    if end is None:
        end = default_t_min(path)
    start, end = float(start), float(end)
    try:
        count = operator.index(steps)  # int, numpy or torch integers; not 2.5
    except TypeError:
        count = 0
    if count < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    steps = count
    for name, value in (("start", start), ("end", end)):
        if not 0.0 <= value <= 1.0:  # NaN fails too
            raise ValueError(f"{name} must be a time in [0, 1], got {value!r}")
    if start == end:
        raise ValueError(f"start and end are the same time ({start!r})")
    hi, lo = max(start, end), min(start, end)
    times = _descending(path, grid, steps, hi, lo).clamp(lo, hi)
    times[0], times[-1] = hi, lo
    if start < end:
        times = times.flip(0)
    gaps = times.diff() * math.copysign(1.0, end - start)
    if not bool((gaps > 0).all()):
        raise ValueError(
            f"{steps} steps of the {grid} grid between t = {lo:g} and {hi:g} are not strictly "
            "monotone in float64 (two times coincide); use fewer steps or another grid"
        )
    return times.contiguous()

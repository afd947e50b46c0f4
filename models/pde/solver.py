"""The Eulerian view solved: Fokker–Planck (continuity for D = 0) on the grid (docs/MATH.md §6).

    ∂ρ/∂t + ∇·(μ ρ) = D Δρ,    μ = η-family drift (models/samplers.py ``eta_drift``),
                               D = ½ η² g(t)²

Finite volumes on the cells of a :class:`models.density.Grid`; ρ holds cell averages in float64.
Each frame interval [t_k, t_k+1] is Strang-split:

- advection over the first half of the frame in n/2 sub-steps (all n where η = 0), in flux
  form on the cell faces: MUSCL reconstruction with a slope limiter (monotonized central by
  default, ``DEFAULT_LIMITER``) and upwind fluxes, two-stage SSP Runge–Kutta (Heun); compiled
  (models/accel/pde_kernels.py). Zero density outside the box, so boundary faces only carry
  outflow, which is accumulated. Mass is conserved by construction.
- the frame's noise, exactly, in one step (``models/pde/steps.py``; separable, so two (H, H)
  and (W, W) matrix products; kernel mass that would land outside the box is outflow):
  - while the noise dominates the signal (b ≥ a at both frame ends) and spreads each cell by
    more than a cell over the frame: the diffusion together with the score's linear part,
    D (Δρ + ∇·(x ρ)/c²), an Ornstein–Uhlenbeck step solved exactly (``relax``); the
    advection then carries only v and the score's remainder s + x/c², which is small there.
    Explicit, that linear drift set SDE solves' sub-step count (D|x|/c² reaches 100 at the
    box's edge on flow matching at t = 0.99); carried with the noise, η = 1 solves take
    2-4x fewer sub-steps and reach the same or a smaller TV (``benchmarks/bench_pde.py``).
    Near the data end (b < a) the remainder a E[x₀|x]/c² is as large as the linear part and
    of opposite sign; split, the two made a TV of 0.027 at 256² (VP moons, t = 0.05).
  - otherwise the diffusion alone: D does not depend on x, so the step is a convolution with
    the discrete heat kernel e^{-s} I_n(s), s = 2∫D dt / Δx² (the exact solution of the
    semi-discrete heat equation, variance s cells² for any s, stable at any step).
- advection over the second half of the frame.

The noise in the middle takes one matrix step per frame; in two halves around the advection
it took two, for the same TV to ±0.001 (``bench_pde.py``, 128², all 24 cases). Splitting per
sub-step (two heat steps per sub-step, where SDE runs took 500-2,000 sub-steps) cost 2x the
time and moved the TV by at most 0.003.

Sub-step rule: n = ⌈ |h| · max_cells Σ_faces (outward speed) / Δ / CFL ⌉ with CFL = ½ (the
positivity bound of limited MUSCL with SSP-RK2: the reconstructed face values stay within
[0, 2ρ] of their cell), the maximum over both frame ends. A solve may take at most
``substep_budget`` sub-steps in all (``SUBSTEPS_PER_CELL`` per cell across the grid); one that
needs more (few SDE steps, a field very fast at the box's edge) is refused with a ValueError
before the frame that would pass it. ``poll`` is called every ``POLL_SUBSTEPS`` sub-steps, so a
superseded run stops within a frame.

The field (velocity, and the score when η > 0) is evaluated on the (H+1)·(W+1) cell corners
(averaged in pairs to the faces: the trapezoid rule for the face-averaged normal velocity) at
knot frames only (``field_knots``: where log c² has moved by 0.1 since the last knot, at most 8
frames apart; about a third of the frames for T = 100) and interpolated linearly in t between
them, never per sub-step; μ = v + sign(h) ½ η² g(t)² s takes g² exactly at each stage time
(on flow matching g² grows as 1/(1 − t), which a linear interpolation of μ itself misses by a
TV of 0.03 at t ≈ 1).
Reverse runs (t decreasing) are solved in running time τ = −t: velocity −μ, the same D. On
singular paths (flow matching) frames later than ``stochastic_start`` use η = 0 (same
marginals), since g² → ∞ at t = 1.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import ndtr

from models.accel.pde_kernels import DEFAULT_LIMITER, LIMITERS, advect, mix_drift, outflow_rate
from models.density import Grid
from models.paths import GaussianPath
from models.pde.steps import diffuse, noise_variances, ou_transitions, relax, relaxes
from models.pde.work import (
    KNOT_STEP,
    SubstepBudgetError,
    field_knots,
    flush_subnormal,
    substep_budget,
)
from models.samplers import Field

CFL = 0.5
POLL_SUBSTEPS = 8  # ``poll`` is called every this many sub-steps within a frame


@dataclass
class PDEResult:
    """Arrays of one solve.

    Attributes:
        density: cell averages of ρ at each frame, (T+1, H, W) float32.
        mass: mass inside the box, Σ ρ dA, (T+1,) float64.
        outflow: mass that has left through the edges so far, (T+1,) float64.
        substeps: total number of advection sub-steps taken.
    """

    density: np.ndarray
    mass: np.ndarray
    outflow: np.ndarray
    substeps: int


# --- densities on the grid ------------------------------------------------------------------
def cell_average_mixture(means: np.ndarray, std: float | np.ndarray, grid: Grid) -> np.ndarray:
    """Cell averages of (1/M) Σ_i N(means_i, std² I), shape (H, W) float64.

    Each isotropic component separates, so the cell integral is a product of two 1D erf
    differences and the whole grid is one (H, M) @ (M, W) product.

    Args:
        means: component means, (M, 2).
        std: component standard deviation (> 0), a scalar.
    """
    dx, dy = grid.cell
    ex, ey = grid.edges()
    means = np.asarray(means, dtype=np.float64)
    cx = np.diff(ndtr((ex[None, :] - means[:, :1]) / std), axis=1)  # (M, W)
    cy = np.diff(ndtr((ey[None, :] - means[:, 1:]) / std), axis=1)  # (M, H)
    return (cy.T @ cx) / (len(means) * dx * dy)


def start_density(
    path: GaussianPath, points, sigma: float, t0: float, grid: Grid, forward: bool
) -> np.ndarray:
    """Cell-averaged start of a solve, (H, W) float64.

    Forward runs: the data mixture carried to t0 (the data density itself at t0 = 0),
    (1/M) Σ N(a x_i, c² I), c² = a² σ_d² + b². Reverse runs: N(0, b(t0)² I), the density the
    particle sampler draws from (``GaussianPath.prior``).
    """
    co = path.coefficients(torch.tensor(t0, dtype=torch.float64))
    a, b = float(co.a), float(co.b)
    if not forward:
        return cell_average_mixture(np.zeros((1, 2)), b, grid)
    pts = np.asarray(points, dtype=np.float64)
    return cell_average_mixture(a * pts, math.sqrt(a * a * sigma**2 + b * b), grid)


def total_variation(p: np.ndarray, q: np.ndarray, grid: Grid) -> np.ndarray:
    """½ Σ |p − q| dA for each frame of (F, H, W) densities, shape (F,)."""
    dx, dy = grid.cell
    return 0.5 * np.abs(np.asarray(p, np.float64) - q).sum(axis=(-2, -1)) * dx * dy


# --- the drift on the faces --------------------------------------------------------------------
def face_fields(field: Field, t: float, want: tuple[str, ...], grid: Grid) -> list[tuple]:
    """Each field kind in ``want`` at time t on the faces: a list of (x-components on the
    x-faces (H, W+1), y-components on the y-faces (H+1, W)), float64. Evaluated once on the
    (H+1)·(W+1) cell corners and averaged along each face (trapezoid rule).
    """
    xs, ys = (torch.from_numpy(e).float() for e in grid.edges())
    with torch.no_grad():
        if hasattr(field, "on_grid"):  # the exact field sums per axis on a grid
            out = field.on_grid(xs, ys, t, want)
        else:
            pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
            out = field(pts, t, want)
    faces = []
    for kind in want:
        f = out[kind].double().cpu().numpy().reshape(len(ys), len(xs), 2)
        faces.append((0.5 * (f[:-1, :, 0] + f[1:, :, 0]), 0.5 * (f[:, :-1, 1] + f[:, 1:, 1])))
    return faces


def _g2(path: GaussianPath, ts: np.ndarray) -> np.ndarray:
    return path.coefficients(torch.as_tensor(ts, dtype=torch.float64)).diffusion2.clamp_min(0.0)


class _FrameDrift:
    """Running-time drift u(τ) on the faces between two frame times t0 → t1.

    The η-family drift μ = v + sign(h) ½ η² g²(t) s (``eta_drift``): v and s are taken at the
    two frames and interpolated linearly in t, g²(t) is exact (it is 1/(1 − t) for flow
    matching, badly served by a linear interpolation); u = sign(h) μ.
    """

    def __init__(self, ends, path: GaussianPath, t0: float, t1: float, eta: float):
        self.ends, self.t0, self.h, self.eta = ends, t0, t1 - t0, eta
        self.sign = math.copysign(1.0, self.h)
        self.path = path

    def coef(self, w: np.ndarray) -> np.ndarray:
        """sign(h) ½ η² g² at fractions w of the interval."""
        if self.eta == 0:
            return np.zeros_like(w)
        return self.sign * 0.5 * self.eta**2 * _g2(self.path, self.t0 + w * self.h).numpy()

    def at(self, w: float, coef: float) -> tuple[np.ndarray, np.ndarray]:
        """u at fraction w of the interval, with the noise coefficient ``coef`` (``coef``)."""
        (v0, s0), (v1, s1) = self.ends
        if coef == 0:  # no score (η = 0): the kernel does not read it
            s0, s1 = v0, v1
        return tuple(mix_drift(v0[i], v1[i], s0[i], s1[i], w, coef, self.sign) for i in range(2))

    def substeps(self, grid: Grid, cfl: float) -> int:
        """n = ⌈|h| max_cells(outflow rate) / CFL⌉: a cell's outflow rate is the sum of the
        outward face speeds over its four faces divided by the cell width (the positivity
        bound of limited MUSCL with SSP-RK2; tighter than the sum of the per-axis maxima
        where the fastest x and y motions lie in different cells). Taken at both ends with
        either end's noise coefficient (g² is monotone in t, so those bound the interval).
        """
        rate = 0.0
        for coef in set(self.coef(np.array([0.0, 1.0])).tolist()):
            for v, sc in self.ends:
                score = v if coef == 0 else sc
                rate = max(rate, outflow_rate(v, score, coef, self.sign, grid.cell))
        return max(1, math.ceil(abs(self.h) * rate / cfl))


@dataclass(frozen=True)
class NoiseStep:
    """One frame's noise, in one step: the Ornstein–Uhlenbeck transition X' = λX + √V·Z, which
    carries the score's linear part with it (``lam`` set), or the heat step of variance V."""

    variance: float
    lam: float | None = None

    @property
    def carries_score(self) -> bool:
        return self.lam is not None

    def apply(self, rho: np.ndarray, grid: Grid) -> tuple[np.ndarray, float]:
        """(ρ after the step, mass that left the box)."""
        if self.carries_score:
            return relax(rho, self.lam, self.variance, grid)
        return diffuse(rho, self.variance, grid)


def _noise_plan(path, sigma, eta, ts, t_noisy, grid):
    """Each frame interval's :class:`NoiseStep`, or None without noise (η = 0, or past
    ``t_noisy``: ``_stochastic``). The step carries the score's linear part where the noise
    dominates the signal (b ≥ a at both frame ends), the components' width σ is known, and
    ``relaxes`` holds. Also 1/c²(t) at each frame time (the score's linear part), NaN where
    unused."""
    t = np.asarray(ts, dtype=np.float64)
    frames = [i for i in range(len(t) - 1) if eta > 0 and _stochastic(t[i], t[i + 1], t_noisy)]
    plan: list[NoiseStep | None] = [None] * (len(t) - 1)
    inv_c2 = np.full(len(t), np.nan)  # read only where b ≥ a, where c² ≥ b² > 0
    if not frames:  # the ODE: no noise step, nothing to evaluate
        return plan, inv_c2
    co = path.coefficients(torch.from_numpy(t))
    a, b = co.a.numpy(), co.b.numpy()
    noisy = b >= a
    np.divide(1.0, a**2 * (sigma or 0.0) ** 2 + b**2, out=inv_c2, where=noisy)
    t0, t1 = t[frames], t[[i + 1 for i in frames]]
    for i, var in zip(frames, noise_variances(path, eta, t0, t1), strict=True):
        plan[i] = NoiseStep(var)
    both = [k for k, i in enumerate(frames) if noisy[i] and noisy[i + 1]]
    if sigma is not None and both:
        lam, var = ou_transitions(path, sigma, eta, t0[both], t1[both])
        for k, h_lam, h_var in zip(both, lam, var, strict=True):
            if relaxes(h_lam, h_var, grid):
                plan[frames[k]] = NoiseStep(h_var, h_lam)
    return plan, inv_c2


def _stochastic(t0: float, t1: float, t_noisy: float) -> bool:
    """Whether the frame [t0, t1] has noise: past ``t_noisy`` (g² → ∞ at t = 1 on singular
    paths) the continuity equation, with the same marginals, is solved instead."""
    return max(t0, t1) <= t_noisy


def _score_remainder(ends, inv_c2: float, grid):
    """(v, s + x/c²) on the faces: the score less its linear part −x/c², which ``relax``
    carries; c² = a² σ² + b² (the width of every mixture component at that time)."""
    (vx, vy), (sx, sy) = ends
    ex, ey = grid.edges()  # x of the x-faces (W+1,), y of the y-faces (H+1,)
    return (vx, vy), (sx + inv_c2 * ex[None, :], sy + inv_c2 * ey[:, None])


def solve(
    field: Field,
    path: GaussianPath,
    times,
    eta: float,
    grid: Grid,
    rho0: np.ndarray,
    limiter: str = DEFAULT_LIMITER,
    cfl: float = CFL,
    callback=None,
    knots: list[int] | None = None,
    sigma: float | None = None,
    poll=None,
) -> PDEResult:
    """Carry ρ from times[0] through every frame time.

    Args:
        field: ``field(x, t, want) -> dict`` (exact or learned).
        path: the Gaussian path (for g² and the η-family).
        times: frame times (T+1,), increasing (forward) or decreasing (reverse).
        eta: noise level η in [0, 1] (0: continuity equation).
        grid: the grid.
        rho0: start density (cell averages), (H, W).
        limiter: slope limiter, one of ``LIMITERS``.
        callback: optional ``(i) -> None`` after each frame (to cancel a superseded run).
        knots: indices of the frame times where the field is evaluated (``field_knots``),
            including the first and the last; between them it is interpolated linearly in t.
            Default: every frame time.
        sigma: the data's component width σ: with it, frames with enough noise carry the
            score's linear part −x/c² with the noise, exactly (``models.pde.steps.relax``).
        poll: optional ``(i) -> None`` called every ``POLL_SUBSTEPS`` sub-steps within frame i
            (to cancel a superseded run within a frame); it does not change the results.

    Returns:
        :class:`PDEResult`; mass + outflow stays at its start value up to rounding.

    Raises:
        ValueError: the solve needs more sub-steps than ``substep_budget(grid)``, raised
            before the first frame that would pass it is started (one line).
    """
    if limiter not in LIMITERS:
        raise ValueError(f"limiter must be one of {LIMITERS}, got {limiter!r}")
    ts = [float(t) for t in times]
    dx, dy = grid.cell
    rho = np.array(rho0, dtype=np.float64)
    frames = np.empty((len(ts), *grid.shape), dtype=np.float32)
    mass, outflow = np.empty(len(ts)), np.zeros(len(ts))
    frames[0], mass[0] = rho, rho.sum() * dx * dy
    gone, total = 0.0, 0
    # g² diverges at t = 1 on singular paths (flow matching): past the latest time a stochastic
    # sampler may use, solve the continuity equation, which has the same marginals.
    t_noisy = path.stochastic_start(eta, max(len(ts) - 1, 1)) + 1e-12
    want = ("velocity", "score") if eta > 0 else ("velocity",)
    knots = sorted(set(range(len(ts)) if knots is None else knots) | {0, len(ts) - 1})
    cache: dict[int, list] = {}
    plan, inv_c2 = _noise_plan(path, sigma, eta, ts, t_noisy, grid)
    budget = substep_budget(grid)

    def fields_at(i: int, eta_k: float):
        """Face fields at frame i: evaluated at a knot, else interpolated between two."""
        j = bisect.bisect_right(knots, i) - 1
        lo, hi = knots[j], knots[min(j + 1, len(knots) - 1)]
        for k in (lo, hi):  # each knot is evaluated once and kept while it is needed
            if k not in cache:
                cache[k] = face_fields(field, ts[k], want, grid)
        for k in [k for k in cache if k < lo]:
            del cache[k]
        if i == lo or lo == hi:
            faces = cache[lo]
        else:
            w = (ts[i] - ts[lo]) / (ts[hi] - ts[lo])
            faces = [
                tuple((1 - w) * f0 + w * f1 for f0, f1 in zip(a, b, strict=True))
                for a, b in zip(cache[lo], cache[hi], strict=True)
            ]
        return faces[0], (faces[1] if eta_k > 0 else None)

    for i in range(len(ts) - 1):
        t0, t1 = ts[i], ts[i + 1]
        eta_k = eta if _stochastic(t0, t1, t_noisy) else 0.0
        ends = (fields_at(i, eta_k), fields_at(i + 1, eta_k))
        noise = plan[i]
        if noise is not None and noise.carries_score:  # the score's linear part goes with it
            ends = (_score_remainder(ends[0], inv_c2[i], grid),
                    _score_remainder(ends[1], inv_c2[i + 1], grid))  # fmt: skip
        drift = _FrameDrift(ends, path, t0, t1, eta_k)
        n = drift.substeps(grid, cfl)
        n += n % 2 if noise else 0  # even: half the sub-steps on either side of the noise
        if total + n > budget:
            raise SubstepBudgetError(total + n, budget, i + 1 < len(ts) - 1)
        total += n
        coef = drift.coef(np.arange(n + 1) / n)
        dt = abs(t1 - t0) / n
        ub = drift.at(0.0, coef[0])
        for k in range(n):
            if k and k % POLL_SUBSTEPS == 0:
                flush_subnormal(rho)
                if poll is not None:
                    poll(i)
            if noise and k == n // 2:  # Strang: the frame's noise between the advection's halves
                rho, lost = noise.apply(rho, grid)
                gone += lost
            ua, ub = ub, drift.at((k + 1) / n, coef[k + 1])
            rho, lost = advect(rho, ua, ub, dt, grid.cell, limiter)
            gone += lost
        frames[i + 1], mass[i + 1], outflow[i + 1] = rho, rho.sum() * dx * dy, gone
        if callback is not None:
            callback(i)
    return PDEResult(frames, mass, outflow, total)


def solve_run(
    field: Field,
    path: GaussianPath,
    reference,
    times,
    eta: float,
    grid: Grid,
    limiter: str = DEFAULT_LIMITER,
    callback=None,
    knot_step: float = KNOT_STEP,
    poll=None,
) -> PDEResult:
    """Solve for one particle run: start density from the direction of ``times`` (T+1,).

    Forward (times increasing): the data mixture ``reference`` (a
    :class:`models.datasets.Reference`: points (M, 2), σ_d) carried to times[0]; reverse: the
    prior N(0, b(times[0])² I), as the samplers draw it.
    """
    ts = [float(t) for t in times]
    forward = len(ts) < 2 or ts[-1] > ts[0]
    ref = reference
    rho0 = start_density(path, ref.points.cpu().numpy(), ref.sigma, ts[0], grid, forward)
    knots = field_knots(path, ts, ref.sigma, knot_step)
    return solve(field, path, ts, eta, grid, rho0, limiter, callback=callback, knots=knots,
                 sigma=ref.sigma, poll=poll)  # fmt: skip

"""The PDE solver's inner loops, compiled with numba: one pass over the cells each.

Written as numpy array operations they were most of the solver's cost: the advection step
alone took ~0.5 ms per sub-step at 128² (about forty small operations, each a pass over
memory), the drift on the faces and the sub-step rule another ~0.1 ms per sub-step.

- ``advect``: one step of ∂ρ/∂τ + ∇·(uρ) = 0 in flux form, MUSCL with a slope limiter, upwind
  fluxes, two-stage SSP Runge–Kutta (Heun). Zero density beyond the box: boundary faces carry
  only outflow, which is counted; every other flux leaves one cell and enters its neighbour,
  so mass is conserved by construction.
- ``mix_drift``: the drift on the faces at a fraction of a frame interval.
- ``outflow_rate``: the largest outflow rate of a cell (the sub-step rule).

``tests/test_pde_kernels.py`` checks them against the array formulations they replaced.
"""

from __future__ import annotations

import numba
import numpy as np

LIMITERS = ("minmod", "vanleer", "mc")
# The least diffusive of the three. Since moons became the mixture on its clean curve (σ_d =
# 0.08, 1.3 cells at 128²), van Leer's smearing put its FM ODE runs at TV 0.052-0.054; the
# monotonized central limiter keeps every case of bench_pde.py under 0.05 at 128² (worst
# 0.047). Its face values stay between the neighbours' (TVD), so the positivity bound holds.
DEFAULT_LIMITER = "mc"


@numba.njit(cache=True, nogil=True, inline="always")
def _slope(dm: float, dp: float, limiter: int) -> float:
    """Limited slope of a cell from its left (dm) and right (dp) differences."""
    if dm * dp <= 0.0:
        return 0.0
    if limiter == 1:  # van Leer: the harmonic mean 2 dm dp / (dm + dp)
        return 2.0 * dm * dp / (dm + dp)
    mag = min(abs(dm), abs(dp))
    if limiter == 2:  # monotonized central
        mag = min(2.0 * mag, 0.5 * abs(dm + dp))
    return mag if dm > 0.0 else -mag


@numba.njit(cache=True, nogil=True)
def _rate(rho, ux, uy, inv_dx, inv_dy, limiter, out):
    """−∇·(uρ) per cell into ``out`` (H, W); returns the outflow rate through the edges
    (mass per unit time). ux: (H, W+1) on the x-faces, uy: (H+1, W) on the y-faces."""
    h, w = rho.shape
    fx = np.empty((h, w + 1))
    fy = np.empty((h + 1, w))
    for i in range(h):  # x-faces of row i: face j lies between cells j − 1 and j
        for j in range(w + 1):
            u = ux[i, j]
            if u > 0.0:  # upwind is cell j − 1, its value at its right face
                if j == 0:
                    fx[i, j] = 0.0  # nothing beyond the box flows in
                    continue
                c = rho[i, j - 1]
                left = rho[i, j - 2] if j >= 2 else 0.0
                right = rho[i, j] if j < w else 0.0
                fx[i, j] = u * (c + 0.5 * _slope(c - left, right - c, limiter))
            else:  # upwind is cell j, its value at its left face
                if j == w:
                    fx[i, j] = 0.0
                    continue
                c = rho[i, j]
                left = rho[i, j - 1] if j >= 1 else 0.0
                right = rho[i, j + 1] if j + 1 < w else 0.0
                fx[i, j] = u * (c - 0.5 * _slope(c - left, right - c, limiter))
    for i in range(h + 1):  # y-faces: face i lies between rows i − 1 and i
        for j in range(w):
            u = uy[i, j]
            if u > 0.0:
                if i == 0:
                    fy[i, j] = 0.0
                    continue
                c = rho[i - 1, j]
                below = rho[i - 2, j] if i >= 2 else 0.0
                above = rho[i, j] if i < h else 0.0
                fy[i, j] = u * (c + 0.5 * _slope(c - below, above - c, limiter))
            else:
                if i == h:
                    fy[i, j] = 0.0
                    continue
                c = rho[i, j]
                below = rho[i - 1, j] if i >= 1 else 0.0
                above = rho[i + 1, j] if i + 1 < h else 0.0
                fy[i, j] = u * (c - 0.5 * _slope(c - below, above - c, limiter))
    for i in range(h):
        for j in range(w):
            out[i, j] = -((fx[i, j + 1] - fx[i, j]) * inv_dx + (fy[i + 1, j] - fy[i, j]) * inv_dy)
    outflow = 0.0
    for i in range(h):
        outflow += (fx[i, w] - fx[i, 0]) / inv_dy
    for j in range(w):
        outflow += (fy[h, j] - fy[0, j]) / inv_dx
    return outflow


@numba.njit(cache=True, nogil=True)
def _ssp_rk2(rho, u0x, u0y, u1x, u1y, dt, inv_dx, inv_dy, limiter):
    rate = np.empty_like(rho)
    out0 = _rate(rho, u0x, u0y, inv_dx, inv_dy, limiter, rate)
    stage = rho + dt * rate
    out1 = _rate(stage, u1x, u1y, inv_dx, inv_dy, limiter, rate)
    return 0.5 * (rho + stage + dt * rate), 0.5 * dt * (out0 + out1)


def advect(rho, u0, u1, dt: float, cell: tuple[float, float], limiter: str = DEFAULT_LIMITER):
    """One SSP-RK2 (Heun) step with face velocities u0 at τ and u1 at τ + dt.

    Args:
        rho: cell averages (H, W), float64.
        u0, u1: (ux (H, W+1), uy (H+1, W)) at the two ends of the step.
        dt: the step.
        cell: (Δx, Δy).
        limiter: one of ``LIMITERS``.

    Returns:
        (ρ after the step (H, W), mass that left through the edges during it).
    """
    code = LIMITERS.index(limiter)
    dx, dy = cell
    args = [np.ascontiguousarray(a, dtype=np.float64) for a in (rho, *u0, *u1)]
    new, lost = _ssp_rk2(*args, float(dt), 1.0 / dx, 1.0 / dy, code)
    return new, float(lost)


@numba.njit(cache=True, nogil=True)
def _mix(out, v0, v1, s0, s1, w, coef, sign):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            mu = (1.0 - w) * v0[i, j] + w * v1[i, j]
            if coef != 0.0:
                mu += coef * ((1.0 - w) * s0[i, j] + w * s1[i, j])
            out[i, j] = sign * mu


def mix_drift(v0, v1, s0, s1, w: float, coef: float, sign: float) -> np.ndarray:
    """sign · ((1 − w) v0 + w v1 + coef · ((1 − w) s0 + w s1)), all of one face shape.

    The η-family drift μ = v + coef · s between two frames (v, s the velocity and the score at
    either end, linear in between), in running time (sign = −1 for reverse runs). s0 and s1
    are not read when coef is 0 (pass v0, v1).
    """
    out = np.empty(v0.shape)
    _mix(out, v0, v1, s0, s1, float(w), float(coef), float(sign))
    return out


@numba.njit(cache=True, nogil=True)
def _outflow_rate(vx, vy, sx, sy, coef, sign, inv_dx, inv_dy):
    h, w = vy.shape[0] - 1, vx.shape[1] - 1
    worst = 0.0
    for i in range(h):
        for j in range(w):
            left = sign * (vx[i, j] + coef * sx[i, j])
            right = sign * (vx[i, j + 1] + coef * sx[i, j + 1])
            low = sign * (vy[i, j] + coef * sy[i, j])
            high = sign * (vy[i + 1, j] + coef * sy[i + 1, j])
            rate = (max(right, 0.0) - min(left, 0.0)) * inv_dx
            rate += (max(high, 0.0) - min(low, 0.0)) * inv_dy
            worst = max(worst, rate)
    return worst


def outflow_rate(v, s, coef: float, sign: float, cell: tuple[float, float]) -> float:
    """max over cells of the outward face speeds of u = sign · (v + coef · s), each axis over
    its cell width: (Σ_faces outward speed) / Δ, the quantity the sub-step rule bounds.

    v, s: (x-components (H, W+1), y-components (H+1, W)); s is not read when coef is 0.
    """
    dx, dy = cell
    return float(_outflow_rate(*v, *s, float(coef), float(sign), 1.0 / dx, 1.0 / dy))


def warm_up() -> None:
    """Compile the kernel (or load it from numba's cache, ~0.5 s against ~2 s cold), so that
    the first PDE a user asks for does not wait for it."""
    rho = np.zeros((2, 2))
    u = (np.zeros((2, 3)), np.zeros((3, 2)))
    advect(rho, u, u, 0.0, (1.0, 1.0))
    mix_drift(rho, rho, rho, rho, 0.5, 1.0, 1.0)
    outflow_rate(u, u, 1.0, 1.0, (1.0, 1.0))

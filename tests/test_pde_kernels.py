"""The compiled advection kernel against the same scheme written as numpy array operations
(the implementation it replaced), and its conservation and positivity properties."""

import numpy as np
import pytest

from models.accel.pde_kernels import LIMITERS, advect, mix_drift, outflow_rate


def _limited(dm, dp, limiter):
    if limiter == "vanleer":
        prod = dm * dp
        num = prod + np.abs(prod)
        den = dm + dp
        den[den == 0] = 1.0
        return np.divide(num, den, out=num)
    mag = np.minimum(np.abs(dm), np.abs(dp))
    if limiter == "mc":
        mag = np.minimum(2 * mag, 0.5 * np.abs(dm + dp))
    return np.where(dm * dp > 0, np.sign(dm) * mag, 0.0)


def _face_flux(rho, d, u, axis, limiter):
    lo, hi = [slice(None)] * 2, [slice(None)] * 2
    lo[axis], hi[axis] = slice(None, -1), slice(1, None)
    lo, hi = tuple(lo), tuple(hi)
    half = 0.5 * _limited(d[lo], d[hi], limiter)
    flux = np.zeros(u.shape)
    flux[hi] = np.maximum(u[hi], 0.0) * (rho + half)
    flux[lo] += np.minimum(u[lo], 0.0) * (rho - half)
    return flux


def _rate(rho, ux, uy, cell, limiter):
    dx, dy = cell
    padded = np.pad(rho, 1)
    fx = _face_flux(rho, np.diff(padded[1:-1], axis=1), ux, 1, limiter)
    fy = _face_flux(rho, np.diff(padded[:, 1:-1], axis=0), uy, 0, limiter)
    div = np.diff(fx, axis=1) / dx + np.diff(fy, axis=0) / dy
    out = (fx[:, -1].sum() - fx[:, 0].sum()) * dy + (fy[-1].sum() - fy[0].sum()) * dx
    return -div, out


def reference_advect(rho, u0, u1, dt, cell, limiter):
    r0, out0 = _rate(rho, *u0, cell, limiter)
    stage = rho + dt * r0
    r1, out1 = _rate(stage, *u1, cell, limiter)
    return 0.5 * (rho + stage + dt * r1), 0.5 * dt * (out0 + out1)


def _case(seed, h=13, w=17):
    """A rough density touching the edges and rough face velocities of both signs
    (non-square, so that a swapped axis shows)."""
    g = np.random.default_rng(seed)
    rho = g.random((h, w)) * (g.random((h, w)) > 0.3)
    u = [(g.normal(size=(h, w + 1)), g.normal(size=(h + 1, w))) for _ in range(2)]
    u[0][0][3, 5] = 0.0  # a face at rest
    return rho, u[0], u[1]


@pytest.mark.parametrize("limiter", LIMITERS)
@pytest.mark.parametrize("seed", range(4))
def test_kernel_is_the_array_scheme(limiter, seed):
    rho, u0, u1 = _case(seed)
    cell, dt = (0.3, 0.2), 0.01
    got, lost = advect(rho, u0, u1, dt, cell, limiter)
    want, want_lost = reference_advect(rho, u0, u1, dt, cell, limiter)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert lost == pytest.approx(want_lost, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("limiter", LIMITERS)
def test_mass_inside_plus_outflow_is_kept_and_density_stays_positive(limiter):
    rho, u0, u1 = _case(7, 32, 32)
    cell = (0.25, 0.25)
    speed = max(np.abs(a).max() for a in (*u0, *u1))
    dt = 0.25 * cell[0] / speed  # within the positivity bound (outflow over 4 faces ≤ ½)
    start = rho.sum() * cell[0] * cell[1]
    gone = 0.0
    for _ in range(20):
        rho, lost = advect(rho, u0, u1, dt, cell, limiter)
        gone += lost
    assert rho.min() >= 0.0
    assert rho.sum() * cell[0] * cell[1] + gone == pytest.approx(start, rel=1e-12)
    assert gone > 0  # the rough velocities push mass through the edges


def test_a_step_worked_by_hand():
    """A flat block under a uniform drift u = 1 at Courant ½, minmod, worked on paper.

    Stage 1 (every slope is 0, first-order upwind): the block's left cell loses ½, the right
    edge lets out 1 per row per unit time. Stage 2 on [0, 0, ½, 1, 1, 1]: cell 2 has slope ½,
    so face 3 carries ¾. Heun's average: [0, 0, 9/16, 15/16, 1, 1], and ½·½·(1 + 1)·4 rows = 2
    left the box.
    """
    rho = np.zeros((4, 6))
    rho[:, 2:] = 1.0
    ux, uy = np.full((4, 7), 1.0), np.zeros((5, 6))
    new, lost = advect(rho, (ux, uy), (ux, uy), 0.5, (1.0, 1.0), "minmod")
    np.testing.assert_allclose(new, np.tile([0, 0, 9 / 16, 15 / 16, 1, 1], (4, 1)), rtol=1e-15)
    assert lost == pytest.approx(2.0, rel=1e-15)


@pytest.mark.parametrize("coef", [0.0, -0.7])
def test_drift_mix_is_the_linear_interpolation(coef):
    g = np.random.default_rng(3)
    v0, v1, s0, s1 = (g.normal(size=(5, 6)) for _ in range(4))
    w, sign = 0.3, -1.0
    want = sign * ((1 - w) * v0 + w * v1 + coef * ((1 - w) * s0 + w * s1))
    np.testing.assert_allclose(mix_drift(v0, v1, s0, s1, w, coef, sign), want, rtol=1e-14)


@pytest.mark.parametrize("coef", [0.0, 0.4])
def test_outflow_rate_is_the_largest_sum_of_outward_face_speeds(coef):
    g = np.random.default_rng(5)
    h, w, dx, dy, sign = 7, 9, 0.5, 0.25, -1.0
    v = (g.normal(size=(h, w + 1)), g.normal(size=(h + 1, w)))
    s = (g.normal(size=(h, w + 1)), g.normal(size=(h + 1, w)))
    ux, uy = (sign * (v[i] + coef * s[i]) for i in range(2))
    per_cell = (np.maximum(ux[:, 1:], 0) - np.minimum(ux[:, :-1], 0)) / dx
    per_cell += (np.maximum(uy[1:], 0) - np.minimum(uy[:-1], 0)) / dy
    got = outflow_rate(v, s, coef, sign, (dx, dy))
    assert got == pytest.approx(per_cell.max(), rel=1e-14)

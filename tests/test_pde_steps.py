"""The PDE's exact noise steps (models/pde/steps.py) against closed forms and quadrature."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from models.density import Grid, mixture_density
from models.paths import LinearFMPath
from models.pde import solver as pde
from models.pde import steps as pde_steps
from models.run.config import RunConfig
from models.run.simulate import build


class ConstantPath:
    """a, b and g² constant in t: an Ornstein–Uhlenbeck process with closed-form transition."""

    def __init__(self, a: float, b: float, g2: float):
        self.a, self.b, self.g2 = a, b, g2

    def coefficients(self, t):
        one = torch.ones_like(torch.as_tensor(t, dtype=torch.float64))
        return SimpleNamespace(a=self.a * one, b=self.b * one, diffusion2=self.g2 * one)


@pytest.mark.parametrize(("t_a", "t_b"), [(0.2, 0.45), (0.45, 0.2)])
def test_ou_transition_constant_coefficients(t_a, t_b):
    """λ = e^{−κh}, V = c² (1 − λ²): the process relaxes to N(0, c²) at rate κ = D/c²."""
    a, b, g2, sigma, eta = 0.6, 0.9, 3.0, 0.3, 0.8
    (lam,), (var,) = pde_steps.ou_transitions(ConstantPath(a, b, g2), sigma, eta, t_a, t_b)
    c2 = a * a * sigma**2 + b * b
    kappa = 0.5 * eta**2 * g2 / c2
    want = math.exp(-kappa * abs(t_b - t_a))
    assert lam == pytest.approx(want, rel=1e-12)
    assert var == pytest.approx(c2 * (1 - want**2), rel=1e-8)


@pytest.mark.parametrize(
    ("t_a", "t_b", "eta"),
    [(0.99, 0.995, 1.0), (0.995, 0.99, 1.0), (0.6, 0.61, 1.0),
     (0.898, 0.998, 1.0), (0.998, 0.898, 0.1)],  # a 10-step run's last frame: g² grows 50x
)  # fmt: skip
def test_ou_transition_on_flow_matching_against_quadrature(t_a, t_b, eta):
    """Near t = 1 flow matching's g² grows as 1/(1 − t); nested adaptive quadrature is the
    independent reference (running time goes from t_a to t_b, either way)."""
    path, sigma = LinearFMPath(), 0.08

    def coef(t):
        co = path.coefficients(torch.tensor(t, dtype=torch.float64))
        d = 0.5 * eta**2 * float(co.diffusion2)
        return d, d / (float(co.a) ** 2 * sigma**2 + float(co.b) ** 2)

    def kappa_between(u, v):
        return quad(lambda t: coef(t)[1], min(u, v), max(u, v), epsabs=0, epsrel=1e-13,
                    limit=200)[0]  # fmt: skip

    lam_ref = math.exp(-kappa_between(t_a, t_b))
    var_ref = quad(lambda t: 2 * coef(t)[0] * math.exp(-2 * kappa_between(t, t_b)),
                   min(t_a, t_b), max(t_a, t_b), epsabs=0, epsrel=1e-12, limit=200)[0]  # fmt: skip
    (lam,), (var,) = pde_steps.ou_transitions(path, sigma, eta, t_a, t_b)
    assert lam == pytest.approx(lam_ref, rel=1e-7)
    assert var == pytest.approx(var_ref, rel=1e-7)


@pytest.mark.parametrize(("t_a", "t_b"), [(0.2, 0.3), (0.898, 0.998), (0.999, 0.9)])
def test_noise_variance_on_flow_matching_is_the_closed_form(t_a, t_b):
    """η² ∫ g² dt with g² = 2t/(1 − t): η² [−2t − 2 log(1 − t)] between the two times."""
    eta = 0.6
    (var,) = pde_steps.noise_variances(LinearFMPath(), eta, t_a, t_b)
    primitive = lambda t: -2 * t - 2 * math.log1p(-t)  # noqa: E731
    assert var == pytest.approx(eta**2 * abs(primitive(t_b) - primitive(t_a)), rel=1e-7)


def test_ou_transitions_of_many_steps_are_each_steps_own():
    """One evaluation for all frames gives what each step alone gives."""
    path, starts, ends = LinearFMPath(), [0.5, 0.9, 0.995], [0.51, 0.895, 0.99]
    lam, var = pde_steps.ou_transitions(path, 0.1, 0.7, starts, ends)
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        one = pde_steps.ou_transitions(path, 0.1, 0.7, a, b)
        assert (lam[k], var[k]) == (one[0][0], one[1][0])


def gaussian_cells(mean, std, grid):
    return pde.cell_average_mixture(np.array([mean]), std, grid)


@pytest.mark.parametrize("lam", [0.8, 1.0])
def test_relax_carries_a_gaussian_to_its_closed_form(lam):
    """N(m, s²) becomes N(λm, λ²s² + V); the mass that leaves is counted. λ = 1 is a heat
    step, which the cell-integrated kernel takes closer to the continuous solution than the
    discrete heat kernel does (TV 2e-6 against 3e-3 here: O(Δ²) in the latter's shape)."""
    grid = Grid((-4.0, 4.0, -3.0, 3.0), (48, 64))  # not square: two kernels
    m, s, var = np.array([0.7, -0.4]), 0.6, 0.3
    rho = gaussian_cells(m, s, grid)
    assert pde_steps.relaxes(lam, var, grid)
    out, lost = pde_steps.relax(rho, lam, var, grid)
    want = gaussian_cells(lam * m, math.sqrt(lam**2 * s**2 + var), grid)
    assert pde.total_variation(out[None], want[None], grid)[0] < 1e-5
    dx, dy = grid.cell
    assert (rho.sum() - out.sum()) * dx * dy == pytest.approx(lost, abs=1e-14)
    # the start's tail beyond the box (~1e-5) is not there to be pulled back in
    assert lost == pytest.approx((rho.sum() - want.sum()) * dx * dy, abs=1e-5)
    assert out.min() >= 0


def test_relax_refuses_a_spread_below_one_cell_at_the_edge():
    """The accuracy bound, at the first variance that meets it and one ulp below."""
    grid = Grid((-4.0, 4.0, -4.0, 4.0), (64, 64))
    lam, cell = 0.9, grid.cell[0]
    var = cell * cell + lam**2 * cell**2 / 12
    while pde_steps.relaxes(lam, var, grid):  # walk down to the edge, one ulp at a time
        var = np.nextafter(var, 0.0)
    below, edge = var, np.nextafter(var, 1.0)
    assert pde_steps.relaxes(lam, edge, grid) and not pde_steps.relaxes(lam, below, grid)
    rho = gaussian_cells([0.0, 0.0], 0.5, grid)
    out, _ = pde_steps.relax(rho, lam, edge, grid)
    assert np.isfinite(out).all() and out.min() >= 0
    with pytest.raises(ValueError, match="cell"):
        pde_steps.relax(rho, lam, below, grid)


@pytest.mark.parametrize(("process", "direction"), [("fm", "reverse"), ("vp", "forward")])
def test_sde_solve_with_the_exact_noise_step_agrees_and_takes_fewer_substeps(process, direction):
    """The same Fokker–Planck equation solved with the score's linear part explicit (no σ given)
    and carried exactly with the noise: both follow the closed form, the second in fewer steps."""
    config = RunConfig(process=process, dataset="8gaussians", direction=direction, kind="sde",
                       steps=50, n_reference=128)  # fmt: skip
    path, _, field = build(config)
    times = torch.linspace(1, 0, 51) if direction == "reverse" else torch.linspace(0, 1, 51)
    grid = Grid(config.extent, (96, 96))
    ref = field.reference
    forward = direction == "forward"
    rho0 = pde.start_density(path, ref.points.numpy(), ref.sigma, float(times[0]), grid, forward)
    knots = pde.field_knots(path, times.tolist(), ref.sigma)
    plain = pde.solve(field, path, times.double(), 1.0, grid, rho0, knots=knots)
    split = pde.solve(field, path, times.double(), 1.0, grid, rho0, knots=knots, sigma=ref.sigma)
    exact = mixture_density(ref, path, times.double(), grid).numpy()
    assert pde.total_variation(split.density, exact, grid).max() < 0.05
    assert pde.total_variation(split.density, plain.density, grid).max() < 0.02
    assert split.substeps < 0.7 * plain.substeps
    np.testing.assert_allclose(split.mass + split.outflow, split.mass[0], atol=1e-12)

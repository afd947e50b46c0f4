"""Density carried along ODE trajectories and the field's own density (docs/MATH.md §8)."""

import math

import numpy as np
import pytest
import torch

from models.density import Grid
from models.logdensity import divergence, gaussian_log_density, integrate, model_log_density
from models.pde import solver as pde
from models.run.config import RunConfig
from models.run.simulate import build
from models.samplers import sample_heun


def exact(process, dataset="8gaussians"):
    path, data, field = build(RunConfig(process=process, dataset=dataset, n_reference=128))
    return path, data, field


@pytest.mark.parametrize("process", ["fm", "vp"])
@pytest.mark.parametrize("t", [0.05, 0.5, 0.9])
def test_divergence_matches_finite_differences(process, t, gen):
    _, _, field = exact(process, "moons")
    x = 2 * torch.randn(64, 2, generator=gen, dtype=torch.float64)
    _, div = divergence(field, x, t)
    step, fd = 1e-5, torch.zeros(64, dtype=torch.float64)
    for i in range(2):
        e = torch.zeros(2, dtype=torch.float64)
        e[i] = step
        plus = field(x + e, t, ("velocity",))["velocity"][:, i]
        minus = field(x - e, t, ("velocity",))["velocity"][:, i]
        fd += (plus - minus) / (2 * step)
    # central differences err by h² times the third derivative: ~1e-6 relative where the field
    # is sharp (t = 0.05)
    np.testing.assert_allclose(div.numpy(), fd.numpy(), rtol=1e-5, atol=1e-5)


def test_hutchinson_is_unbiased_with_the_2d_variance(gen):
    _, _, field = exact("fm", "moons")
    x = 1.5 * torch.randn(8, 2, generator=gen, dtype=torch.float64)
    _, div = divergence(field, x, 0.4)
    draws = torch.stack([divergence(field, x, 0.4, "hutchinson", gen)[1] for _ in range(2000)])
    # Rademacher probes in 2D: uᵀJu = tr J + u₁u₂ (J₁₂ + J₂₁), variance (J₁₂ + J₂₁)²
    jac = torch.func.vmap(torch.func.jacrev(lambda p: field(p[None], 0.4)["velocity"][0]))(x)
    var = (jac[:, 0, 1] + jac[:, 1, 0]) ** 2
    np.testing.assert_allclose(draws.var(0).numpy(), var.numpy(), rtol=0.15, atol=1e-9)
    se = (var / len(draws)).sqrt()
    assert ((draws.mean(0) - div).abs() <= 4 * se + 1e-9).all()


def test_positions_are_the_heun_samplers(gen):
    path, _, field = exact("fm")
    x = torch.randn(50, 2, generator=gen)
    times = torch.linspace(1, 0, 21, dtype=torch.float64)
    traj, _ = integrate(field, path, x, times, torch.zeros(50))
    assert torch.equal(traj, sample_heun(field, path, x, times)), "the same steps, bit for bit"


@pytest.mark.parametrize(
    ("process", "dataset", "steps", "tol"),
    [
        ("fm", "8gaussians", 200, 1e-2),
        ("fm", "moons", 200, 1e-2),
        ("vp", "8gaussians", 400, 1e-2),
        ("vp", "moons", 600, 1e-2),
    ],
)
def test_carried_log_density_is_the_closed_form(process, dataset, steps, tol, gen):
    """Reverse ODE from the exact p_1 at the T that reaches 1e-2.

    VP misses 1e-2 at T = 200 (moons 6e-2, 8 gaussians 2e-2; benchmarks/bench_logdensity.py):
    the error is the Heun trajectory's, not the divergence quadrature's. Near t ≈ 0.02–0.1 the
    linear schedule shrinks the components' width c² by up to 20% per step, the particles'
    position error (~3e-3) is multiplied by the score (~1/c² · distance), and log p_t at the
    particle moves by that much; the carried value itself is accurate to ~4e-3 there.
    """
    path, _, field = exact(process, dataset)
    x1 = path.prior(300, 1.0, gen)
    times = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    traj, logp = integrate(field, path, x1, times, field.log_density(x1, 1.0))
    closed = torch.stack([field.log_density(traj[i], float(t)) for i, t in enumerate(times)])
    assert (logp - closed).abs().max() < tol


def test_forward_from_the_data_density(gen):
    path, data, field = exact("fm", "8gaussians")
    x0, _ = data.sample(300, gen)
    times = torch.linspace(0, 1, 201, dtype=torch.float64)
    traj, logp = integrate(field, path, x0, times, field.log_density(x0, 0.0))
    closed = torch.stack([field.log_density(traj[i], float(t)) for i, t in enumerate(times)])
    assert (logp - closed).abs().max() < 1e-2
    # and the end is the prior's own density
    torch.testing.assert_close(logp[-1], gaussian_log_density(traj[-1], 1.0), atol=1e-2, rtol=0)


@pytest.mark.parametrize("process", ["fm", "vp"])
def test_model_density_on_a_grid_is_the_closed_form_and_integrates_to_the_mass(process):
    path, _, field = exact(process)
    grid = Grid((-2.0, 2.0, -2.0, 2.0), (64, 64))  # cuts the tails: some mass lies outside
    t = 0.5
    logp = model_log_density(field, path, t, grid, steps=100)
    xs, ys = grid.centres(dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    closed = field.log_density(pts, t).reshape(grid.shape)
    where = closed > math.log(1e-3)
    # VP's prior N(0, b(1)² I) drops a(1) x_data (a(1) = 0.0066): a few 1e-2 in log p
    assert (logp - closed)[where].abs().max() < (1e-2 if process == "fm" else 5e-2)
    co = path.coefficients(torch.tensor(t, dtype=torch.float64))
    a, b = float(co.a), float(co.b)
    c = math.sqrt(a * a * field.sigma**2 + b * b)
    dx, dy = grid.cell
    inside = pde.cell_average_mixture(a * field.reference.points.numpy(), c, grid).sum() * dx * dy
    assert float(logp.exp().sum()) * dx * dy == pytest.approx(inside, abs=5e-3)
    assert inside < 0.99  # the box does not hold all of it: the test has teeth


@pytest.mark.parametrize("dataset", ["spirals", "checkerboard"])  # both compiled kernels
def test_positions_are_the_euler_samplers_whose_step_is_fused(dataset, gen, monkeypatch):
    """Euler's step of the exact field is one compiled pass (``ExactField.euler_step``): the
    carried run takes it too, so switching the shading on moves no particle; log p is
    stepped as without the fused step."""
    from models.logdensity import CarriedField
    from models.samplers import sample_euler

    path, _, field = exact("fm", dataset)
    x = torch.randn(300, 2, generator=gen)
    times = torch.linspace(1, 0, 31, dtype=torch.float64)
    traj, logp = integrate(field, path, x, times, torch.zeros(300), "euler")
    assert torch.equal(traj, sample_euler(field, path, x, times)), "the same steps, bit for bit"
    monkeypatch.delattr(CarriedField, "euler_step")
    unfused, logp_unfused = integrate(field, path, x, times, torch.zeros(300), "euler")
    assert not torch.equal(traj, unfused)  # the two paths round differently: the test can fail
    torch.testing.assert_close(logp, logp_unfused, atol=1e-4, rtol=2e-4)  # rounding, amplified


def test_shading_moves_no_particle_and_counts_one_call_a_step():
    """The app reruns when the shading is switched on: the run with log p must be the run."""
    from models.run.simulate import simulate

    settings = dict(dataset="spirals", steps=20, particles=300, resolution=16, solver="euler",
                    exact_density=False)  # fmt: skip
    plain = simulate(RunConfig(**settings), workers=2)
    shaded = simulate(RunConfig(**settings, log_density=True))
    np.testing.assert_array_equal(plain.trajectories, shaded.trajectories)
    assert plain.nfe == shaded.nfe == 20

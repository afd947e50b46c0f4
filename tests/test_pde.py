"""The Fokker–Planck / continuity solver against closed forms (docs/MATH.md §6)."""

import numpy as np
import pytest
import torch

from models.density import Grid, mixture_density
from models.paths import LinearFMPath
from models.pde import solver as pde
from models.pde import steps as pde_steps
from models.run.config import RunConfig
from models.run.simulate import build, trajectories
from models.samplers import eta_drift


def run_times(config: RunConfig):
    path, data, field = build(config)
    small = RunConfig(**{**config.__dict__, "particles": 2})
    _, times, _ = trajectories(small, path, data, field, torch.Generator().manual_seed(0))
    return path, field, times


def test_cell_averages_integrate_to_the_mass_inside():
    grid = Grid((-2.0, 2.0, -1.0, 3.0), (40, 50))
    means, std = np.array([[0.3, 1.1], [1.9, 2.5]]), 0.4
    rho = pde.cell_average_mixture(means, std, grid)
    dx, dy = grid.cell
    # an independent figure: midpoint rule on a 20x finer grid (the density is smooth)
    fine = Grid(grid.extent, (800, 1000))
    xs, ys = (c.numpy() for c in fine.centres())
    X, Y = np.meshgrid(xs, ys)
    dens = sum(np.exp(-((X - m[0]) ** 2 + (Y - m[1]) ** 2) / (2 * std**2)) for m in means)
    dens /= len(means) * 2 * np.pi * std**2
    fdx, fdy = fine.cell
    assert rho.sum() * dx * dy == pytest.approx(dens.sum() * fdx * fdy, abs=1e-5)
    coarse = dens.reshape(40, 20, 50, 20).mean(axis=(1, 3))
    np.testing.assert_allclose(rho, coarse, atol=2e-4)


@pytest.mark.parametrize("s", [0.05, 0.7, 30.0])
def test_heat_kernel_keeps_mass_and_has_variance_s(s):
    k = pde_steps.heat_matrix(101, s)[:, 50]
    offsets = np.arange(101) - 50
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    assert (k * offsets**2).sum() == pytest.approx(s, rel=1e-9)
    assert k.min() >= 0


def test_diffusion_widens_a_gaussian_exactly_and_counts_the_loss():
    grid = Grid((-2.0, 2.0, -2.0, 2.0), (64, 64))
    rho = pde.cell_average_mixture(np.array([[0.5, -0.2]]), 0.3, grid)
    out, lost = pde_steps.diffuse(rho, 0.5**2, grid)
    want = pde.cell_average_mixture(np.array([[0.5, -0.2]]), (0.3**2 + 0.5**2) ** 0.5, grid)
    assert pde.total_variation(out[None], want[None], grid)[0] < 2e-3
    dx, dy = grid.cell
    assert lost == pytest.approx((rho.sum() - want.sum()) * dx * dy, abs=1e-3)
    assert (rho.sum() - out.sum()) * dx * dy == pytest.approx(lost, abs=1e-14)


def constant_field(velocity):
    def field(x, t, want=("velocity",)):
        return {k: torch.tensor(velocity, dtype=x.dtype).expand_as(x) for k in want}

    return field


def test_any_field_a_constant_drift_translates_the_density():
    """Not an ExactField: the solver only needs field(x, t, want)."""
    grid = Grid((-3.0, 3.0, -3.0, 3.0), (96, 96))
    rho0 = pde.cell_average_mixture(np.array([[-1.0, 0.5]]), 0.35, grid)
    times = np.linspace(0.0, 0.5, 11)
    r = pde.solve(constant_field([2.0, -1.0]), LinearFMPath(), times, 0.0, grid, rho0)
    want = pde.cell_average_mixture(np.array([[0.0, 0.0]]), 0.35, grid)
    assert pde.total_variation(r.density[-1:], want[None], grid)[0] < 0.03
    assert r.density.min() >= 0


def test_mass_inside_plus_outflow_is_conserved():
    """A small box that cuts through the data: a large share leaves through both mechanisms."""
    config = RunConfig(
        process="vp",
        dataset="8gaussians",
        direction="forward",
        kind="sde",
        steps=40,
        extent=(-2.0, 2.0, -2.0, 2.0),
    )
    path, field, times = run_times(config)
    grid = Grid(config.extent, (48, 48))
    r = pde.solve_run(field, path, field.reference, times, 1.0, grid)
    assert r.outflow[-1] > 0.3
    assert np.all(np.diff(r.outflow) >= -1e-15)
    np.testing.assert_allclose(r.mass + r.outflow, r.mass[0], atol=1e-10)
    assert r.density.min() >= -1e-12


# Every factor appears; the other combinations run in benchmarks/bench_pde.py (tests stay fast).
CASES = [
    ("8gaussians", "fm", "forward", "ode", None),
    ("8gaussians", "vp", "reverse", "sde", 1.0),
    ("moons", "fm", "reverse", "sde", 0.5),
    ("moons", "fm", "reverse", "ode", None),  # the sharpest: van Leer's smearing missed it
]


@pytest.mark.parametrize(("dataset", "process", "direction", "kind", "eta"), CASES)
def test_solution_follows_the_closed_form(dataset, process, direction, kind, eta):
    """TV < 0.05 at every frame at 128² (the full table: benchmarks/bench_pde.py)."""
    config = RunConfig(
        process=process,
        dataset=dataset,
        direction=direction,
        kind=kind,
        eta=eta,
        steps=50,
        n_reference=128,
    )
    path, field, times = run_times(config)
    grid = Grid(config.extent, (128, 128))
    r = pde.solve_run(field, path, field.reference, times, config.noise_level, grid)
    exact = mixture_density(field.reference, path, times, grid).numpy()
    tv = pde.total_variation(r.density, exact, grid)
    assert tv.max() < 0.05, (tv.argmax(), tv.max())
    np.testing.assert_allclose(r.mass + r.outflow, r.mass[0], atol=1e-6)
    assert r.mass[0] == pytest.approx(exact[0].sum() * 0.0625**2, abs=2e-3)


def test_a_wrong_solver_is_caught():
    """The accuracy test can fail: the solution of a different field is far off."""
    config = RunConfig(process="fm", dataset="8gaussians", direction="forward", steps=20)
    path, field, times = run_times(config)
    grid = Grid(config.extent, (64, 64))
    rho0 = pde.start_density(path, field.reference.points, field.reference.sigma, 0.0, grid, True)
    r = pde.solve(constant_field([1.0, 0.0]), path, times, 0.0, grid, rho0)
    exact = mixture_density(field.reference, path, times, grid).numpy()
    assert pde.total_variation(r.density, exact, grid).max() > 0.3


def test_bad_limiter_refused():
    grid = Grid(shape=(8, 8))
    with pytest.raises(ValueError, match="limiter"):
        pde.solve(
            constant_field([0.0, 0.0]),
            LinearFMPath(),
            [0, 1],
            0.0,
            grid,
            np.zeros((8, 8)),
            limiter="superbee",
        )


@pytest.mark.parametrize(("t0", "t1"), [(0.5, 0.49), (0.3, 0.31)])
def test_drift_at_the_frames_is_the_samplers_eta_drift(t0, t1):
    config = RunConfig(process="fm", dataset="moons", n_reference=64)
    path, _, field = build(config)
    grid = Grid(config.extent, (16, 16))
    eta, h = 0.7, t1 - t0
    want = ("velocity", "score")
    drift = pde._FrameDrift(
        (pde.face_fields(field, t0, want, grid), pde.face_fields(field, t1, want, grid)),
        path, t0, t1, eta,
    )  # fmt: skip

    def sampler_drift(x, t, _want):
        return {"velocity": eta_drift(field, path, x, t, h, eta)}

    for w, t in ((0.0, t0), (1.0, t1)):
        ux, uy = drift.at(w, float(drift.coef(np.array([w]))[0]))
        ((mx, my),) = pde.face_fields(sampler_drift, t, ("velocity",), grid)
        np.testing.assert_allclose(np.sign(h) * ux, mx, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.sign(h) * uy, my, rtol=1e-5, atol=1e-5)

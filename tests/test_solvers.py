"""The solver lab against closed forms: a Gaussian's probability-flow ODE, measured orders,
exact steps, the DDIM-η posterior, NFE counts, and the ends of every path.

See docs/MATH.md §4.
"""

import math

import numpy as np
import pytest
import torch

from models.accel.parallel import run_in_blocks
from models.datasets import EightGaussians, Reference
from models.fields import ExactField
from models.learned.checkpoint import load, pretrained_path
from models.paths import LinearFMPath, TrigPath, VPPath
from models.samplers import forward_sde_exact, sample_euler, sample_heun, time_grid
from models.schedules import make_schedule
from models.solvers import SOLVERS, CountingField, make_times, sampler_of, solvers_for
from models.solvers.adaptive import P

VP = VPPath(make_schedule("linear"))
FM, TRIG = LinearFMPath(), TrigPath()
PATHS = {"vp": VP, "fm": FM, "trig": TRIG, "vp-cosine": VPPath(make_schedule("cosine")),
         "vp-constant": VPPath(make_schedule("constant"))}  # fmt: skip
MU, SD = torch.tensor([1.5, -0.5], dtype=torch.float64), 0.3
FIXED = [name for name, s in SOLVERS.items() if not s.adaptive]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def gaussian_field(path, sd=SD):
    """The exact field of the single Gaussian N(μ, sd² I), float64."""
    ref = Reference(MU[None].clone(), torch.zeros(1, dtype=torch.long), sd)
    return ExactField(path, ref, dtype=torch.float64)


def closed_form(path, x, t, s, sd=SD):
    """The ODE's map x_t ↦ x_s for N(μ, sd² I) data: x_s = a_s μ + (c_s/c_t)(x_t − a_t μ),
    c² = a² sd² + b² (x_t − a_t μ scales like the marginal's standard deviation c)."""
    c = path.coefficients(torch.tensor([t, s], dtype=torch.float64))
    cc = torch.sqrt(c.a**2 * sd**2 + c.b**2)
    return c.a[1] * MU + (cc[1] / cc[0]) * (x - c.a[0] * MU)


def start(n=100, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def mean_error(y, exact):
    return float((y - exact).norm(dim=1).mean())


@pytest.mark.parametrize("process", ["vp", "fm", "trig"])
def test_the_closed_form_matches_a_fine_heun_solution(process):
    path, x = PATHS[process], start()
    fine = sample_heun(gaussian_field(path), path, x, time_grid(1.0, 1e-3, 1000))[-1]
    assert mean_error(fine, closed_form(path, x, 1.0, 1e-3)) < 2e-5  # Heun's error: 5e-6
    # and it is not the identity or another Gaussian's map: the comparison can fail
    assert mean_error(fine, closed_form(path, x, 1.0, 1e-3, sd=0.35)) > 1e-2


ORDERS = {"euler": 1, "ddim": 1, "heun": 2, "midpoint": 2, "dpmpp2m": 2, "rk4": 4}


@pytest.mark.parametrize("process", ["vp", "trig"])
@pytest.mark.parametrize("name", list(ORDERS))
def test_measured_order_on_the_gaussian_closed_form(process, name):
    # log-SNR grids: the exponential integrators' asymptotic regime starts at 32 steps there
    # (on a uniform t grid the last λ step stays > 2 until T ≫ 1/t_min)
    path, x = PATHS[process], start()
    exact = closed_form(path, x, 1.0, 1e-3)
    steps = [32, 64, 128, 256] if name != "rk4" else [16, 32, 64, 128]
    errors = [
        mean_error(sampler_of(name)(gaussian_field(path), path, x,
                                    make_times(path, "logsnr", s, 1.0, 1e-3))[-1], exact)
        for s in steps
    ]  # fmt: skip
    order = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(order - ORDERS[name]) <= 0.25, (order, errors)
    assert SOLVERS[name].order == ORDERS[name]


@pytest.mark.parametrize("direction", ["reverse", "forward"])
def test_ddim_is_euler_on_linear_flow_matching(direction):
    field = ExactField(FM, EightGaussians().reference(), dtype=torch.float64)
    times = time_grid(1.0, 0.0, 20) if direction == "reverse" else time_grid(0.0, 1.0, 20)
    x = 2 * start(200) if direction == "reverse" else EightGaussians().sample(
        200, torch.Generator().manual_seed(1), dtype=torch.float64)[0]  # fmt: skip
    ddim = sampler_of("ddim")(field, FM, x, times)
    euler = sample_euler(field, FM, x, times)
    torch.testing.assert_close(ddim, euler, rtol=0, atol=1e-12)


@pytest.mark.parametrize("process", ["vp", "fm", "trig"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_on_a_single_point_is_exact_and_lands_on_it(process, eta):
    path, x = PATHS[process], start()
    field = gaussian_field(path, sd=0.0)  # x̂ = μ everywhere: DDIM's held x̂ is exact
    times = make_times(path, "uniform", 7, 1.0, 0.0)
    traj = sampler_of("ddim")(field, path, x, times, eta, torch.Generator().manual_seed(3))
    torch.testing.assert_close(traj[-1], MU.expand(100, 2), rtol=0, atol=1e-12)
    if eta == 0:  # every frame on the closed form (c = b for a point)
        for i in range(1, 7):
            want = closed_form(path, x, 1.0, float(times[i]), sd=0.0)
            torch.testing.assert_close(traj[i], want, rtol=1e-10, atol=1e-12)


def test_ddim_eta_one_step_is_the_gaussian_posterior():
    # One reverse step from a fixed x_t with x̂ = μ (a single point): the law of x_s against
    # q(x_s | x_t, x₀ = μ) from the joint Gaussian of (x_s, x_t) | x₀ by the Schur complement:
    # cov(x_s, x_t) = (a_t/a_s) b_s², so mean a_s μ + k (x_t − a_t μ), variance b_s² − k (a_t/a_s)
    # b_s², k = (a_t/a_s) b_s²/b_t²
    path, n, (t, s) = VP, 40_000, (0.6, 0.35)
    c = path.coefficients(torch.tensor([t, s], dtype=torch.float64))
    (a_t, a_s), (b_t, b_s) = c.a.tolist(), c.b.tolist()
    xt = torch.tensor([0.4, -1.2], dtype=torch.float64)
    k = (a_t / a_s) * b_s**2 / b_t**2
    mean, var = a_s * MU + k * (xt - a_t * MU), b_s**2 - k * (a_t / a_s) * b_s**2
    times = torch.tensor([t, s], dtype=torch.float64)
    field, gen = gaussian_field(path, sd=0.0), torch.Generator().manual_seed(4)
    xs = sampler_of("ddim")(field, path, xt.expand(n, 2), times, 1.0, gen)[-1]
    assert (xs.mean(0) - mean).abs().max() < 5 * math.sqrt(var / n)
    assert (xs.var(0) - var).abs().max() < 5 * var * math.sqrt(2 / n)
    assert abs(torch.corrcoef(xs.T)[0, 1]) < 5 / math.sqrt(n)
    # the bound sees the DDIM (η = 0) point mass and a 5 % error in the deviation
    assert 5 * var * math.sqrt(2 / n) < var * (1.05**2 - 1)


def test_ddim_eta_one_samples_the_gaussian_data():
    # The ancestral step holds x̂ at its mean, not a draw of x₀ | x_t: each step misses
    # a_s² (1 − ρ²)² Var(x₀ | x_t) of variance, a bias of order h (measured 0.022, 0.006,
    # 0.0017 of SD² = 0.09 at 50, 200, 800 log-SNR steps); 800 steps put it below the bound.
    path, n = VP, 10_000
    gen = torch.Generator().manual_seed(11)
    c1 = path.coefficients(torch.tensor(1.0, dtype=torch.float64))
    scale = math.sqrt(float(c1.a) ** 2 * SD**2 + float(c1.b) ** 2)
    x1 = float(c1.a) * MU + scale * torch.randn(n, 2, generator=gen, dtype=torch.float64)
    times = make_times(path, "logsnr", 800, 1.0, 0.0)
    x0 = sampler_of("ddim")(gaussian_field(path), path, x1, times, 1.0, gen)[-1]
    se_mean, se_var = SD / math.sqrt(n), SD**2 * math.sqrt(2 / n)
    assert (x0.mean(0) - MU).abs().max() < 5 * se_mean
    cov = torch.cov(x0.T)
    assert (cov - SD**2 * torch.eye(2, dtype=torch.float64)).abs().max() < 5 * se_var, cov
    # the bound is tight enough to see a 5 % error in the width of the data
    assert 5 * se_var < SD**2 * (1.05**2 - 1)


def test_forward_ddim_eta_one_is_the_exact_forward_transition():
    x0 = EightGaussians().sample(300, torch.Generator().manual_seed(2), dtype=torch.float64)[0]
    field = ExactField(VP, EightGaussians().reference(), dtype=torch.float64)
    times = time_grid(0.0, 1.0, 12)
    ddim = sampler_of("ddim")(field, VP, x0, times, 1.0, torch.Generator().manual_seed(5))
    exact = forward_sde_exact(VP, x0, times, torch.Generator().manual_seed(5))
    torch.testing.assert_close(ddim, exact, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("process", ["vp", "fm"])
@pytest.mark.parametrize("direction", ["reverse", "forward"])
def test_dopri5_meets_its_tolerance_at_every_output_time(process, direction):
    path, x = PATHS[process], start()
    t0, t1 = (1.0, 1e-3) if direction == "reverse" else (1e-3, 1.0)
    times = time_grid(t0, t1, 9)
    for rtol in (1e-4, 1e-7):
        solver = sampler_of("dopri5", rtol=rtol, atol=rtol * 1e-2)
        traj = solver(gaussian_field(path), path, x, times)
        assert traj.dtype == torch.float64
        for i, t in enumerate(times.tolist()):
            exact = closed_form(path, x, t0, t)
            scale = float(exact.norm(dim=1).mean())  # the norm's rtol is relative to |x|
            assert mean_error(traj[i], exact) < 10 * rtol * scale, (rtol, i)
        stats = solver.stats
        assert stats["nfe"] == 2 + 6 * (stats["accepted"] + stats["rejected"])


def test_dense_output_ends_where_the_step_does():
    # Σ_j P[i][j] (θ = 1) equals Dormand and Prince's fifth-order weights b_i, written here
    fifth = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0]
    np.testing.assert_allclose([sum(row) for row in P], fifth, rtol=0, atol=1e-14)


def test_dopri5_reports_its_steps_in_the_callback():
    seen = []
    solver = sampler_of("dopri5", rtol=1e-6, atol=1e-8)
    solver(gaussian_field(VP), VP, start(), time_grid(1.0, 1e-3, 5), callback=seen.append)
    assert [info["i"] for info in seen] == [0, 1, 2, 3, 4]
    assert seen[-1]["accepted"] == solver.stats["accepted"] > 5
    assert {"rejected", "nfe", "t", "x"} <= set(seen[-1])


@pytest.mark.parametrize("name", list(SOLVERS))
def test_nfe_counts_are_exact(name):
    steps, field = 6, CountingField(gaussian_field(VP))
    sampler = sampler_of(name)
    sampler(field, VP, start(), make_times(VP, "uniform", steps, 1.0, 1e-3))
    per_step = SOLVERS[name].evals_per_step
    want = sampler.stats["nfe"] if per_step is None else per_step * steps
    assert field.nfe == field.calls == want


@pytest.mark.parametrize("name", FIXED)
def test_nfe_counts_per_logical_evaluation_in_row_blocks(name):
    n, steps = 512, 4
    field = CountingField(ExactField(VP, EightGaussians().reference(), dtype=torch.float64), n)
    times = make_times(VP, "uniform", steps, 1.0, 1e-3)
    x = 2 * start(n)
    split = run_in_blocks(sampler_of(name), field, VP, x, times, 0.0, None, None, blocks=2)
    assert field.calls == 2 * SOLVERS[name].evals_per_step * steps  # each block calls it
    assert field.nfe == SOLVERS[name].evals_per_step * steps
    torch.testing.assert_close(split, sampler_of(name)(field.field, VP, x, times))


@pytest.mark.parametrize("name", ["midpoint", "rk4", "dpmpp2m", "dopri5", "heun"])
def test_ode_only_solvers_refuse_noise(name):
    with pytest.raises(ValueError, match="eta"):
        sampler_of(name)(gaussian_field(VP), VP, start(), time_grid(1.0, 0.1, 3), eta=0.5)


def test_which_solvers_apply_for_eta():
    assert solvers_for(0.0) == tuple(SOLVERS)
    assert solvers_for(0.5) == solvers_for(1.0) == ("euler", "ddim")
    with pytest.raises(ValueError):
        solvers_for(1.5)
    with pytest.raises(ValueError, match="unknown solver"):
        sampler_of("leapfrog")


ENDS = [(1.0, 0.0), (math.nextafter(1.0, 0.0), math.nextafter(0.0, 1.0)), (0.0, 1.0),
        (math.nextafter(0.0, 1.0), math.nextafter(1.0, 0.0))]  # fmt: skip


@pytest.mark.parametrize("process", list(PATHS))
@pytest.mark.parametrize("name", list(SOLVERS))
@pytest.mark.parametrize("ends", ENDS, ids=["reverse", "reverse-ulp", "forward", "forward-ulp"])
def test_finite_at_the_ends_of_every_path(process, name, ends):
    path = PATHS[process]
    field = ExactField(path, EightGaussians().reference(), dtype=torch.float64)
    x = 2 * start(50) if ends[0] > 0.5 else EightGaussians().sample(
        50, torch.Generator().manual_seed(0), dtype=torch.float64)[0]  # fmt: skip
    for steps in (1, 2, 5):
        traj = sampler_of(name)(field, path, x, make_times(path, "uniform", steps, *ends))
        assert torch.isfinite(traj).all(), (name, steps)


def test_exponential_steps_from_and_to_the_ends_of_flow_matching():
    # fm at t = 1: a = 0, λ = −∞; the exact x̂ there is the mean of the components
    field = ExactField(FM, EightGaussians().reference(), dtype=torch.float64)
    mean = EightGaussians().reference().points.double().mean(0)
    x, s = 2 * start(50), 0.6
    for name in ("ddim", "dpmpp2m"):
        one = sampler_of(name)(field, FM, x, torch.tensor([1.0, s], dtype=torch.float64))
        torch.testing.assert_close(one[-1], s * x + (1 - s) * mean, rtol=0, atol=1e-14)
        ulp = torch.tensor([math.nextafter(1.0, 0.0), s], dtype=torch.float64)
        near = sampler_of(name)(field, FM, x, ulp)[-1]
        torch.testing.assert_close(near, one[-1], rtol=0, atol=1e-12)
        # a step that lands on b = 0 gives x̂ there, exactly
        t = 0.05
        land = sampler_of(name)(field, FM, x, torch.tensor([t, 0.0], dtype=torch.float64))[-1]
        torch.testing.assert_close(land, field(x, t, ("x0",))["x0"], rtol=0, atol=0)


@pytest.mark.parametrize("process", ["vp", "fm"])
@pytest.mark.parametrize("name", list(SOLVERS))
def test_every_solver_runs_finite_on_a_pretrained_learned_field(process, name):
    learned, _, _ = load(pretrained_path("8gaussians", process))
    path = learned.path
    x = path.prior(200, 1.0, torch.Generator().manual_seed(0))
    options = {"rtol": 1e-3, "atol": 1e-4} if name == "dopri5" else {}
    with torch.no_grad():
        traj = sampler_of(name, **options)(learned, path, x, make_times(path, "logsnr", 10, 1.0))
    assert traj.shape == (11, 200, 2) and torch.isfinite(traj).all()
    assert traj[-1].norm(dim=1).mean() > 1.0  # landed near the circle of radius 2, not at 0


@pytest.mark.parametrize("name", ["midpoint", "rk4", "ddim", "dpmpp2m", "dopri5"])
def test_a_grid_that_is_not_strictly_monotone_is_refused(name):  # models/solvers/base.py
    for times in ([1.0, 0.5, 0.5, 0.0], [1.0, 0.4, 0.6], [0.3]):
        with pytest.raises(ValueError, match="time"):
            sampler_of(name)(gaussian_field(VP), VP, start(), torch.tensor(times))

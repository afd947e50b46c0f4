"""sub-VP, VE and EDM (models/processes.py) against closed forms written out here: marginals,
the forward SDE's f and g², the Fokker–Planck equation, VE ↔ VP rescaling, reverse runs, time
grids, EDM's preconditioning and the settings' messages (docs/MATH.md §2-6)."""

import math

import numpy as np
import pytest
import torch

from models.datasets import make_dataset
from models.evaluation.metrics import distances_to_fresh
from models.fields import ExactField
from models.paths import PATHS, GaussianPath, VPPath, make_path, path_curves
from models.pde.solver import total_variation
from models.processes import EDMPath, SubVPPath, VEPath
from models.run.config import RunConfig
from models.run.simulate import path_of, simulate
from models.samplers import forward_sde_exact
from models.schedules import make_schedule
from models.solvers import GRIDS, SOLVERS, make_times, sampler_of, solvers_for

UP, DOWN = math.nextafter(0.0, 1.0), math.nextafter(1.0, 0.0)
BELOW, ABOVE = math.nextafter(0.0, -1.0), math.nextafter(1.0, 2.0)
TIMES = [0.0, UP, 1e-3, 0.1, 0.37, 0.5, 0.81, DOWN, 1.0]
LOG_RATIO = math.log(10.0 / 0.01)  # VE's defaults: σ_max = 10, σ_min = 0.01


# --- the closed forms, from the papers, independent of models/processes.py -----------------
def linear_b(t):  # B(t) of the linear schedule, β_min = 0.1, β_max = 20
    return 0.1 * t + 0.5 * (20.0 - 0.1) * t * t


def subvp_form(t):
    """(a, b, f, g²) of sub-VP on the linear schedule (Song et al. 2021)."""
    big_b, beta = linear_b(t), 0.1 + t * (20.0 - 0.1)
    return math.exp(-big_b / 2), 1 - math.exp(-big_b), -beta / 2, beta * (1 - math.exp(-2 * big_b))


def ve_form(t):
    sigma = 0.01 * (10.0 / 0.01) ** t
    return 1.0, sigma, 0.0, 2 * sigma**2 * LOG_RATIO


def edm_form(t, lo=0.002, hi=10.0, rho=7.0):
    root = lo ** (1 / rho) + t * (hi ** (1 / rho) - lo ** (1 / rho))
    sigma = root**rho
    dsigma = rho * root ** (rho - 1) * (hi ** (1 / rho) - lo ** (1 / rho))
    return 1.0, sigma, 0.0, 2 * sigma * dsigma


FORMS = {"subvp": subvp_form, "ve": ve_form, "edm": edm_form}


def new_path(name: str) -> GaussianPath:
    return make_path(name, make_schedule("linear"))


def coef(path: GaussianPath, t, dtype=torch.float64):
    return path.coefficients(torch.tensor(t, dtype=dtype))


# --- marginals ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(FORMS))
def test_marginal_mean_and_variance_by_formula_and_monte_carlo(name, gen):
    path, n = new_path(name), 40_000
    x0 = torch.tensor([1.5, -0.5], dtype=torch.float64).expand(n, 2)
    for t in TIMES:
        a, b, _, _ = FORMS[name](t)
        c = coef(path, t)
        assert float(c.a) == pytest.approx(a, rel=1e-12, abs=1e-300)
        assert float(c.b) == pytest.approx(b, rel=1e-9, abs=1e-300)
        xt, _ = path.sample(x0, t, gen)
        se = b / math.sqrt(n)
        torch.testing.assert_close(xt.mean(0), a * x0[0], rtol=0, atol=5 * se + 1e-12)
        torch.testing.assert_close(xt.var(0), torch.full((2,), b * b, dtype=torch.float64),
                                   rtol=0.03, atol=1e-12)  # fmt: skip
    for outside, end in ((BELOW, 0.0), (ABOVE, 1.0)):  # one ulp beyond an end: the end's values
        inner, outer = coef(path, end), coef(path, outside)
        for key in ("a", "b", "da", "db", "b_db"):
            assert float(getattr(outer, key)) == float(getattr(inner, key))


@pytest.mark.parametrize("name", list(FORMS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_everything_finite_at_the_ends_and_one_ulp_beyond(name, dtype):
    path = new_path(name)
    t = torch.tensor([BELOW, 0.0, UP, DOWN, 1.0, ABOVE], dtype=dtype)
    c = path.coefficients(t)
    for value in (c.a, c.b, c.da, c.db, c.b_db, c.drift, c.diffusion2):
        assert bool(torch.isfinite(value).all()), value
    assert bool((c.diffusion2 >= 0).all())
    for value in path_curves(path).values():
        assert np.isfinite(value).all()
    x = torch.randn(16, 2, dtype=torch.float64)
    for t_end in (1.0, DOWN) + ((0.0, UP) if name != "subvp" else ()):  # b(0) > 0: VE, EDM
        for src in ("x0", "eps", "score", "velocity"):
            assert bool(torch.isfinite(path.convert(x, x, t_end, src, "x0")).all())


@pytest.mark.parametrize("name", list(FORMS))
def test_f_and_g2_against_the_derivatives_of_a_and_the_variance(name):
    """x_t | x₀ ~ N(a x₀, b² I) is the law of dx = f x dt + g dw iff ȧ = f a and
    d(b²)/dt = 2 f b² + g²: both derivatives by central differences of the closed forms."""
    path, form, h = new_path(name), FORMS[name], 1e-6
    for t in (0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99):
        a, b, f, g2 = form(t)
        da = (form(t + h)[0] - form(t - h)[0]) / (2 * h)
        dvar = (form(t + h)[1] ** 2 - form(t - h)[1] ** 2) / (2 * h)
        c = coef(path, t)
        assert float(c.drift) == pytest.approx(f, rel=1e-12, abs=1e-15)
        assert float(c.diffusion2) == pytest.approx(g2, rel=1e-9)
        assert da == pytest.approx(float(c.drift) * a, rel=1e-6, abs=1e-9)
        assert dvar == pytest.approx(2 * float(c.drift) * b**2 + float(c.diffusion2), rel=1e-6)
        assert float(c.da) == pytest.approx(da, rel=1e-6, abs=1e-9)
        assert 2 * float(c.b_db) == pytest.approx(dvar, rel=1e-6)
        assert path.at(t)["g2"] == pytest.approx(g2, rel=1e-9)


def test_subvp_has_less_noise_than_vp_and_the_same_signal():
    sub, vp = new_path("subvp"), make_path("vp", make_schedule("linear"))
    t = torch.linspace(0.01, 1, 50, dtype=torch.float64)
    cs, cv = sub.coefficients(t), vp.coefficients(t)
    torch.testing.assert_close(cs.a, cv.a)
    assert bool((cs.b < cv.b).all()) and bool((cs.diffusion2 < cv.diffusion2).all())


def test_exact_forward_transition_has_the_path_law(gen):
    """From x₀ drawn at t = 0 (b(0) = σ_min on VE: x₀ + σ_min ε), the exact transitions of
    models/samplers.py reach N(a x₀, b² I) at t = 1 in 7 uneven steps."""
    n, x0 = 40_000, torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    times = torch.tensor([0.0, 0.01, 0.02, 0.2, 0.5, 0.51, 0.9, 1.0], dtype=torch.float64)
    for name in FORMS:
        path = new_path(name)
        start, _ = path.sample(x0.expand(n, 2), 0.0, gen)
        end = forward_sde_exact(path, start, times, gen)[-1]
        a, b, _, _ = FORMS[name](1.0)
        torch.testing.assert_close(end.mean(0), a * x0[0], rtol=0, atol=5 * b / math.sqrt(n))
        torch.testing.assert_close(end.std(0), torch.full((2,), b, dtype=torch.float64),
                                   rtol=0.02, atol=0)  # fmt: skip


# --- the Fokker–Planck equation ------------------------------------------------------------
@pytest.mark.parametrize(
    ("process", "kind", "sigma_max", "half"),
    [
        ("ve", "ode", 1.5, 5.0),
        ("ve", "sde", 1.5, 5.0),
        ("subvp", "ode", None, 4.0),
        ("subvp", "sde", None, 4.0),
    ],
)
def test_pde_follows_the_closed_form_density(process, kind, sigma_max, half):
    """The run's PDE (continuity for the ODE, Fokker–Planck at η = 1) against the closed-form
    mixture density, forward from the data, TV < 0.05 at every frame at 128². VE with
    σ_max = 1.5 in [−5, 5]²: its p_1 (width ≈ 1.5 around radius 2) stays in the box."""
    config = RunConfig(process=process, dataset="8gaussians", direction="forward", kind=kind,
                       steps=50, particles=10, n_reference=128, pde=True, sigma_max=sigma_max,
                       extent=(-half, half, -half, half))  # fmt: skip
    r = simulate(config)
    tv = total_variation(r.pde_density, r.exact_density, config.grid)
    assert tv.max() < 0.05, (tv.argmax(), tv.max())
    np.testing.assert_allclose(r.pde_mass + r.pde_outflow, r.pde_mass[0], atol=1e-6)


# --- VE and VP: one ODE, rescaled -----------------------------------------------------------
def test_ve_and_vp_probability_flows_agree_up_to_rescaling(gen):
    """x_VP(t) = a_VP(t) x_VE(t') where σ_VE(t') = b_VP(t)/a_VP(t): the two exact-field ODEs,
    each integrated by dopri5 at rtol 1e-10 from matched starts, give the same paths."""
    vp, ve = make_path("vp", make_schedule("linear")), VEPath(0.01, 200.0)
    data = make_dataset("8gaussians").reference()
    t_vp = torch.linspace(0.95, 0.02, 11, dtype=torch.float64)
    big_b = linear_b(t_vp)
    a_vp, sigma = torch.exp(-big_b / 2), torch.sqrt(torch.expm1(big_b))  # σ = b/a = √(e^B − 1)
    t_ve = torch.log(sigma / 0.01) / math.log(200.0 / 0.01)
    x_vp0 = torch.randn(300, 2, generator=gen, dtype=torch.float64)
    solve = sampler_of("dopri5", rtol=1e-10, atol=1e-12)
    x_vp = solve(ExactField(vp, data, dtype=torch.float64), vp, x_vp0, t_vp)
    x_ve = solve(ExactField(ve, data, dtype=torch.float64), ve, x_vp0 / a_vp[0], t_ve)
    torch.testing.assert_close(x_vp, a_vp[:, None, None] * x_ve, rtol=0, atol=2e-6)
    assert float((x_vp[-1] - x_vp[0]).norm(dim=1).mean()) > 0.5  # they did move


# --- runs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("process", ["subvp", "ve", "edm"])
def test_exact_reverse_ode_runs_land_on_the_data(process):
    data = make_dataset("8gaussians")
    config = RunConfig(process=process, dataset="8gaussians", solver="heun", steps=40,
                       particles=5000, exact_density=False)  # fmt: skip
    x = torch.from_numpy(simulate(config).trajectories[-1]).double()
    r = distances_to_fresh(x, lambda n, g: data.sample(n, g)[0].double(), 5, seed=1)
    assert r["sw2"] <= 1.2, r


@pytest.mark.parametrize("process", ["subvp", "ve", "edm"])
def test_every_solver_and_grid_runs_finite_both_ways(process):
    data = make_dataset("8gaussians").reference()
    path = make_path(process, make_schedule("cosine"))
    field = ExactField(path, data, dtype=torch.float64)
    x1 = path.prior(16, 1.0, torch.Generator().manual_seed(0), dtype=torch.float64)
    x0 = data.points.double()
    for solver in SOLVERS:
        sampler = sampler_of(solver)
        for grid in GRIDS:
            for start, end, x in ((1.0, 1e-3, x1), (1.0, 0.0, x1), (0.0, 1.0, x0)):
                times = make_times(path, grid, 8, start, end)
                for eta in {0.0, 1.0} if solver in solvers_for(1.0) else {0.0}:
                    out = sampler(field, path, x, times, eta, torch.Generator().manual_seed(1))
                    assert bool(torch.isfinite(out).all()), (solver, grid, start, eta)


# --- time grids -------------------------------------------------------------------------------
def test_karras_grid_on_edm_is_its_own_discretization():
    """σ_i = (σ_max^{1/ρ} + i/T (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ (Karras et al. eq. 5) is uniform
    in EDM's t; on VE the same σ_i mapped through t = log(σ/σ_min)/log(σ_max/σ_min)."""
    steps, i = 16, torch.arange(17, dtype=torch.float64)
    torch.testing.assert_close(make_times(EDMPath(), "karras", steps, 1.0, 0.0),
                               1 - i / steps, rtol=0, atol=1e-12)  # fmt: skip
    for lo, hi in ((0.01, 10.0), (1e-6, 1000.0)):  # σ_min below the grids' 1e-4 floor too
        sig = (hi ** (1 / 7) + i / steps * (lo ** (1 / 7) - hi ** (1 / 7))) ** 7
        want = torch.log(sig / lo) / math.log(hi / lo)
        got = make_times(VEPath(lo, hi), "karras", steps, 1.0, 0.0)
        torch.testing.assert_close(got[1:-1], want[1:-1], rtol=0, atol=1e-12)


def test_logsnr_grid_on_ve_is_uniform_in_t():
    """λ = −log σ(t) is linear in t on VE: its log-SNR grid is the uniform one."""
    got = make_times(VEPath(), "logsnr", 10, 1.0, 0.0)
    torch.testing.assert_close(got, torch.linspace(1.0, 0.0, 11, dtype=torch.float64),
                               rtol=0, atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("process", ["subvp", "ve", "edm"])
@pytest.mark.parametrize("ends", [(1.0, 0.0), (DOWN, UP), (0.0, 1.0), (1.0, 1e-3), (UP, DOWN)])
def test_every_grid_is_monotone_with_exact_ends(process, ends):
    path = new_path(process)
    for grid in GRIDS:
        for steps in (1, 7, 200):
            times = make_times(path, grid, steps, *ends)
            assert float(times[0]) == ends[0] and float(times[-1]) == ends[1]
            gaps = times.diff() * (1 if ends[1] > ends[0] else -1)
            assert bool((gaps > 0).all()), (grid, steps)


# --- EDM's preconditioning ---------------------------------------------------------------------
def test_edm_preconditioning_is_the_papers(gen):
    path = EDMPath(sigma_data=0.5)
    for s in (0.002, 0.1, 0.5, 3.0, 80.0):
        pre = path.preconditioning(s)
        assert float(pre["c_skip"]) == pytest.approx(0.25 / (s * s + 0.25), rel=1e-14)
        assert float(pre["c_out"]) == pytest.approx(s * 0.5 / math.sqrt(s * s + 0.25), rel=1e-14)
        assert float(pre["c_in"]) == pytest.approx(1 / math.sqrt(s * s + 0.25), rel=1e-14)
        assert float(pre["c_noise"]) == pytest.approx(math.log(s) / 4, rel=1e-14)
        # what they are for: unit-variance network input and target for data of std σ_data
        y = 0.5 * torch.randn(200_000, generator=gen, dtype=torch.float64)
        x = y + s * torch.randn(200_000, generator=gen, dtype=torch.float64)
        assert float((pre["c_in"] * x).var()) == pytest.approx(1.0, rel=0.02)
        assert float(((y - pre["c_skip"] * x) / pre["c_out"]).var()) == pytest.approx(1, rel=0.02)
    sigmas = torch.tensor([0.01, 1.0, 50.0], dtype=torch.float64)
    assert EDMPath().preconditioning(sigmas)["c_in"].shape == (3,)
    assert EDMPath().sigma_data == 1.2
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="sigma > 0"):
            path.preconditioning(bad)


def test_edm_time_of_inverts_sigma():
    path, t = EDMPath(), torch.linspace(0, 1, 11, dtype=torch.float64)
    torch.testing.assert_close(path.time_of(path.sigma(t)), t, rtol=0, atol=1e-12)


# --- building by name, and the settings' messages --------------------------------------------
def test_make_path_builds_each_process_with_its_defaults_and_sigmas():
    assert PATHS == ("vp", "subvp", "ve", "edm", "fm", "trig")
    assert isinstance(make_path("subvp", make_schedule("cosine")), SubVPPath)
    ve, edm = make_path("ve"), make_path("edm")
    assert (ve.sigma_min, ve.sigma_max) == (0.01, 10.0)
    assert (edm.sigma_min, edm.sigma_max, edm.rho) == (0.002, 10.0, 7.0)
    ve = make_path("ve", sigma_min=0.05, sigma_max=30.0)
    assert float(coef(ve, 0.0).b) == pytest.approx(0.05)
    assert float(coef(ve, 1.0).b) == pytest.approx(30.0)
    assert path_of(RunConfig(process="edm", sigma_max=3.0)).sigma_max == 3.0
    assert isinstance(path_of(RunConfig(process="vp", sigma_max=3.0)), VPPath)
    for name in ("ve", "edm"):
        assert path_of(RunConfig(process=name)).prior(5, 1.0).shape == (5, 2)


@pytest.mark.parametrize(
    ("sigma_min", "sigma_max", "message"),
    [
        (0.0, None, "sigma-min must be > 0"),
        (-1.0, None, "sigma-min must be > 0"),
        (None, 2000.0, "sigma-max must be"),
        (math.nan, None, "sigma-min must be a finite"),
        (None, math.inf, "sigma-max must be a finite"),
        (20.0, None, "must be below sigma-max"),
        (1.0, 0.5, "must be below sigma-max"),
        (1.0, 1.0, "must be below sigma-max"),
    ],
)
def test_bad_sigmas_are_refused_in_one_line(sigma_min, sigma_max, message):
    for name in ("ve", "edm"):
        with pytest.raises(ValueError, match=message) as raised:
            RunConfig(process=name, sigma_min=sigma_min, sigma_max=sigma_max).validate()
        assert "\n" not in str(raised.value)
        with pytest.raises(ValueError, match=message):
            make_path(name, sigma_min=sigma_min, sigma_max=sigma_max)
    with pytest.raises(ValueError, match="needs a schedule"):
        make_path("subvp")


def test_good_sigmas_pass_and_unused_ones_are_ignored():
    RunConfig(process="ve", sigma_min=1e-4, sigma_max=1000.0).validate()
    RunConfig(process="edm", sigma_max=0.5).validate()  # σ_min 0.002 by default
    RunConfig(process="fm", sigma_min=20.0).validate()  # fm has no σ: only checked as a number

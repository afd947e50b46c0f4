"""Time grids against their formulas: monotone, exact ends (and one ulp either side), uniform in
λ, Karras's σ schedule, the quadratic rule, finite on every path (docs/MATH.md §4)."""

import math

import pytest
import torch

from models.paths import LinearFMPath, TrigPath, VPPath
from models.schedules import make_schedule
from models.solvers.grids import (
    DEFAULT_T_MIN,
    GRIDS,
    KARRAS_RHO,
    SIGMA_MAX,
    default_t_min,
    lambda_of,
    make_times,
    t_of_lambda,
)

PATHS = {
    "vp-linear": VPPath(make_schedule("linear")),
    "vp-cosine": VPPath(make_schedule("cosine")),
    "vp-constant": VPPath(make_schedule("constant")),
    "fm": LinearFMPath(),
    "trig": TrigPath(),
}
UP, DOWN = math.nextafter(0.0, 1.0), math.nextafter(1.0, 0.0)
ENDS = [(1.0, 1e-3), (1.0, 0.0), (DOWN, UP), (1.0, UP), (DOWN, 0.0), (0.0, 1.0), (UP, DOWN),
        (1e-3, 1.0), (0.7, 0.2)]  # fmt: skip


def lam(path, times):
    return lambda_of(path, times)


@pytest.mark.parametrize("process", list(PATHS))
@pytest.mark.parametrize("grid", GRIDS)
@pytest.mark.parametrize("ends", ENDS)
@pytest.mark.parametrize("steps", [1, 2, 10, 200])
def test_strictly_monotone_with_exact_ends_and_finite(process, grid, ends, steps):
    path = PATHS[process]
    times = make_times(path, grid, steps, *ends)
    assert times.dtype == torch.float64 and times.shape == (steps + 1,)
    assert float(times[0]) == ends[0] and float(times[-1]) == ends[1]  # exactly, not nearly
    gaps = times.diff() * (1 if ends[1] > ends[0] else -1)
    assert bool((gaps > 0).all())
    assert bool(((times >= 0) & (times <= 1)).all())
    c = path.coefficients(times)
    assert torch.isfinite(c.a).all() and torch.isfinite(c.b).all()


def test_uniform_and_quadratic_follow_their_formulas():
    path, t_min = PATHS["vp-linear"], 1e-3
    torch.testing.assert_close(make_times(path, "uniform", 8, 1.0, t_min),
                               torch.linspace(1.0, t_min, 9, dtype=torch.float64))  # fmt: skip
    i = torch.arange(9, dtype=torch.float64)
    quad = t_min + (1 - t_min) * (i / 8) ** 2  # t_i = t_min + (1 − t_min)(i/T)², increasing
    torch.testing.assert_close(make_times(path, "quadratic", 8, t_min, 1.0), quad)
    torch.testing.assert_close(make_times(path, "quadratic", 8, 1.0, t_min), quad.flip(0))


@pytest.mark.parametrize("process", ["vp-linear", "vp-cosine", "trig"])
def test_logsnr_grid_is_uniform_in_lambda(process):
    path = PATHS[process]
    times = make_times(path, "logsnr", 20, 0.9, 1e-3)  # both λ finite and inside the clamp
    steps = lam(path, times).diff()
    torch.testing.assert_close(steps, steps.mean().expand(20), rtol=1e-9, atol=0)


def test_logsnr_grid_of_flow_matching_from_t_one():
    # fm: λ = log((1 − t)/t), so t = 1/(1 + e^λ) (independent of the bisection). From t = 1
    # (λ = −∞) the grid is uniform in λ from −log SIGMA_MAX, its first time pinned at 1.
    path, t_min = PATHS["fm"], 1e-3
    times = make_times(path, "logsnr", 10, 1.0, t_min)
    lam_0, lam_end = -math.log(SIGMA_MAX), math.log((1 - t_min) / t_min)
    lams = torch.linspace(lam_0, lam_end, 11, dtype=torch.float64)
    want = 1 / (1 + torch.exp(lams))
    assert float(times[0]) == 1.0
    torch.testing.assert_close(times[1:], want[1:], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("process", ["vp-linear", "fm"])
def test_karras_grid_matches_its_sigma_formula(process):
    path, t_min, steps = PATHS[process], 1e-3, 12
    times = make_times(path, "karras", steps, 1.0, t_min)
    c = path.coefficients(torch.tensor([1.0, t_min], dtype=torch.float64))
    s_max, s_min = min(float(c.b[0] / c.a[0]), SIGMA_MAX), float(c.b[1] / c.a[1])
    r = 1 / KARRAS_RHO
    i = torch.arange(steps + 1, dtype=torch.float64)
    sigma = (s_max**r + i / steps * (s_min**r - s_max**r)) ** KARRAS_RHO  # Karras et al., eq. 5
    c = path.coefficients(times)
    got = c.b / c.a
    torch.testing.assert_close(got[1:], sigma[1:], rtol=1e-9, atol=0)
    if process == "vp-linear":  # σ(1) = 151 is inside the clamp: the first time is on it too
        torch.testing.assert_close(got[0], sigma[0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("process", list(PATHS))
def test_bisection_inverts_lambda(process):
    path = PATHS[process]
    t = torch.tensor([1e-6, 1e-3, 0.1, 0.5, 0.9, 0.99], dtype=torch.float64)
    # 1e-8, not 1e-12: the cosine schedule's λ near t = 0 is itself that rough (B = −log ᾱ
    # with ᾱ a ratio of cosines near 1)
    torch.testing.assert_close(t_of_lambda(path, lam(path, t), 0.0, 1.0), t, rtol=1e-8, atol=0)


def test_default_t_min():
    assert DEFAULT_T_MIN == {"vp": 1e-3, "fm": 1e-3, "trig": 1e-3}
    assert default_t_min(PATHS["fm"]) == 1e-3
    times = make_times(PATHS["vp-linear"], "logsnr", 5, 1.0)  # end defaults to t_min
    assert float(times[-1]) == 1e-3


@pytest.mark.parametrize(
    "args, message",
    [
        (("uniform", 0, 1.0, 0.0), "steps"),
        (("uniform", 2.5, 1.0, 0.0), "steps"),
        (("uniform", 4, 1.0, 1.0), "same time"),
        (("uniform", 4, 1.5, 0.0), "start"),
        (("uniform", 4, 1.0, -1e-9), "end"),
        (("uniform", 4, math.nan, 0.0), "start"),
        (("cubic", 4, 1.0, 0.0), "unknown time grid"),
        (("logsnr", 4, 1.0, DOWN), "outside the"),  # both ends beyond σ = SIGMA_MAX on fm
        (("uniform", 10, UP, 0.0), "not strictly"),  # 10 steps cannot fit in one ulp
    ],
)
def test_bad_grids_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        make_times(PATHS["fm"], *args)

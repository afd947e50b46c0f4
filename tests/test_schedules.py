"""Schedules and path coefficients against their definitions (docs/MATH.md §2)."""

import pytest
import torch

from models.paths import LinearFMPath, TrigPath, VPPath
from models.schedules import CosineSchedule, make_schedule

T = torch.linspace(0.02, 0.98, 49, dtype=torch.float64)
SCHEDULES = [
    make_schedule("linear"),
    make_schedule("cosine"),
    make_schedule("constant"),
    make_schedule("linear", 0.5, 5.0),
]
PATHS = [VPPath(s) for s in SCHEDULES] + [LinearFMPath(), TrigPath()]


def central_diff(fn, t, h=1e-6):
    return (fn(t + h) - fn(t - h)) / (2 * h)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_beta_is_derivative_of_integral(schedule):
    torch.testing.assert_close(
        central_diff(schedule.integral, T), schedule.beta(T), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "path", PATHS[:3] + PATHS[4:], ids=lambda p: f"{p.name}-{getattr(p, 'schedule', '')}"
)
def test_endpoints(path):
    """Default schedules reach noise; a weak one (β_max = 5) does not, and the app says so."""
    c = path.coefficients(torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert c.a[0] == pytest.approx(1.0) and c.b[0] == pytest.approx(0.0, abs=1e-12)
    assert abs(float(c.a[1])) < 0.02, "a(1) must be close to 0 (data forgotten)"
    assert float(c.b[1]) > 0.99


@pytest.mark.parametrize("path", PATHS, ids=lambda p: f"{p.name}-{getattr(p, 'schedule', '')}")
def test_derivatives_match_finite_differences(path):
    c = path.coefficients(T)
    torch.testing.assert_close(
        c.da, central_diff(lambda t: path.coefficients(t).a, T), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(
        c.db, central_diff(lambda t: path.coefficients(t).b, T), rtol=1e-5, atol=1e-6
    )
    torch.testing.assert_close(c.b_db, c.b * c.db, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=repr)
def test_vp_is_variance_preserving_with_f_and_g2_of_beta(schedule):
    c = VPPath(schedule).coefficients(T)
    torch.testing.assert_close(c.a**2 + c.b**2, torch.ones_like(T))
    beta = schedule.beta(T)
    torch.testing.assert_close(c.drift, -0.5 * beta)
    torch.testing.assert_close(c.diffusion2, beta)


def test_linear_fm_drift_and_diffusion():
    c = LinearFMPath().coefficients(T)
    torch.testing.assert_close(c.drift, -1 / (1 - T))
    torch.testing.assert_close(c.diffusion2, 2 * T / (1 - T))


def test_cosine_matches_nichol_dhariwal_before_clip():
    s = CosineSchedule()
    t = torch.linspace(0, 0.9, 10, dtype=torch.float64)
    f = lambda u: torch.cos(torch.pi / 2 * (u + 0.008) / 1.008) ** 2  # noqa: E731
    torch.testing.assert_close(s.alpha(t) ** 2, f(t) / f(torch.zeros(1, dtype=torch.float64)))
    assert s.t_clip < 1 and float(s.beta(torch.tensor(1.0))) == s.beta_clip


def test_bad_linear_schedule_is_refused():
    with pytest.raises(ValueError, match="beta_min"):
        make_schedule("linear", 5.0, 1.0)

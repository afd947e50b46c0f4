"""Schedules as log-SNR λ(t) = log(a²/b²): the named λ schedules against their papers' formulas,
the drawn schedule (PCHIP through control points) against the schedule it was drawn from, its
validation and its text form (docs/MATH.md §2)."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.interpolate import PchipInterpolator

from models.datasets import make_dataset
from models.drawn_schedule import MIN_GAP
from models.fields import ExactField
from models.paths import VPPath
from models.samplers import sample_euler, time_grid
from models.schedules import (
    DEFAULT_POINTS,
    SCHEDULES,
    CosineSchedule,
    DrawnSchedule,
    EDMSchedule,
    LinearSchedule,
    LogSNRSchedule,
    ShiftedCosineSchedule,
    SigmoidSchedule,
    format_points,
    make_schedule,
    parse_points,
    sample_log_snr,
)
from models.solvers import make_times

F64 = torch.float64
FINE = torch.linspace(0, 1, 20001, dtype=F64)
INNER = 0.01 + 0.98 * (torch.arange(99, dtype=F64) + 0.5) / 99  # off the drawings' knots
ENDS = [0.0, math.nextafter(0.0, 1.0), math.nextafter(0.0, -1.0),
        1.0, math.nextafter(1.0, 0.0), math.nextafter(1.0, 2.0)]  # fmt: skip

# a drawing whose PCHIP end slope is exactly 0 (the last secant is much flatter than the one
# before it), with its last point before t = 1: the tail must still fall
FLAT_END = ((0.0, 6.0), (0.3, 0.0), (0.6, -6.0), (0.8, -6.2))
SCHEDULE_CASES = {
    "linear": make_schedule("linear"),
    "cosine": make_schedule("cosine"),
    "constant": make_schedule("constant"),
    "linear-weak": make_schedule("linear", 0.0, 2.0),
    "sigmoid": make_schedule("sigmoid"),
    "sigmoid-tau": SigmoidSchedule(start=0.0, end=3.0, tau=0.7),
    "shifted-cosine": make_schedule("shifted-cosine"),
    "shifted-cosine-1": make_schedule("shifted-cosine", shift=1.0),
    "edm": make_schedule("edm"),
    "points": make_schedule("points"),
    "points-cosine": DrawnSchedule(sample_log_snr(CosineSchedule(), 16)),
    "points-from-0": DrawnSchedule(((0.0, 10.0), (0.5, 0.0), (1.0, -10.0))),
    "points-flat-end": DrawnSchedule(FLAT_END),
}


def cases(kind=object):
    return [pytest.param(s, id=k) for k, s in SCHEDULE_CASES.items() if isinstance(s, kind)]


def central_diff(fn, t, h=1e-6):
    return (fn(t + h) - fn(t - h)) / (2 * h)


# --- every schedule -----------------------------------------------------------------------------
@pytest.mark.parametrize("schedule", cases())
def test_vp_path_of_the_log_snr(schedule):
    """a² + b² = 1 and log(a²/b²) of VPPath is the schedule's own λ."""
    c = VPPath(schedule).coefficients(FINE)
    torch.testing.assert_close(c.a**2 + c.b**2, torch.ones_like(FINE), rtol=0, atol=1e-15)
    lam = schedule.log_snr(INNER)
    cc = VPPath(schedule).coefficients(INNER)
    torch.testing.assert_close(torch.log(cc.a**2) - torch.log(cc.b**2), lam, rtol=1e-12, atol=1e-9)
    # and a² = sigmoid(λ), b² = sigmoid(−λ) on the whole grid, ends included
    torch.testing.assert_close(c.a**2, torch.sigmoid(schedule.log_snr(FINE)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("schedule", cases())
def test_beta_is_the_derivative_of_b(schedule):
    torch.testing.assert_close(
        central_diff(schedule.integral, INNER), schedule.beta(INNER), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("schedule", cases(LogSNRSchedule))
def test_d_log_snr_is_the_derivative_of_log_snr(schedule):
    torch.testing.assert_close(
        central_diff(schedule.log_snr, INNER), schedule.d_log_snr(INNER), rtol=1e-6, atol=1e-6
    )
    # β = −λ′ sigmoid(−λ)
    lam = schedule.log_snr(INNER)
    torch.testing.assert_close(
        schedule.beta(INNER), -schedule.d_log_snr(INNER) * torch.sigmoid(-lam)
    )


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("schedule", cases())
def test_finite_at_the_ends_and_one_ulp_beyond(schedule, dtype):
    t = torch.tensor(ENDS, dtype=dtype)
    for value in (schedule.integral(t), schedule.beta(t)):
        assert value.dtype == dtype
        assert bool(torch.isfinite(value).all()) and bool((value >= 0).all()), value
    c = VPPath(schedule).coefficients(t)
    for value in (c.a, c.b, c.da, c.b_db, c.drift, c.diffusion2):
        assert bool(torch.isfinite(value).all()), value
    lam = schedule.log_snr(t)
    assert not bool(lam.isnan().any()) and bool(torch.isfinite(lam[3:]).all())  # finite at 1


@pytest.mark.parametrize("schedule", cases())
def test_log_snr_strictly_decreasing(schedule):
    lam = schedule.log_snr(FINE)
    assert bool((lam.diff() < 0).all())


def test_lambda_at_zero_is_infinite_exactly_where_b0_is_zero():
    for name, s in SCHEDULE_CASES.items():
        b0 = float(s.integral(torch.tensor(0.0, dtype=F64)))
        lam0 = float(s.log_snr(torch.tensor(0.0, dtype=F64)))
        assert (b0 == 0) == (lam0 == math.inf), name
        if not isinstance(s, DrawnSchedule):
            assert b0 < 1e-5, f"{name}: a(0) stays within 1e-5 of 1"
    assert float(SCHEDULE_CASES["points-from-0"].integral(torch.zeros((), dtype=F64))) == (
        pytest.approx(math.log1p(math.exp(-10.0)))
    )


# --- the classic schedules in log-SNR form ------------------------------------------------------
@pytest.mark.parametrize("name", ["linear", "cosine", "constant"])
def test_classic_log_snr_is_log_of_a2_over_b2(name):
    s = make_schedule(name)
    big_b = s.integral(INNER)
    torch.testing.assert_close(s.log_snr(INNER), -torch.log(torch.expm1(big_b)), rtol=1e-13, atol=0)
    # stable where B → 0: λ ≈ −log B
    tiny = torch.tensor([1e-300, 1e-200, 1e-12], dtype=F64)
    torch.testing.assert_close(s.log_snr(tiny), -torch.log(s.integral(tiny)), rtol=1e-9, atol=0)


# --- sigmoid, shifted cosine, EDM against the papers --------------------------------------------
def chen_gamma(t, start=-3.0, end=3.0, tau=1.0):
    """γ(t) of Chen (2023), Algorithm 1, without the clip."""
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    v_start, v_end = sig(start / tau), sig(end / tau)
    return (v_end - sig((t * (end - start) + start) / tau)) / (v_end - v_start)


@pytest.mark.parametrize("params", [{}, {"start": 0.0, "end": 3.0, "tau": 0.7}])
def test_sigmoid_is_chen_gamma_on_a_rescaled_time(params):
    s = SigmoidSchedule(**params)
    gamma_min = s.gamma_min
    # t_end: where Chen's γ reaches γ_min, found here by bisection on his formula
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if chen_gamma(mid, **params) > gamma_min else (lo, mid)
    t = np.linspace(0, 1, 101)
    a2 = torch.exp(-s.integral(torch.tensor(t, dtype=F64))).numpy()
    np.testing.assert_allclose(a2, chen_gamma(t * lo, **params), rtol=1e-8, atol=1e-15)
    lam1 = float(s.log_snr(torch.tensor(1.0, dtype=F64)))
    assert lam1 == pytest.approx(math.log(gamma_min / (1 - gamma_min)), abs=1e-9)
    assert float(s.alpha(torch.tensor(1.0, dtype=F64))) == pytest.approx(math.sqrt(gamma_min))


def test_shifted_cosine_is_hoogeboom_cosine_minus_two_log_shift():
    lam_max, lam_min = 15.0, -15.0
    t_min, t_max = math.atan(math.exp(-0.5 * lam_max)), math.atan(math.exp(-0.5 * lam_min))
    t = np.linspace(0, 1, 101)
    plain = -2 * np.log(np.tan(t_min + t * (t_max - t_min)))  # logsnr_schedule_cosine
    one = make_schedule("shifted-cosine", shift=1.0).log_snr(torch.tensor(t, dtype=F64))
    np.testing.assert_allclose(one.numpy(), plain, rtol=0, atol=1e-9)
    assert float(one[0]) == pytest.approx(lam_max) and float(one[-1]) == pytest.approx(lam_min)
    for shift in (2.0, 3.0, 0.5):
        shifted = ShiftedCosineSchedule(shift).log_snr(torch.tensor(t, dtype=F64))
        torch.testing.assert_close(shifted, one - 2 * math.log(shift), rtol=0, atol=1e-12)
    assert make_schedule("shifted-cosine") == ShiftedCosineSchedule(2.0)


def test_edm_noise_levels_are_karras_rho_7():
    s, rho = EDMSchedule(), 7.0
    t = np.linspace(0, 1, 101)
    sigma = (0.002 ** (1 / rho) + t * (80 ** (1 / rho) - 0.002 ** (1 / rho))) ** rho
    c = VPPath(s).coefficients(torch.tensor(t, dtype=F64))
    np.testing.assert_allclose((c.b / c.a).numpy(), sigma, rtol=1e-9)
    np.testing.assert_allclose(c.a.numpy(), 1 / np.sqrt(1 + sigma**2), rtol=1e-12)


# --- the drawn schedule -------------------------------------------------------------------------
def test_drawn_is_the_pchip_interpolant_with_its_derivative():
    s = make_schedule("points")
    t, lam = (np.array(v) for v in zip(*DEFAULT_POINTS, strict=True))
    spline = PchipInterpolator(t, lam)
    inside = np.linspace(t[0], t[-1], 997)
    got = s.log_snr(torch.tensor(inside, dtype=F64)).numpy()
    np.testing.assert_allclose(got, spline(inside), rtol=0, atol=1e-12)
    slope = s.d_log_snr(torch.tensor(inside, dtype=F64)).numpy()
    np.testing.assert_allclose(slope, spline.derivative()(inside), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(s.log_snr(torch.tensor(t, dtype=F64)).numpy(), lam, atol=1e-12)


@pytest.mark.parametrize("points", [DEFAULT_POINTS, FLAT_END], ids=["default", "flat-end"])
def test_drawn_extensions_are_slope_continuous(points):
    s = DrawnSchedule(points)
    for knot in (points[0][0], points[-1][0]):
        if knot in (0.0, 1.0):
            continue
        h = 1e-7
        at = torch.tensor([knot - h, knot, knot + h], dtype=F64)
        lam, slope = s.log_snr(at), s.d_log_snr(at)
        assert float(slope[0]) == pytest.approx(float(slope[2]), rel=1e-4, abs=1e-4)
        assert float((lam[2] - lam[0]) / (2 * h)) == pytest.approx(
            float(slope[1]), rel=1e-4, abs=1e-4
        )


def test_drawn_left_extension_behaves_like_beta0_positive():
    """λ ≈ −log t near 0, so β(0) = e^{m t₁ − λ₁}/t₁ with m = λ′(t₁) + 1/t₁, positive and finite."""
    s = make_schedule("points")
    t1, l1 = DEFAULT_POINTS[0]
    d1 = float(s.d_log_snr(torch.tensor(t1, dtype=F64)))
    m = d1 + 1 / t1
    assert float(s.beta(torch.tensor(0.0, dtype=F64))) == pytest.approx(math.exp(m * t1 - l1) / t1)
    tiny = torch.tensor([1e-9, 1e-12], dtype=F64)
    limit = torch.full_like(tiny, l1 + math.log(t1) - m * t1)
    torch.testing.assert_close(s.log_snr(tiny) + torch.log(tiny), limit, rtol=1e-6, atol=1e-6)


def test_drawn_replica_of_linear_is_close_to_linear():
    drawn = DrawnSchedule(sample_log_snr(LinearSchedule(), 32, spacing="lambda"))
    lin = LinearSchedule()
    t = torch.linspace(0.005, 1, 400, dtype=F64)
    assert float((drawn.log_snr(t) - lin.log_snr(t)).abs().max()) < 0.02
    assert float((drawn.beta(t) - lin.beta(t)).abs().max()) < 0.5
    c_d, c_l = VPPath(drawn).coefficients(FINE), VPPath(lin).coefficients(FINE)
    assert float((c_d.a - c_l.a).abs().max()) < 1e-3


REF = make_dataset("8gaussians").reference()


def run(schedule, eta, steps=100, n=400):
    path = VPPath(schedule)
    field = ExactField(path, REF, dtype=F64)
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    grid = time_grid(1.0, 1e-3, steps)
    return sample_euler(field, path, x, grid, eta=eta, generator=torch.Generator().manual_seed(1))


def distances(a, b):
    """Mean distance between the two runs' particles at each frame, (T+1,)."""
    return (a - b).norm(dim=2).mean(1)


@pytest.mark.usefixtures("one_thread")
def test_a_drawn_copy_of_the_linear_schedule_reproduces_its_runs():
    """32 points of the linear λ(t), evenly in λ over [0.005, 1]: the same particles, start noise
    and Brownian increments give the same runs. The probability-flow ODE depends on the schedule
    only through λ at its grid times, so its endpoints alone would hardly tell schedules apart
    (a drawn cosine lands within 3e-3); every frame of it, and the SDE, do."""
    linear = LinearSchedule()
    drawn = DrawnSchedule(sample_log_snr(linear, 32, spacing="lambda"))
    ode = distances(run(linear, 0.0), run(drawn, 0.0))
    assert float(ode[-1]) <= 5e-3 and float(ode.max()) <= 5e-3  # measured 2.2e-4
    sde = distances(run(linear, 1.0), run(drawn, 1.0))
    assert float(sde[-1]) <= 2e-2  # measured 6.7e-3
    # the comparison can fail: a drawn cosine is far off (0.35 along the ODE, 1.5 for the SDE)
    cosine = DrawnSchedule(sample_log_snr(CosineSchedule(), 32, spacing="lambda"))
    assert float(distances(run(linear, 0.0), run(cosine, 0.0)).max()) > 0.1
    assert float(distances(run(linear, 1.0), run(cosine, 1.0))[-1]) > 0.5


# --- validation ---------------------------------------------------------------------------------
BAD = {
    "at least 2 points": [(0.5, 1.0)],
    "at most 64 points": [(i / 64, 30 - i * 0.9) for i in range(65)],
    "not a finite number": [(0.0, 5.0), (0.5, math.nan), (1.0, -5.0)],
    "outside \\[0, 1\\]": [(0.0, 5.0), (1.2, -5.0)],
    "log-SNR 31, outside": [(0.0, 31.0), (1.0, -5.0)],
    "must go left to right": [(0.0, 5.0), (0.6, 0.0), (0.5, -5.0)],
    "must fall from left to right": [(0.0, 5.0), (0.5, 6.0), (1.0, -5.0)],
    "falls too fast": [(0.005, 13.0), (0.5, 2.0), (0.502, -2.0), (1.0, -13.0)],
    "beta .* reaches": [(0.0, 10.0), (0.9, -6.0), (0.9 + 1e-6, -25.0), (1.0, -26.0)],
    "is not a \\(t, log-SNR\\) pair": [(0.0, 5.0), (0.5,), (1.0, -5.0)],
}  # fmt: skip


@pytest.mark.parametrize("match", list(BAD))
def test_bad_drawings_are_refused_with_one_line(match):
    with pytest.raises(ValueError, match=match) as info:
        DrawnSchedule(BAD[match])
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=match):
        make_schedule("points", points=BAD[match])


def test_the_steepness_bound_is_one_unit_of_lambda_per_thousandth():
    """A cliff of 4 in λ over 0.008 of time (0.72 per 1000-step step, which runs reproduce) is
    taken; over 0.004 (1.44 per step, which shifts the samples) it is refused; outside the band
    −4 ≤ λ ≤ 8 steepness is only bounded through β."""

    def cliff(centre, width):
        return ((0.005, 13.0), (0.5 - width / 2, centre + 2), (0.5 + width / 2, centre - 2),
                (1.0, -13.0))  # fmt: skip

    for centre in (7.0, 2.0, -2.0):
        DrawnSchedule(cliff(centre, 0.008))
        with pytest.raises(ValueError, match=r"falls too fast after t = 0\.[45]"):
            DrawnSchedule(cliff(centre, 0.004))
    DrawnSchedule(((0.0, 20.0), (0.3, 12.0), (0.3005, 9.0), (1.0, -10.0)))  # above the band
    DrawnSchedule(((0.0, 5.0), (0.9, -5.0), (0.9005, -8.0), (1.0, -10.0)))  # below it


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "no schedule points"), ("0:1,0.5", "cannot read schedule point 2"),
     ("0:1,a:b", "cannot read"), ("0:1:2,1:0", "cannot read"), ("0:5,1:6", "must fall"),
     ("0:5,0.5:inf,1:-5", "not a finite number")],
)  # fmt: skip
def test_bad_text_is_refused_with_one_line(text, match):
    with pytest.raises(ValueError, match=match) as info:
        parse_points(text)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=match):
        make_schedule("points", points=text)


@st.composite
def point_sets(draw):
    n = draw(st.integers(2, 64))
    ts = draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n, unique=True))
    lams = draw(st.lists(st.floats(-30.0, 30.0), min_size=n, max_size=n, unique=True))
    ts = sorted(ts)
    # valid drawings only: points at least MIN_GAP apart in t, the first at 0 or past MIN_GAP
    assume(all(b - a >= MIN_GAP for a, b in itertools.pairwise(ts)))
    assume(ts[0] == 0.0 or ts[0] >= MIN_GAP)
    return tuple(zip(ts, sorted(lams, reverse=True), strict=True))


@settings(max_examples=300, deadline=None)
@given(point_sets())
def test_format_then_parse_is_the_identity(points):
    text = format_points(points)
    assert parse_points(text) == points
    assert all(c in "0123456789.-e:," for c in text)


def test_rounded_text_round_trips_and_the_default_is_the_linear_sample():
    points = sample_log_snr(LinearSchedule(), 64, spacing="lambda")
    short = format_points(points, digits=6)
    assert len(short) < 1200 and parse_points(format_points(parse_points(short))) == parse_points(
        short
    )
    assert DEFAULT_POINTS == sample_log_snr(LinearSchedule(), 8, digits=4)
    assert parse_points(" 0:8, 1:-10 ") == ((0.0, 8.0), (1.0, -10.0))
    assert format_points(((0.0, 8.0), (0.25, -1e-05), (1.0, -10.5))) == "0:8,0.25:-1e-05,1:-10.5"


# --- sampled points and make_schedule -----------------------------------------------------------
@pytest.mark.parametrize("spacing", ["arc", "lambda", "t"])
@pytest.mark.parametrize("name", list(SCHEDULES))
def test_every_schedule_can_be_redrawn(name, spacing):
    named = make_schedule(name)
    for n in (2, 8, 32, 64):
        points = sample_log_snr(named, n, spacing=spacing)
        assert len(points) == n and points[-1][0] == 1.0
        finite0 = math.isfinite(float(named.log_snr(torch.tensor(0.0, dtype=F64))))
        assert points[0][0] == (0.0 if finite0 else 0.005)
        DrawnSchedule(points)  # valid, not too steep
    lam = named.log_snr(torch.tensor([p[0] for p in points], dtype=F64))
    np.testing.assert_allclose([p[1] for p in points], lam.numpy(), rtol=1e-5, atol=1e-5)


def test_make_schedule_keeps_its_old_signature_and_meaningful_equality():
    assert make_schedule("linear", 0.5, 5.0) == LinearSchedule(0.5, 5.0)
    for name in SCHEDULES:
        matters = make_schedule(name, 0.0, 2.0) != make_schedule(name, 1.0, 3.0)
        assert matters == (name in ("linear", "constant")), name
        hash(make_schedule(name))
    text = format_points(DEFAULT_POINTS)
    assert make_schedule("points", points=text) == make_schedule("points", points=DEFAULT_POINTS)
    assert make_schedule("points", points=[list(p) for p in DEFAULT_POINTS]) == make_schedule(
        "points"
    )
    assert make_schedule("points", points="0:5,1:-5") != make_schedule("points")
    assert make_schedule("shifted-cosine", shift=3) != make_schedule("shifted-cosine")
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("quadratic")
    with pytest.raises(ValueError, match="shift > 0"):
        make_schedule("shifted-cosine", shift=0.0)


@pytest.mark.parametrize("grid", ["logsnr", "karras", "uniform"])
@pytest.mark.parametrize("schedule", cases(LogSNRSchedule))
def test_time_grids_work_on_log_snr_schedules(schedule, grid):
    times = make_times(VPPath(schedule), grid, 50, 1.0)
    assert bool((times.diff() < 0).all()) and float(times[0]) == 1.0

"""Sampling, training targets and field conversions of Gaussian paths (docs/MATH.md §2-3)."""

import pytest
import torch

from models.paths import FIELD_KINDS, LinearFMPath, TrigPath, VPPath
from models.processes import EDMPath, SubVPPath, VEPath
from models.schedules import make_schedule

PATHS = [
    VPPath(make_schedule("linear")),
    VPPath(make_schedule("cosine")),
    LinearFMPath(),
    TrigPath(),
    SubVPPath(make_schedule("linear")),
    SubVPPath(make_schedule("cosine")),
    VEPath(),
    EDMPath(),
]
IDS = ["vp-linear", "vp-cosine", "fm", "trig", "subvp-linear", "subvp-cosine", "ve", "edm"]


@pytest.mark.parametrize("path", PATHS, ids=IDS)
@pytest.mark.parametrize("t", [0.05, 0.3, 0.7, 0.95])
@pytest.mark.parametrize("src", FIELD_KINDS)
def test_conversions_round_trip(path, t, src, gen):
    x = torch.randn(64, 2, generator=gen, dtype=torch.float64)
    value = torch.randn(64, 2, generator=gen, dtype=torch.float64)
    for dst in FIELD_KINDS:
        back = path.convert(path.convert(value, x, t, src, dst), x, t, dst, src)
        torch.testing.assert_close(back, value, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_targets_agree_with_conversions(path, gen):
    """The target for one pair is the field the pair's x_t implies: x̂ = x0 ⇒ ε̂ = ε, v = u."""
    x0 = torch.randn(32, 2, generator=gen, dtype=torch.float64)
    t = torch.rand(32, generator=gen, dtype=torch.float64) * 0.9 + 0.05
    xt, eps = path.sample(x0, t, gen)
    for kind in FIELD_KINDS:
        torch.testing.assert_close(path.from_x0(x0, xt, t, kind), path.target(x0, eps, t, kind))


def test_linear_fm_velocity_target_is_noise_minus_data(gen):
    x0 = torch.randn(10, 2, generator=gen)
    eps = torch.randn(10, 2, generator=gen)
    torch.testing.assert_close(LinearFMPath().target(x0, eps, 0.3, "velocity"), eps - x0)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_sample_has_path_moments(path, gen):
    x0 = torch.full((200_000, 2), 1.5, dtype=torch.float64)
    xt, _ = path.sample(x0, 0.4, gen)
    c = path.coefficients(torch.tensor(0.4, dtype=torch.float64))
    se = float(c.b) / 200_000**0.5
    assert torch.allclose(xt.mean(0), 1.5 * c.a, atol=5 * se)
    assert torch.allclose(xt.std(0), c.b.expand(2), rtol=0.01)


def test_stochastic_start_is_before_the_singularity():
    fm, vp = LinearFMPath(), VPPath(make_schedule("linear"))
    assert vp.stochastic_start(1.0, 100) == 1.0
    assert fm.stochastic_start(0.0, 100) == 1.0
    assert 0.9 <= fm.stochastic_start(1.0, 100) < 1.0
    assert fm.stochastic_start(1.0, 1) == pytest.approx(0.9)


def test_at_is_safe_while_another_thread_clears_the_memo():
    # Runs split over threads share one path; remember() clears a memo past 100,000 times.
    # at() once looked a time up twice and raised KeyError when the memo was cleared between.
    import random
    import sys
    import threading
    import time

    path, errors, stop = LinearFMPath(), [], threading.Event()
    path.at(0.5)
    full = {float(-i - 1): {} for i in range(100_001)}

    def fill() -> None:
        while not stop.is_set():
            path._memo.update(full)
            path.remember(torch.tensor([0.25], dtype=torch.float64))  # clears the memo

    def ask(seed: int) -> None:
        draw = random.Random(seed)
        while not stop.is_set():
            try:
                assert 0 <= path.at(draw.random())["a"] <= 1
            except (KeyError, AssertionError) as exc:
                errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    threads = [threading.Thread(target=fill), *(threading.Thread(target=ask, args=(s,))
                                                 for s in range(2))]  # fmt: skip
    try:
        for thread in threads:
            thread.start()
        time.sleep(3)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(interval)
    assert errors == []

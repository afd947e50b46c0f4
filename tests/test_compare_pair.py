"""Two runs compared (models/compare/pair.py): B equal to A is A bit for bit, the only
difference is the one chosen, frames are matched by t, and the readouts are what they say
(checked against direct computations)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from models.compare.pair import (
    Side,
    density_difference,
    match_frames,
    pair_sw2,
    simulate_pair,
    twin_distances,
)
from models.evaluation.metrics import sliced_w2
from models.run.config import RunConfig

BASE = RunConfig(particles=400, steps=20, exact_density=False)


@pytest.mark.parametrize(
    "changes",
    [
        dict(),
        dict(kind="sde"),
        dict(kind="sde", solver="ddim", eta=0.6, direction="forward"),
        dict(kind="conditional"),
    ],
)
def test_b_equal_to_a_is_a_bit_for_bit(changes):
    config = replace(BASE, **changes)
    pair = simulate_pair(Side(config), Side(config))
    np.testing.assert_array_equal(pair.a.trajectories, pair.b.trajectories)
    np.testing.assert_array_equal(pair.a.labels, pair.b.labels)
    assert not pair.twin_distance.any() and not pair.sw2.any()
    assert not density_difference(pair).any()  # a blank difference heatmap
    assert pair.changes == []


def test_a_is_the_run_it_is_alone():
    """A comparison does not change A: its arrays are those of the same run alone."""
    from models.run.simulate import simulate

    a = replace(BASE, kind="sde")
    pair = simulate_pair(Side(a), Side(replace(a, steps=7, solver="ddim")))
    np.testing.assert_array_equal(pair.a.trajectories, simulate(a).trajectories)


def test_twins_start_from_the_same_noise():
    """Reverse: the same standard normals scaled by each run's b(t_start); forward: the same
    data points."""
    a = replace(BASE, process="vp")
    pair = simulate_pair(Side(a), Side(replace(a, solver="heun", steps=5)))
    np.testing.assert_array_equal(pair.a.trajectories[0], pair.b.trajectories[0])
    fwd = replace(a, direction="forward", kind="sde")
    pair = simulate_pair(Side(fwd), Side(replace(fwd, kind="ode")))
    np.testing.assert_array_equal(pair.a.trajectories[0], pair.b.trajectories[0])


def test_ode_against_sde_converges_as_eta_goes_to_zero():
    """The SDE of noise η on A's noise (VP: it starts at t = 1 too) ends ever closer to the ODE
    run: the twin distance shrinks about in proportion to η, and is 0 at η = 0."""
    a = replace(BASE, process="vp", steps=100, particles=1000)
    ends = []
    for eta in (0.4, 0.1, 0.025):
        pair = simulate_pair(Side(a), Side(replace(a, kind="sde", eta=eta)))
        ends.append(pair.twin_distance[-1])
    assert ends[0] > 2.5 * ends[1] > 2.5**2 * ends[2] > 0, ends
    pair = simulate_pair(Side(a), Side(replace(a, kind="sde", eta=0.0)))
    assert pair.twin_distance.max() == 0


def test_sde_runs_on_the_same_grid_differ_only_by_their_solver():
    """Euler–Maruyama and DDIM's η = 1 step on the same increments end far closer to each
    other than Euler–Maruyama from the same start on independent increments does to itself."""
    from models.compare.noise import GivenNoise
    from models.run.simulate import simulate

    a = replace(BASE, kind="sde", process="vp", steps=200, particles=1000)
    pair = simulate_pair(Side(a), Side(replace(a, solver="ddim")))
    other = torch.randn((200, 1000, 2), generator=torch.Generator().manual_seed(9))
    apart = simulate(a, step_noise=GivenNoise(other)).trajectories
    assert (apart[0] == pair.a.trajectories[0]).all()  # the same start
    apart_end = np.linalg.norm(apart[-1] - pair.a.trajectories[-1], axis=-1).mean()
    assert pair.twin_distance[-1] < 0.25 * apart_end, (pair.twin_distance[-1], apart_end)


def test_frames_are_matched_by_t():
    """A 10-step B beside a 100-step A shows its frame k beside A's frame 10k, and the frame
    it last reached between; the run with more frames leads."""
    ta, tb = np.linspace(1, 0, 101), np.linspace(1, 0, 11)
    m = match_frames(ta, tb)
    np.testing.assert_array_equal(m.a, np.arange(101))
    assert all(m.b[10 * k] == k for k in range(11))
    assert m.b[15] == 1 and m.b[19] == 1
    np.testing.assert_array_equal(m.times, ta)
    m2 = match_frames(tb, ta)  # B leads
    np.testing.assert_array_equal(m2.b, np.arange(101))
    assert all(m2.a[10 * k] == k for k in range(11))
    # grids made by different rules meet at the same t within a few ulps
    assert match_frames(ta, tb + 1e-13).b[50] == 5
    # opposite ways: the nearest t
    m3 = match_frames(ta, tb[::-1])
    assert m3.b[0] == 10 and m3.b[100] == 0


def test_a_run_that_starts_later_holds_its_first_frame():
    ta = np.linspace(1, 0, 101)
    tb = np.linspace(0.9, 0, 10)
    m = match_frames(ta, tb)
    assert (m.b[:10] == 0).all() and m.b[10] == 0 and m.b[20] == 1


def test_readouts_against_direct_computations():
    gen = np.random.default_rng(0)
    a = gen.standard_normal((6, 500, 2)).astype(np.float32)
    b = gen.standard_normal((3, 500, 2)).astype(np.float32) + 1.0
    m = match_frames(np.linspace(0, 1, 6), np.linspace(0, 1, 3))
    d = twin_distances(a, b, m)
    for f in range(6):
        direct = np.mean([np.hypot(*(a[m.a[f], p] - b[m.b[f], p])) for p in range(500)])
        assert d[f] == pytest.approx(direct, rel=1e-6)
    sw = pair_sw2(a, b, m)
    for f in (0, 5):
        exact = sliced_w2(torch.from_numpy(a[m.a[f]]), torch.from_numpy(b[m.b[f]]), 4096,
                          generator=torch.Generator().manual_seed(0))  # fmt: skip
        assert sw[f] == pytest.approx(exact, rel=0.1)
    assert twin_distances(a, b[:, :400], m) is None


def test_changes_name_what_b_changes():
    a = replace(BASE, solver="euler", steps=20)
    pair = simulate_pair(Side(a), Side(replace(a, solver="heun", steps=10)))
    changed = {k: (va, vb) for k, va, vb in pair.changes}
    assert changed["solver"] == ("euler", "heun") and changed["steps"] == (20, 10)
    assert set(changed) == {"solver", "solver_requested", "steps"}


def test_running_at_once_gives_the_same_pair():
    """Where a step is work enough, A and B run on two threads: the same arrays."""
    a = replace(BASE, dataset="spirals", particles=3000, steps=10, kind="sde", process="vp")
    b = replace(a, solver="ddim", steps=5)
    one = simulate_pair(Side(a), Side(b), workers=1)
    two = simulate_pair(Side(a), Side(b), workers=2)
    np.testing.assert_array_equal(one.a.trajectories, two.a.trajectories)
    np.testing.assert_array_equal(one.b.trajectories, two.b.trajectories)


def test_a_superseded_pair_stops():
    from models.samplers import Cancelled

    a = replace(BASE, dataset="spirals", particles=3000, steps=50, process="vp")
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    for workers in (1, 2):
        calls.clear()
        with pytest.raises(Cancelled):
            simulate_pair(Side(a), Side(replace(a, steps=40)), should_stop=stop, workers=workers)
        assert len(calls) < 10


def test_difference_needs_the_density_it_draws():
    pair = simulate_pair(Side(BASE), Side(replace(BASE, steps=10)))
    assert density_difference(pair).shape == (21, 128, 128)
    with pytest.raises(ValueError, match="exact"):
        density_difference(pair, "exact")
    pair2 = simulate_pair(Side(BASE), Side(replace(BASE, resolution=64)))
    with pytest.raises(ValueError, match="grids"):
        density_difference(pair2)


def test_no_twins_without_the_same_start():
    """Another seed, or a forward run from another data set, starts elsewhere: particle i of B
    is no twin of A's, and no twin distance is given (SW2 still is)."""
    a = replace(BASE, kind="sde")
    for b in (replace(a, seed=3), replace(a, direction="forward", dataset="moons")):
        a2 = replace(a, direction=b.direction)
        pair = simulate_pair(Side(a2), Side(b))
        assert pair.twin_distance is None and "independent" in pair.shared
        assert pair.sw2.max() > 0
    # a reverse run from another data set starts from the same noise: twins
    pair = simulate_pair(Side(BASE), Side(replace(BASE, dataset="moons")))
    assert pair.twin_distance is not None and pair.twin_distance[0] == 0


def test_every_last_frame_is_shown_and_the_end_is_the_end():
    """Runs that end at different times (10 steps to t = 0.1 beside 20 log-SNR steps to
    0.001, and the other way round): the timeline reaches both ends, its last step shows
    both last frames, and the twin distance there is that of the two final frames."""
    for ta, tb in ((np.linspace(1, 0.1, 11), np.geomspace(1, 0.001, 21)),
                   (np.linspace(1, 0.3, 11), np.linspace(1, 0, 6))):  # fmt: skip
        for x, y in ((ta, tb), (tb, ta)):
            m = match_frames(x, y)
            assert m.a[-1] == len(x) - 1 and m.b[-1] == len(y) - 1
            assert set(m.a) == set(range(len(x))) or len(x) <= len(y)
            assert np.all(np.diff(m.a) >= 0) and np.all(np.diff(m.b) >= 0)
    a = replace(BASE, process="vp", steps=10, t_min=0.1)
    pair = simulate_pair(Side(a), Side(replace(a, steps=20, t_min=0.0, time_grid="logsnr")))
    final = np.linalg.norm(pair.a.trajectories[-1] - pair.b.trajectories[-1], axis=-1).mean()
    assert pair.twin_distance[-1] == pytest.approx(final, rel=1e-6)

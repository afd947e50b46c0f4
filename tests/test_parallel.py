"""A run's parts on several threads (models/accel/parallel.py) give the serial run's numbers, stop
together, and report the failure the serial run meets first."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from models.accel import parallel
from models.accel.parallel import particle_blocks, run_in_blocks
from models.learned.network import Architecture, LearnedField, build_network
from models.run.config import RunConfig
from models.run.nonfinite import NonFiniteRun
from models.run.result import FieldSource
from models.run.simulate import build, simulate
from models.samplers import Cancelled, sample_euler, sample_heun, time_grid

MIN_WORK_PER_STEP = parallel.MIN_WORK_PER_STEP  # the app's threshold


@pytest.fixture(autouse=True)
def split_test_sized_runs(monkeypatch):
    """Split the runs of these tests (spirals, N = 1200-1500): in the compiled kernel
    (models/accel/mixture_kernel.py) they are too little work for the app's threshold, and these
    tests are about how split runs behave, not about when a run is split."""
    monkeypatch.setattr(parallel, "MIN_WORK_PER_STEP", 1e4)


class Linear:
    """v = −x (score −x): each row's arithmetic is the same in any block, so split and serial
    runs must agree bit for bit, noise included. Heavy enough on paper to be split."""

    work_per_point = 10**6

    def __call__(self, x, t, want=("velocity",)):
        return {k: -x for k in want}

    def nearest_label(self, x, t):
        return torch.zeros(len(x), dtype=torch.long)


class NaNFrom:
    """The exact field, NaN at points with lo < x ≤ hi from t_bad on (reverse runs), for each
    (lo, hi, t_bad) of ``spans``."""

    def __init__(self, field, spans: list[tuple[float, float, float]]):
        self.field, self.spans, self.work_per_point = field, spans, 10**6

    def __call__(self, x, t, want=("velocity",)):
        out = self.field(x, t, want)
        for lo, hi, t_bad in self.spans:
            bad = (x[:, 0] > lo) & (x[:, 0] <= hi) & (float(t) <= t_bad)
            for k in want:
                out[k] = torch.where(bad[:, None], torch.nan, out[k])
        return out

    def nearest_label(self, x, t):
        return self.field.nearest_label(x, t)


@pytest.mark.parametrize("blocks", [2, 3])
@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_blocks_give_the_serial_run_bit_for_bit_noise_included(blocks, eta):
    path, _, _ = build(RunConfig(process="vp"))
    x = torch.randn(301, 2, generator=torch.Generator().manual_seed(1))
    times = time_grid(1.0, 0.0, 40)
    serial = sample_euler(Linear(), path, x, times, eta, torch.Generator().manual_seed(7))
    split = run_in_blocks(sample_euler, Linear(), path, x, times, eta,
                          torch.Generator().manual_seed(7), None, blocks)  # fmt: skip
    assert split.shape == serial.shape == (41, 301, 2)
    assert torch.equal(split, serial)


@pytest.mark.parametrize(
    "settings",
    [dict(process="vp"), dict(process="vp", kind="sde"), dict(process="fm", kind="sde", eta=0.5),
     dict(process="fm", direction="forward", kind="sde", eta=0.5),
     dict(process="vp", solver="heun", steps=40)],
)  # fmt: skip
def test_a_split_run_of_the_exact_field_equals_the_serial_one(settings):
    config = RunConfig(dataset="spirals", particles=1200, resolution=48, **settings)
    assert particle_blocks(build(config)[2], config.particles, workers=2) == 2
    serial = simulate(config, workers=1)
    split = simulate(config, workers=2)
    np.testing.assert_allclose(split.trajectories, serial.trajectories, atol=1e-5)
    np.testing.assert_allclose(split.density, serial.density, atol=1e-6)
    np.testing.assert_array_equal(split.labels, serial.labels)


def test_the_pde_beside_the_particles_gives_the_serial_solution():
    config = RunConfig(dataset="spirals", process="fm", kind="sde", eta=0.5, particles=1200,
                       steps=20, resolution=32, pde=True)  # fmt: skip
    serial, split = simulate(config, workers=1), simulate(config, workers=2)
    np.testing.assert_array_equal(split.pde_density, serial.pde_density)
    np.testing.assert_array_equal(split.pde_outflow, serial.pde_outflow)
    np.testing.assert_allclose(split.trajectories, serial.trajectories, atol=1e-5)


@pytest.mark.parametrize("slow_block", [0, 1])
def test_a_failing_block_reports_the_failure_the_serial_run_meets_first(slow_block):
    # Block 0 holds the points with x < 0, block 1 those with x > 0 (v = −x keeps the signs).
    # Block 0 fails at step 10, block 1 at step 25; the slow block is made to reach its step
    # last in time, so the failure raised first is not always the first in step order.
    fail_at = {0: 10, 1: 25}

    def callback(info):
        block = int(info["x"][0, 0] > 0)
        if block == slow_block:
            time.sleep(0.004)
        if info["i"] >= fail_at[block]:
            raise ValueError(f"block {block} failed at step {info['i']}")

    x = torch.cat([-torch.rand(100, 2) - 0.1, torch.rand(100, 2) + 0.1])
    path, _, _ = build(RunConfig(process="fm"))
    with pytest.raises(ValueError, match=r"block 0 failed at step 10$"):
        run_in_blocks(sample_euler, Linear(), path, x, time_grid(1.0, 0.0, 40), 0.0, None,
                      callback, blocks=2)  # fmt: skip


def test_a_field_that_raises_in_a_fast_block_does_not_hide_an_earlier_failure():
    # Block 1 (x > 0) is fast and its field raises at t = 0.75 (step 10); block 0 is slow and
    # its callback fails at step 3, which the serial run meets first (review of this module).
    class RaisesLate(Linear):
        def __call__(self, x, t, want=("velocity",)):
            if bool((x[:, 0] > 0).all()) and float(t) <= 0.75:
                raise RuntimeError("field failed")
            return super().__call__(x, t, want)

    def callback(info):
        if bool((info["x"][:, 0] < 0).all()):
            time.sleep(0.01)
            if info["i"] >= 3:
                raise ValueError("callback failed at step 3")

    x = torch.cat([-torch.rand(128, 2) - 0.1, torch.rand(128, 2) + 0.1])
    path, _, _ = build(RunConfig(process="fm"))
    with pytest.raises(ValueError, match="step 3"):
        run_in_blocks(sample_euler, RaisesLate(), path, x, time_grid(1.0, 0.0, 40), 0.0, None,
                      callback, blocks=2)  # fmt: skip


class Starts(Linear):
    """Records the row of ``x0`` each block starts at (at the first step, t = 1)."""

    def __init__(self, x0):
        self.x0, self.starts = x0, set()

    def __call__(self, x, t, want=("velocity",)):
        if float(t) == 1.0:  # the first step sees the rows as given
            self.starts.add(int((self.x0 == x[0]).all(1).nonzero()[0, 0]))
        return super().__call__(x, t, want)


def test_blocks_start_at_multiples_of_64_rows():
    # Rows at a block's end that is not take the scalar tails of torch's kernels and round
    # differently from the same rows in one block (measured: spirals, N = 1500, two blocks).
    path, _, _ = build(RunConfig(process="fm"))
    for n, blocks in ((1500, 2), (5001, 3), (1000, 4)):
        x0 = torch.randn(n, 2)
        field = Starts(x0)
        out = run_in_blocks(sample_euler, field, path, x0, time_grid(1.0, 0.0, 2), 0.0, None,
                            None, blocks)  # fmt: skip
        assert out.shape == (3, n, 2)
        assert len(field.starts) == blocks, field.starts
        assert all(start % 64 == 0 for start in field.starts), field.starts


def test_a_split_spirals_run_equals_the_serial_one_at_uneven_sizes():
    config = RunConfig(dataset="spirals", particles=1500, steps=30, resolution=32)
    serial, split = simulate(config, workers=1), simulate(config, workers=2)
    np.testing.assert_allclose(split.trajectories, serial.trajectories, rtol=0, atol=1e-6)


def test_a_non_finite_split_run_is_refused_as_the_serial_run_is():
    def make_field(path, exact):
        return NaNFrom(exact, [(0.0, 10.0, 0.5)])  # particles at x > 0 from t = 0.5 on

    config = RunConfig(dataset="spirals", particles=1200, steps=50, resolution=32)
    messages = []
    for workers in (1, 2):
        with pytest.raises(NonFiniteRun) as info:
            simulate(config, source=FieldSource(make=make_field), workers=workers)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "t = 0.48" in messages[0], messages[0]


def test_a_superseded_split_run_stops_every_block_and_says_cancelled():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 10

    config = RunConfig(dataset="spirals", particles=1200, steps=100, resolution=32)
    with pytest.raises(Cancelled):
        simulate(config, should_stop=should_stop, workers=2)
    assert len(calls) < 20  # both blocks stopped within a step of the first stop


def test_the_callback_is_never_called_by_two_blocks_at_once():
    inside, overlaps = threading.Lock(), []

    def callback(info):
        if not inside.acquire(blocking=False):
            overlaps.append(info["i"])
            return
        time.sleep(0.001)  # widen the window a second block would need
        inside.release()

    path, _, _ = build(RunConfig(process="fm"))
    x = torch.randn(400, 2)
    run_in_blocks(sample_heun, Linear(), path, x, time_grid(1.0, 0.0, 30), 0.0, None, callback,
                  blocks=3)  # fmt: skip
    assert overlaps == []


def test_only_large_work_per_step_is_split(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_WORK_PER_STEP", MIN_WORK_PER_STEP)
    fields = {name: build(RunConfig(dataset=name))[2] for name in ("8gaussians", "spirals")}
    assert particle_blocks(fields["8gaussians"], 2000, workers=2) == 1  # 8 exponentials a point
    # 512 a point, each evaluation one compiled call that releases the GIL (models/fields.py
    # has the measurements: two blocks of spirals at N = 2000 take 0.64 of one thread's time)
    assert particle_blocks(fields["spirals"], 2000, workers=2) == 2
    assert particle_blocks(fields["spirals"], 2000, workers=1) == 1
    assert particle_blocks(fields["spirals"], 500, workers=2) == 1  # no faster in two
    assert particle_blocks(lambda x, t, want: {}, 10**6, workers=2) == 1  # work unknown
    arch = Architecture()
    learned = LearnedField.from_network(build_network(arch, seed=0), arch)
    assert particle_blocks(learned, 2000, workers=2) == 2
    assert particle_blocks(learned, 500, workers=2) == 1


def test_split_runs_taking_turns_as_in_the_server_all_finish():
    # Six sessions' runs at once, each split in two and handing the one compute turn over
    # between steps (app/session/runner.py). Parts from a shared pool of three threads
    # deadlocked here: parts waiting for the turn filled the pool while the run holding the
    # turn waited for its own part, queued behind them.
    from app.session.fairshare import FairTurns

    turns = FairTurns()
    config = RunConfig(dataset="spirals", particles=1200, steps=30, resolution=32)
    done = []

    def session() -> None:
        with turns.turn():
            simulate(config, should_stop=lambda: turns.pass_turn() or False, workers=2)
        done.append(1)

    threads = [threading.Thread(target=session, daemon=True) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(done) == 6


def test_the_app_gives_a_run_the_cores_only_where_torch_computes_on_one_thread():
    import os

    from app.session.state import FlowState, run_workers

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert run_workers() == 1  # torch's own team shares the cores
        torch.set_num_threads(1)  # as the server on a 2-core machine
        assert run_workers() == min(os.cpu_count() or 1, 4)
        state = FlowState(process="vp", dataset="spirals", particles=1200, steps=30)
        result, _ = state.compute()
        serial = simulate(state.config(), workers=1)
        np.testing.assert_allclose(result.trajectories, serial.trajectories, atol=1e-5)
    finally:
        torch.set_num_threads(before)

"""The GUI-free state, the background runner and URL parsing, driven without a browser."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.session.runner import Recomputer
from app.session.state import FlowState
from app.session.url import read_url_values
from models.samplers import Cancelled


def test_defaults_are_the_first_load_of_the_issue():
    s = FlowState()
    c = s.config()
    assert (c.dataset, c.process, c.direction, c.kind) == ("8gaussians", "fm", "reverse", "ode")
    assert (c.particles, c.steps, c.noise_level) == (2000, 100, 0.0)


def test_eta_applies_to_the_sde_and_heun_to_the_ode_only():
    s = FlowState(kind="ode", eta=0.5, solver="heun")
    assert s.config().noise_level == 0.0 and s.config().solver == "heun"
    s.kind = "sde"
    assert s.config().noise_level == 0.5 and s.config().solver == "euler"


def test_recompute_publishes_consistent_arrays_once():
    s = FlowState(steps=20, particles=300, dataset="moons", overlay="score", contours=True)
    calls = []
    s.param.watch(
        lambda *events: calls.append(sorted(e.name for e in events)), ["result", "arrows"]
    )
    s.recompute()
    r = s.result
    assert calls == [["arrows", "result"]]  # one batched update: views redraw once
    assert r.trajectories.shape == (21, 300, 2) and r.times.shape == (21,)
    assert r.density.shape == r.exact_density.shape == (21, 96, 96)
    assert s.arrows["velocity"].shape == (21, 17 * 17, 2) and s.arrows["points"].shape == (289, 2)
    assert r.labels.max() < 2  # two moons


def test_overlay_fields_are_computed_only_when_asked_for():
    s = FlowState(steps=20, particles=300)
    s.recompute()
    assert s.arrows is None  # no overlay: a third of the run's cost saved
    runner = Recomputer(s)
    s.overlay = "velocity"  # on: computed for the run on screen, in the background
    deadline = time.time() + 10
    while s.arrows is None and time.time() < deadline:
        time.sleep(0.02)
    assert s.arrows["velocity"].shape == (21, 17 * 17, 2)
    np.testing.assert_allclose(s.arrows["points"], s.field_arrows(s.result)["points"])
    runner.shutdown()


@pytest.mark.parametrize("ask", [{"contours": True}, {"density_source": "exact"}])
def test_exact_density_is_computed_only_while_shown(ask):
    """Not in a run whose page shows neither the exact heatmap nor contours (it was a third
    of a recompute for a 512-component set); asking for it computes it for the run on screen
    without rerunning the particles, equal to what a run computing it gives; meanwhile the
    views never draw the particles' density in its place."""
    from app.ui.frames import pack_contours, pack_grid

    s = FlowState(steps=20, particles=300, dataset="circles")
    s.recompute()
    result = s.result
    assert result.exact_density is None
    rows, images = pack_grid(result, stacks=("exact",))
    assert images["exact"][0].shape[0] == 0 and np.isnan(rows["exact_peak"]).all()
    assert pack_contours(result) == {"xs": [], "ys": []}
    runner = Recomputer(s)
    published = []
    s.param.watch(lambda e: published.append(e.new), ["result"])
    s.param.update(**ask)
    deadline = time.time() + 20
    while not published and time.time() < deadline:
        time.sleep(0.02)
    (shown,) = published  # one new value, the same particles: not a rerun
    assert shown.same_particles(result) and shown.trajectories is result.trajectories
    assert result.exact_density is None, "the run value itself never changes"
    reference = FlowState(steps=20, particles=300, dataset="circles", **ask)
    reference.recompute()
    np.testing.assert_array_equal(shown.exact_density, reference.result.exact_density)
    runner.shutdown()


def test_controls_are_bounded():
    s = FlowState()
    for name, bad in (("steps", 0), ("steps", 1001), ("particles", 50), ("eta", 1.5),
                      ("beta_max", 100.0), ("dataset", "nosuch")):  # fmt: skip
        with pytest.raises(ValueError):
            setattr(s, name, bad)


def test_weak_schedule_is_reported():
    s = FlowState(process="vp", beta_max=2.0, beta_min=0.0)
    assert s.a_at_noise() > 0.3
    assert FlowState(process="vp").a_at_noise() < 0.01


def test_compute_can_be_cancelled():
    s = FlowState(steps=200)
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 5

    with pytest.raises(Cancelled):
        s.compute(should_stop=stop)
    assert len(calls) == 6  # stopped at the sixth step, not after the whole run


def test_runner_drops_a_superseded_run_instead_of_queueing_it():
    s = FlowState(steps=20, particles=200)
    s.recompute()
    started, release = threading.Event(), threading.Event()
    real = s.compute

    def slow(should_stop=None):
        started.set()
        while not release.is_set():  # a long run that polls its cancel flag, like the samplers
            if should_stop():
                raise Cancelled
            time.sleep(0.01)
        return real(should_stop=should_stop)

    s.compute = slow
    runner = Recomputer(s)
    s.seed = 1  # first request: starts and blocks
    assert started.wait(5)
    s.compute = real
    s.seed = 2  # supersedes the first, which must be dropped at its next poll
    deadline = time.time() + 10
    while (runner.busy or runner.dropped == 0) and time.time() < deadline:
        time.sleep(0.02)
    release.set()
    assert runner.dropped == 1 and not runner.busy
    assert '"seed": 2' in s.result.meta
    runner.shutdown()


def test_runner_keeps_the_last_run_and_explains_a_failure():
    s = FlowState(steps=10, particles=200)
    s.recompute()
    good = s.result

    def broken(should_stop=None):
        raise RuntimeError("CUDA out of memory\nlong details")

    s.compute = broken
    runner = Recomputer(s)
    s.seed = 5
    deadline = time.time() + 5
    while runner.busy and time.time() < deadline:
        time.sleep(0.02)
    assert s.result is good
    assert "CUDA out of memory" in s.notice and "long details" not in s.notice
    runner.shutdown()


def test_a_run_starts_before_the_busy_watchers_and_busy_ends_after_they_ran():
    """The run starts while the page is told it is busy (a watcher of `busy` that waits for
    the run's start returns), and a run finished before the watchers do still ends `busy`
    (the run publishes only once `busy` is set: with no session loop it publishes from the
    compute thread)."""
    s = FlowState(steps=10, particles=200)
    started, seen = threading.Event(), []
    real = s.compute

    def marked(should_stop=None):
        started.set()
        return real(should_stop=should_stop)

    s.compute = marked
    runner = Recomputer(s)

    def waits_for_the_run(event):
        if event.new:
            seen.append(started.wait(5))  # the old order (busy, then the run) waited 5 s here
            time.sleep(0.3)  # the run (~10 ms) is over before the watcher is

    runner.param.watch(waits_for_the_run, ["busy"])
    s.seed = 3
    deadline = time.time() + 10
    while (runner.busy or s.result is None or '"seed": 3' not in s.result.meta) \
            and time.time() < deadline:  # fmt: skip
        time.sleep(0.02)
    assert seen == [True]
    assert not runner.busy and '"seed": 3' in s.result.meta
    runner.shutdown()


def test_url_values_are_checked_one_by_one():
    good, bad = read_url_values({
        "steps": "50", "particles": "999999", "dataset": "moons", "eta": "abc",
        "contours": "true", "kind": "sde", "unknown": "3",
    })  # fmt: skip
    assert good == {"steps": 50, "dataset": "moons", "contours": True, "kind": "sde"}
    assert bad == {"particles": "999999", "eta": "abc"}


def test_url_values_may_arrive_as_strings():
    good, bad = read_url_values({"steps": "50", "beta_max": "12.5", "process": "vp"})
    assert good == {"steps": 50, "beta_max": 12.5, "process": "vp"} and bad == {}
    assert np.isclose(good["beta_max"], 12.5)


def test_a_session_keeps_no_run_but_the_one_it_shows():
    """Overlay fields and the exact density need a run's own data and field later, but the
    state must not keep old runs alive for that (it kept the last four: ~10 MB each)."""
    import gc
    import weakref

    s = FlowState(steps=10, particles=200, dataset="moons")
    old = []
    for seed in range(6):
        s.seed = seed
        s.recompute()
        old.append(weakref.ref(s.result))
    gc.collect()
    assert [r() is not None for r in old] == [False] * 5 + [True]
    s.overlay = "velocity"  # the shown run's own field is still at hand
    assert s.field_arrows(s.result)["velocity"].shape == (11, 17 * 17, 2)

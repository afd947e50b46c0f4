"""The paused frame sent ahead of a new run (FlowViews.preview): what it packs, when the server
sends it, and that the runner hands it over before the run itself. The page's side (a window is
drawn only when it holds all the picture needs) is in tests/ui/test_preview.py."""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from app.session.runner import Recomputer
from app.session.state import FlowState
from app.ui.frames import pack_particles, positions_fine_enough
from app.ui.views import FlowViews


@pytest.fixture(scope="module")
def carried():
    """A run with the carried log-density (its window is sliced too)."""
    s = FlowState(dataset="moons", steps=20, particles=300, shade=True)
    s.recompute()
    assert s.result.log_density is not None
    return s.result


def decode(data: dict, frame: int) -> np.ndarray:
    """Frame ``frame`` of a packed store, (N, 2), as render.js decodes it."""
    (xy,), (scale,), (first,), (n,) = data["xy"], data["scale"], data["first"], data["n"]
    at = 2 * (frame - first) * n
    return np.stack([xy[at : at + n], xy[at + n : at + 2 * n]], 1) * scale


@pytest.mark.parametrize("window", [(0, 0), (5, 13), (12, 20), (20, 20)])
def test_a_window_packs_its_frames_as_the_whole_run_does(carried, window):
    whole, part = pack_particles(carried), pack_particles(carried, window)
    f0, f1 = window
    assert whole["first"] == [0] and part["first"] == [f0]
    assert part["scale"] == whole["scale"]  # the whole run's scale: the same codes
    n = carried.trajectories.shape[1]
    assert part["xy"][0].shape == ((f1 - f0 + 1) * 2 * n,)
    for f in range(f0, f1 + 1):
        np.testing.assert_array_equal(decode(part, f), decode(whole, f))
        np.testing.assert_allclose(decode(part, f), carried.trajectories[f],
                                   atol=0.5001 * whole["scale"][0], rtol=0)  # fmt: skip
    np.testing.assert_array_equal(part["logp"][0].reshape(-1, n),
                                  carried.log_density[f0 : f1 + 1].astype(np.float32))  # fmt: skip
    for key in ("label", "n", "grid"):
        np.testing.assert_array_equal(part[key][0], whole[key][0])


@pytest.mark.parametrize("window", [(-1, 3), (4, 3), (0, 21), (21, 21)])
def test_a_window_outside_the_run_is_refused(carried, window):
    with pytest.raises(ValueError, match=r"outside the run's 0\.\.20"):
        pack_particles(carried, window)


# --- when the server sends one ---------------------------------------------------------------
@pytest.fixture
def views():
    s = FlowState(dataset="moons", steps=20, particles=300)
    s.recompute()
    return FlowViews(state=s)


def new_run(views, **settings):
    """A new run of the views' state with ``settings``, computed but not published."""
    state = views.state
    state.param.update(**settings)
    return state.compute()[0]


def test_a_paused_page_gets_its_frame_and_trail(views):
    views.shown_step.data = {"step": [12]}
    run = new_run(views, seed=7)
    assert views._preview_window(run) == (12 - views.state.trail, 12)
    views.state.trail = 0
    assert views._preview_window(run) == (12, 12)
    views.shown_step.data = {"step": [3]}
    views.state.trail = 8
    assert views._preview_window(run) == (0, 3)  # the trail cut at the first frame


def test_the_step_is_clamped_to_a_shorter_run(views):
    views.shown_step.data = {"step": [20]}
    run = new_run(views, steps=10)
    assert views._preview_window(run) == (2, 10)  # the page clamps the step alike


@pytest.mark.parametrize(
    "settings",
    [
        dict(overlay="velocity"),
        dict(contours=True),
        dict(density_source="exact"),
        dict(density_source="pde"),
        dict(reference=True),
    ],
    ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()),
)
def test_no_window_when_the_picture_needs_more_of_the_run(views, settings):
    views.shown_step.data = {"step": [5]}
    views.state.param.update(**settings)
    run = new_run(views, seed=9)
    if settings.get("reference"):  # a run with its reference path: the dashed line needs it
        from models.run.reference import with_reference

        run = with_reference(run)
    assert views._preview_window(run) is None


def test_no_window_while_playing_comparing_or_for_the_same_particles(views):
    run = new_run(views, seed=11)
    assert views._preview_window(run) is None  # −1: playing, the frame is the page's alone
    views.shown_step.data = {"step": [5]}
    assert views._preview_window(views.state.result) is None  # nothing new would follow
    views.timeline.data = {"a": [[0, 1]], "b": [[0, 1]], "at": [0]}
    assert views._preview_window(run) is None  # compare mode: the timeline maps the steps


def test_no_window_for_a_run_flown_far_out_of_the_box(views):
    views.shown_step.data = {"step": [1]}
    run = new_run(views, seed=3)
    far = dataclasses.replace(run, trajectories=run.trajectories * 100)  # |x| up to ~400
    assert not positions_fine_enough(far) and positions_fine_enough(run)
    assert views._preview_window(run) is not None
    assert views._preview_window(far) is None  # its density stack is sent: wait for it


def test_the_preview_replaces_the_particles_and_rows_and_the_run_then_the_whole(views):
    views.shown_step.data = {"step": [12]}
    run = new_run(views, seed=13)
    views.preview(run)
    assert views.pstore.data["first"] == [12 - views.state.trail]
    for frame in range(12 - views.state.trail, 13):
        np.testing.assert_array_equal(decode(views.pstore.data, frame),
                                      decode(pack_particles(run), frame))  # fmt: skip
    np.testing.assert_array_equal(views.gstore.data["t"], run.times)
    views.state.result = run  # published: the whole run follows
    assert views.pstore.data["first"] == [0]
    assert len(views.pstore.data["xy"][0]) == len(run.times) * 2 * run.trajectories.shape[1]


# --- the runner hands it over, first ---------------------------------------------------------
def wait_for(seed: int, state: FlowState, runner: Recomputer) -> None:
    deadline = time.time() + 10
    while (runner.busy or f'"seed": {seed}' not in state.result.meta) and \
            time.time() < deadline:  # fmt: skip
        time.sleep(0.02)


def test_the_runner_previews_each_new_run_before_publishing_it():
    s = FlowState(steps=10, particles=200)
    s.recompute()
    order: list[tuple[str, object]] = []
    s.param.watch(lambda e: order.append(("published", e.new)), ["result"])
    runner = Recomputer(s, preview=lambda run: order.append(("preview", run)))
    s.seed = 4
    wait_for(4, s, runner)
    assert [what for what, _ in order] == ["preview", "published"]
    assert order[0][1] is order[1][1]  # the very run published
    runner.shutdown()


def test_no_preview_of_a_failed_or_superseded_run():
    s = FlowState(steps=10, particles=200)
    s.recompute()
    previews: list = []
    gate = threading.Event()
    scheduled: list = []

    def schedule(fn):  # the session thread, run by hand
        scheduled.append(fn)
        gate.set()

    runner = Recomputer(s, schedule=schedule, preview=previews.append)
    real = s.compute
    s.compute = lambda should_stop=None: (_ for _ in ()).throw(RuntimeError("broken"))
    s.seed = 6
    assert gate.wait(5)
    for fn in scheduled:
        fn()
    assert previews == []  # a failure: only its notice
    s.compute = real
    gate.clear()
    scheduled.clear()
    s.seed = 7
    assert gate.wait(5)
    deadline = time.time() + 5
    while len(scheduled) < 2 and time.time() < deadline:
        time.sleep(0.01)
    s.seed = 8  # a newer request before the session thread gets to the first
    for fn in scheduled[:2]:
        fn()
    assert previews == []  # superseded: neither shown nor previewed
    runner.shutdown()


@pytest.mark.parametrize(
    "told",
    [
        {"step": ["12"]},
        {"step": [12.5]},
        {"step": [float("nan")]},
        {"step": [float("inf")]},
        {"step": [10**7]},
        {"step": [True]},
        {"step": [None]},
        {"step": [[12]]},
        {"step": []},
        {"step": [12, 13]},
        {},
    ],  # Bokeh itself refuses a column that is not a list
    ids=repr,
)
def test_a_step_that_is_not_a_whole_number_in_range_sends_nothing(views, told):
    """The page's word is not trusted: anything but one whole number from 0 to 10⁶ is -1."""
    views.shown_step.data = told
    assert views._told_step() == -1
    assert views._preview_window(new_run(views, seed=21)) is None


def test_a_whole_float_step_is_taken(views):  # a JS number arrives as a float now and then
    views.shown_step.data = {"step": [12.0]}
    assert views._told_step() == 12

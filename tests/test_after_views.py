"""Panels that describe the run on screen update a moment after it lands (app/ui/after_views.py)."""

import param

from app.ui.after_views import AFTER_VIEWS_MS, AfterViews, session_timer


class _Runs(param.Parameterized):
    result = param.Integer(default=0)


class _Timer:
    """``later(fn, ms)`` that keeps the callbacks until ``fire`` (the session's timer)."""

    def __init__(self):
        self.waiting: list = []

    def __call__(self, fn, ms):
        self.waiting.append((fn, ms))

    def fire(self):
        waiting, self.waiting = self.waiting, []
        for fn, _ms in waiting:
            fn()


def test_the_update_waits_for_the_timer_and_reads_the_run_then():
    runs, timer, seen = _Runs(), _Timer(), []
    AfterViews(runs, timer).add(lambda: seen.append(runs.result))
    runs.result = 1
    assert seen == [] and [ms for _fn, ms in timer.waiting] == [AFTER_VIEWS_MS]
    runs.result = 2  # lands while the first waits: one update, for the run then on screen
    assert len(timer.waiting) == 1
    timer.fire()
    assert seen == [2]
    runs.result = 3
    timer.fire()
    assert seen == [2, 3]


def test_without_a_timer_the_update_is_immediate():
    runs, seen = _Runs(), []
    AfterViews(runs).add(lambda: seen.append(runs.result))
    runs.result = 5
    runs.result = 6
    assert seen == [5, 6]


def test_the_panels_updates_share_one_timer_call_in_their_order():
    """The schedule plot's and the equations' updates go to the page in one message."""
    runs, timer, seen = _Runs(), _Timer(), []
    after = AfterViews(runs, timer)
    after.add(lambda: seen.append(("schedule", runs.result)))
    after.add(lambda: seen.append(("math", runs.result)))
    runs.result = 4
    assert len(timer.waiting) == 1
    timer.fire()
    assert seen == [("schedule", 4), ("math", 4)]


def test_without_a_served_session_the_timer_calls_at_once():
    seen = []
    session_timer(None)(lambda: seen.append(1), 500)
    assert seen == [1]

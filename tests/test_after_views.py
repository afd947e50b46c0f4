"""Panels that describe the run on screen update a moment after it lands (app/ui/after_views.py)."""

import param

from app.ui.after_views import AFTER_VIEWS_MS, after_the_views


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
    after_the_views(runs, lambda: seen.append(runs.result), timer)
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
    after_the_views(runs, lambda: seen.append(runs.result), None)
    runs.result = 5
    runs.result = 6
    assert seen == [5, 6]

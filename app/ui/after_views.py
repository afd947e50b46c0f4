"""Panels that describe the run on screen follow its views by a moment.

A run's stores, the schedule plot's curves and the equations used to travel in one message, so
the browser repainted the two path plots and re-laid out the typeset equations in the same
animation frame as the new particles: ~30-40 ms of that frame (measured with
``benchmarks/latency_parts.py``). Sent a moment later, they paint in a frame of their own,
after the views: all of them in one timer callback, so in one message and one frame.
"""

from __future__ import annotations

from collections.abc import Callable

import param
from panel.io.document import unlocked
from panel.io.state import set_curdoc

AFTER_VIEWS_MS = 60  # past the views' paint: the run's message is decoded and drawn by then


class AfterViews:
    """Calls its updates, in the order they were added, each time a run lands on ``state``:
    ``AFTER_VIEWS_MS`` later with ``later(fn, ms)`` (the session's timer), at once without
    one. Runs that land while the call waits share it (the updates read the run on screen
    when it fires)."""

    def __init__(self, state: param.Parameterized,
                 later: Callable[[Callable[[], None], int], None] | None = None):  # fmt: skip
        self._updates: list[Callable[[], None]] = []
        self._later = later
        self._waiting = False
        state.param.watch(self._landed, ["result"])

    def add(self, update: Callable[[], None]) -> None:
        self._updates.append(update)

    def _fire(self) -> None:
        self._waiting = False
        for update in self._updates:
            update()

    def _landed(self, *_events) -> None:
        if self._later is None:
            self._fire()
        elif not self._waiting:
            self._waiting = True
            self._later(self._fire, AFTER_VIEWS_MS)


def session_timer(doc) -> Callable[[Callable[[], None], int], None]:
    """``later(fn, ms)``: fn() on the session thread of ``doc`` ``ms`` milliseconds from now
    (at once without a served session: a notebook or a test)."""
    if doc is None or doc.session_context is None:
        return lambda fn, _ms: fn()

    def later(fn: Callable[[], None], ms: int) -> None:
        def run() -> None:
            with set_curdoc(doc), unlocked():
                fn()

        doc.add_timeout_callback(run, ms)

    return later

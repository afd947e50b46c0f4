"""Panels that describe the run on screen follow its views by a moment.

A run's stores, the schedule plot's curves and the equations used to travel in one message, so
the browser repainted the two path plots and re-laid out the typeset equations in the same
animation frame as the new particles: ~30-40 ms of that frame (measured with
``benchmarks/latency_parts.py``). Sent a moment later, they paint in a frame of their own,
after the views.
"""

from __future__ import annotations

from collections.abc import Callable

import param

AFTER_VIEWS_MS = 60  # past the views' paint: the run's message is decoded and drawn by then


def after_the_views(state: param.Parameterized, update: Callable[[], None],
                    later: Callable[[Callable[[], None], int], None] | None) -> None:  # fmt: skip
    """Call ``update()`` each time a run lands on ``state``: ``AFTER_VIEWS_MS`` later with
    ``later(fn, ms)`` (the session's timer), at once without one. Runs that land while one
    call waits share it (it reads the run on screen when it fires)."""
    waiting = [False]

    def fire() -> None:
        waiting[0] = False
        update()

    def landed(*_events) -> None:
        if later is None:
            update()
        elif not waiting[0]:
            waiting[0] = True
            later(fire, AFTER_VIEWS_MS)

    state.param.watch(landed, ["result"])

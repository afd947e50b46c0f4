"""Recomputes in a background thread; a newer request drops the one in flight.

A request bumps a generation counter. The worker checks it after every sampler step
(``should_stop``) and abandons the run as soon as a newer request exists, so at most one run is
computing and none are queued behind it. A finished run is published on the session's own
thread (Bokeh requires it) only if it is still the newest.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import param

from app.state import COMPUTE_PARAMS, FlowState
from models.samplers import Cancelled

log = logging.getLogger(__name__)


class Recomputer(param.Parameterized):
    """Watches the compute settings of a state and keeps its ``result`` up to date."""

    busy = param.Boolean(default=False, doc="A recompute is running")
    dropped = param.Integer(default=0, doc="Runs abandoned because a newer request came in")

    def __init__(self, state: FlowState, schedule=None, **params):
        """``schedule(fn)`` runs fn on the session thread (defaults to calling it directly)."""
        super().__init__(**params)
        self.state = state
        self._schedule = schedule or (lambda fn: fn())
        self._generation = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flowscope-compute")
        state.param.watch(self.request, list(COMPUTE_PARAMS))

    def request(self, *_events) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
        self.busy = True
        self._pool.submit(self._work, generation)

    def _current(self, generation: int) -> bool:
        return generation == self._generation

    def _work(self, generation: int) -> None:
        if not self._current(generation):
            return
        try:
            result, arrows = self.state.compute(should_stop=lambda: not self._current(generation))
        except Cancelled:
            self.dropped += 1
            return
        except Exception as exc:  # any failure: keep the last good run, say what happened
            log.exception("recompute failed")
            # bind now: Python unbinds `exc` when the except block ends
            self._schedule(lambda error=exc: self._fail(generation, error))
            return
        self._schedule(lambda: self._publish(generation, result, arrows))

    def _publish(self, generation: int, result, arrows) -> None:
        if not self._current(generation):
            self.dropped += 1
            return
        self.state.param.update(result=result, arrows=arrows, notice="")
        self.busy = False

    def _fail(self, generation: int, exc: Exception) -> None:
        if not self._current(generation):
            return
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.state.notice = (
            f"Could not compute with these settings ({message}); showing the last run."
        )
        self.busy = False

    def shutdown(self) -> None:
        with self._lock:
            self._generation += 1  # stops a run in flight at its next step
        self._pool.shutdown(wait=False)

"""Recomputes in a background thread; a newer request drops the one in flight.

A request bumps a generation counter. The worker checks it after every sampler step
(``should_stop``) and abandons the run as soon as a newer request exists, so at most one run is
computing and none are queued behind it. A finished run is published on the session's own
thread (Bokeh requires it) only if it is still the newest.

Runs of every session take turns on the compute, one step at a time (``app/session/fairshare.py``):
torch's CPU kernels run an OpenMP thread team per calling thread, and two teams computing at
once spin against each other for the cores (measured: a 2-moons run took 350 ms instead of
150 ms), so only the holder of the turn computes, while a heavy run in one session cannot make
another session's light run wait for all of it.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import param

from app.session.fairshare import TURNS
from app.session.state import COMPUTE_PARAMS, DATA_PARAMS, FlowState
from models.samplers import Cancelled

log = logging.getLogger(__name__)

# Threads that wait for their turn cost nothing; 32 lets 32 sessions queue at once (more wait
# for a thread, in order, which is the same fairness one level up).
COMPUTE = ThreadPoolExecutor(max_workers=32, thread_name_prefix="flowscope-compute")


def compute_now(state: FlowState) -> None:
    """Compute and publish synchronously, in turn (outside a server: a notebook, a test)."""

    def work() -> None:
        with TURNS.turn():
            state.recompute()

    COMPUTE.submit(work).result()


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
        self._arrows_for = None  # the run whose overlay fields are being computed
        self._exact_for = None  # the run whose exact density is being computed
        self._lock = threading.Lock()
        state.param.watch(self.request, list(COMPUTE_PARAMS + DATA_PARAMS))
        state.param.watch(self._arrows_if_needed, ["overlay"])
        state.param.watch(self._pde_if_needed, ["density_source", "shade"])
        state.param.watch(self._exact_if_needed, ["density_source", "contours"])
        state.param.watch(self._trained_changed, ["trained"])

    def request(self, *_events) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
        self.busy = True
        COMPUTE.submit(self._work, generation)

    def _current(self, generation: int) -> bool:
        return generation == self._generation

    def _work(self, generation: int) -> None:
        if not self._current(generation):
            return
        def should_stop() -> bool:  # between two steps: others' turn, then are we still wanted?
            TURNS.pass_turn()
            return not self._current(generation)

        try:
            with TURNS.turn():
                if not self._current(generation):
                    raise Cancelled
                result, arrows = self.state.compute(should_stop=should_stop)
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
        self.state.param.update(result=result, arrows=arrows,
                                notice=self.state.run_notice(result))  # fmt: skip
        self.busy = False
        self._arrows_if_needed()  # the overlay was switched on while this run computed
        self._exact_if_needed()  # so were the exact heatmap or the contours

    def _trained_changed(self, *_events) -> None:
        """New weights from the Train panel: rerun if the views show the field trained here."""
        if self.state.field == "trained":
            self.request()

    def _pde_if_needed(self, *_events) -> None:
        """The PDE and the carried log-density are computed only while shown: rerun once when
        one is asked for and the run on screen lacks it."""
        result, s = self.state.result, self.state
        if result is None:
            return
        if (s.density_source == "pde" and result.pde_density is None) or \
                (s.shade and s.kind == "ode" and result.log_density is None):  # fmt: skip
            self.request()

    def _exact_if_needed(self, *_events) -> None:
        """Compute the exact density of the shown run, once, when the page asks for it; the
        particles stay as they are (a display setting does not rerun the particles)."""
        result = self.state.result
        if not self.state.wants_exact or result is None or result.exact_density is not None:
            return
        if self._exact_for is result:
            return  # already on its way
        self._exact_for = result
        COMPUTE.submit(self._work_exact, result)

    def _work_exact(self, result) -> None:
        try:
            with TURNS.turn():
                if self.state.result is not result:  # superseded while it waited
                    self._schedule(lambda: self._exact_done(result))
                    return
                exact = self.state.exact_of(result)
        except Exception as exc:
            log.exception("exact density failed")
            self._schedule(lambda error=exc: self._fail_exact(result, error))
            return
        self._schedule(lambda: self._publish_exact(result, exact))

    def _exact_done(self, result) -> None:
        if self._exact_for is result:  # a late answer for an older run keeps the current mark
            self._exact_for = None

    def _publish_exact(self, result, exact) -> None:
        self._exact_done(result)
        if self.state.result is result:  # else a newer run landed and brought its own
            result.exact_density = exact
            self.state.exact_ready += 1

    def _fail_exact(self, result, exc: Exception) -> None:
        self._exact_done(result)
        if self.state.result is result:
            self.state.notice = f"Could not compute the exact density ({exc})."

    def _arrows_if_needed(self, *_events) -> None:
        """Compute the overlay fields of the shown run, once, when an overlay asks for them."""
        result = self.state.result
        if self.state.overlay == "none" or self.state.arrows is not None or result is None:
            return
        if self._arrows_for is result:
            return  # already on their way
        self._arrows_for = result
        COMPUTE.submit(self._work_arrows, result)

    def _work_arrows(self, result) -> None:
        try:
            with TURNS.turn():
                arrows = self.state.field_arrows(result)
        except Exception as exc:
            log.exception("overlay fields failed")
            self._schedule(lambda error=exc: self._fail_arrows(result, error))
            return
        self._schedule(lambda: self._publish_arrows(result, arrows))

    def _publish_arrows(self, result, arrows) -> None:
        self._arrows_for = None
        if self.state.result is result:  # else a newer run landed and brought its own
            self.state.arrows = arrows

    def _fail_arrows(self, result, exc: Exception) -> None:
        self._arrows_for = None
        if self.state.result is result:
            self.state.notice = f"Could not compute the field overlay ({exc})."

    def _fail(self, generation: int, exc: Exception) -> None:
        if not self._current(generation):
            return
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # A NonFiniteRun's message names the first bad frame, its t and the settings.
        self.state.notice = (
            f"Could not compute with these settings ({message}); showing the last good run."
        )
        self.busy = False

    def shutdown(self) -> None:
        """Stop this session's run in flight at its next step (the shared thread lives on)."""
        with self._lock:
            self._generation += 1

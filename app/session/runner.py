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

import functools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import param

from app.session.fairshare import TURNS
from app.session.state import COMPUTE_PARAMS, DATA_PARAMS, FlowState
from models.compare.pair import RunPair
from models.run.guided import with_guidance, with_posterior_map
from models.run.reference import has_reference, with_reference, with_sw2
from models.samplers import Cancelled

REFERENCE_FIELDS = ("reference", "reference_errors", "sw2_ratio")
GUIDANCE_FIELDS = ("guidance_share", "guidance_gap")
POSTERIOR_FIELDS = ("posterior_map", "posterior_class")

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

    def __init__(self, state: FlowState, schedule=None, comparison=None, **params):
        """``schedule(fn)`` runs fn on the session thread (defaults to calling it directly);
        ``comparison`` (``app/session/compare.py``): while it is on, A and B are computed and
        published together."""
        super().__init__(**params)
        self.state = state
        self.comparison = comparison
        self._schedule = schedule or (lambda fn: fn())
        self._generation = 0
        self._closed = False
        self._extra_for: dict = {}  # what → the run it is being computed for
        self._lock = threading.Lock()
        state.param.watch(self.request, list(COMPUTE_PARAMS + DATA_PARAMS))
        state.param.watch(self._arrows_if_needed, ["overlay"])
        state.param.watch(self._pde_if_needed, ["density_source", "shade"])
        state.param.watch(self._exact_if_needed, ["density_source", "contours"])
        state.param.watch(self._posterior_if_needed, ["density_source"])
        state.param.watch(self._reference_if_needed, ["reference"])
        state.param.watch(self._trained_changed, ["trained"])
        if comparison is not None:
            comparison.param.watch(self._comparison_changed, ["on", "changes"])

    def request(self, *_events) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
        # The run starts first and the page is told it is busy while it computes (the busy
        # watchers took 1-6 ms of the session thread, added to every change's latency); the
        # run publishes only once `busy` is set, so `busy` cannot end before it began.
        told = threading.Event()
        COMPUTE.submit(self._work, generation, told)
        try:
            self.busy = True
        finally:
            told.set()

    def _current(self, generation: int) -> bool:
        return generation == self._generation

    def _work(self, generation: int, told: threading.Event) -> None:
        """Compute the run of ``generation`` in turn and schedule its publication (or its
        failure's), once ``told`` is set (the request has said the page is busy)."""
        if not self._current(generation):
            return

        def should_stop() -> bool:  # between two steps: others' turn, then are we still wanted?
            TURNS.pass_turn()
            return not self._current(generation)

        try:
            with TURNS.turn():
                if not self._current(generation):
                    raise Cancelled
                if self._comparing():
                    computed = self.comparison.compute(should_stop=should_stop)
                else:
                    computed = self.state.compute(should_stop=should_stop)
        except Cancelled:
            self.dropped += 1
            return
        except Exception as exc:  # any failure: keep the last good run, say what happened
            if isinstance(exc, ValueError):  # a refused setting: the notice says it all
                log.info("recompute refused: %s", exc)
            else:
                log.exception("recompute failed")
            then = functools.partial(self._fail, generation, exc)
        else:
            then = functools.partial(self._publish, generation, *computed)
        told.wait()
        self._schedule(then)

    def _comparing(self) -> bool:
        return self.comparison is not None and self.comparison.on

    def _comparison_changed(self, event) -> None:
        """Compare mode switched on, or B changed: compute the pair. Switched off: A's run
        stays on screen, alone."""
        if event.name == "on" and not event.new:
            self.comparison.param.update(pair=None)
            self.comparison.b.param.update(result=None, arrows=None)
            return
        if self.comparison.on:
            self.request()

    def _publish(self, generation: int, result, arrows, arrows_b=None) -> None:
        if not self._current(generation):
            self.dropped += 1
            return
        notice = None
        if isinstance(result, RunPair) and not self._comparing():
            result = result.a  # compare mode left while the pair computed: A alone
        elif isinstance(result, RunPair):  # its timeline first, then B, then A's views
            pair, comparison = result, self.comparison
            comparison.pair = pair
            comparison.b.param.update(result=pair.b, arrows=arrows_b)
            result, notice = pair.a, _pair_notice(self.state, comparison.b, pair)
        elif self.comparison is not None and self.comparison.pair is not None:
            self.comparison.pair = None  # a single run landed after compare mode was left
        self.state.param.update(result=result, arrows=arrows,
                                notice=notice if notice is not None else
                                self.state.run_notice(result))  # fmt: skip
        self.busy = False
        self._pair_readouts_if_needed()
        self._arrows_if_needed()  # the overlay was switched on while this run computed
        self._exact_if_needed()  # so were the exact heatmap or the contours
        self._reference_if_needed()  # and the reference
        self._guidance_if_needed()
        self._posterior_if_needed()

    def _trained_changed(self, *_events) -> None:
        """New weights from the Train panel: rerun if the views show the field trained here
        (run A's, or in compare mode run B's)."""
        if self.state.field == "trained" or (self._comparing() and
                                             self.comparison.b.field == "trained"):  # fmt: skip
            self.request()

    def _pde_if_needed(self, *_events) -> None:
        """The PDE and the carried log-density are computed only while shown: rerun once when
        one is asked for and the run on screen lacks it."""
        result, s = self.state.result, self.state
        if result is None:
            return
        if (s.density_source == "pde" and result.pde_density is None) or \
                (s.config().log_density and result.log_density is None) or \
                (self._comparing() and self.comparison.needs_recompute()):  # fmt: skip
            self.request()
        else:  # nothing to compute: the notice still says why a shading cannot show
            s.notice = s.run_notice(result)

    def _exact_if_needed(self, *_events) -> None:
        """Add the exact density to the shown run, once, when the page asks for it: a new run
        value with the same particles (a display setting does not rerun the particles)."""
        if self._comparing() and self.comparison.needs_recompute():
            self.request()  # B lacks it too: the pair is computed with it
            return
        result = self.state.result
        if not self.state.wants_exact or result is None or result.exact_density is not None:
            return
        self._for_shown_run("the exact density", self.state.with_exact,
                            lambda _run, run: self._add(run, ("exact_density",)))  # fmt: skip

    def _reference_if_needed(self, *_events) -> None:
        """Add the reference to the shown run when asked (a deterministic run only): a new run
        value with the same particles. The adaptive solver's many evaluations each pass the
        turn, and stop once the run is no longer shown, the reference is no longer asked for,
        or the session has closed."""
        result = self.state.result
        if not self.state.reference or result is None or result.reference is not None or \
                not has_reference(result):  # fmt: skip
            return

        pair = self.comparison.pair if self._comparing() else None

        def compute(run):
            poll = self._poll_while_shown(run, lambda: self.state.reference)
            b = pair.b if pair is not None and pair.a.same_particles(run) else None
            b = with_reference(b, poll) if b is not None and has_reference(b) else None
            return with_reference(run, poll), b

        def apply(_run, made) -> None:
            run, b = made
            self._add(run, REFERENCE_FIELDS)
            if b is not None:
                self._add_b(b, REFERENCE_FIELDS)

        self._for_shown_run("the reference", compute, apply)

    def _guidance_if_needed(self) -> None:
        """A guided run's readouts (its share in the class, its SW2 to the tilted target over
        the floor: ~0.5 s), after the paint."""
        result = self.state.result
        if result is None or result.config.guidance_class is None or \
                result.guidance_share is not None:  # fmt: skip
            return

        def compute(run):
            return with_guidance(run, self._poll_while_shown(run))

        self._for_shown_run("the guidance readout", compute,
                            lambda _run, run: self._add(run, GUIDANCE_FIELDS))  # fmt: skip

    def _posterior_if_needed(self, *_events) -> None:
        """The map of p(c | x_t) for the shown run, once, when the heatmap shows it (~0.2 s)."""
        result = self.state.result
        if self.state.density_source != "posterior" or result is None or \
                result.posterior_map is not None:  # fmt: skip
            return
        self._for_shown_run("the class map", with_posterior_map,
                            lambda _run, run: self._add(run, POSTERIOR_FIELDS))  # fmt: skip

    def _pair_readouts_if_needed(self) -> None:
        """The SW2 between A and B at every step (~0.1 s) and each reverse run's SW2 to fresh
        data over the noise floor (~0.3 s each), once the pair is on screen: after the paint."""
        pair = self.comparison.pair if self._comparing() else None
        if pair is None:
            return

        def compute(run):
            poll = self._poll_while_shown(run)
            pair.sw2  # noqa: B018 (made on first use, here off the session thread)
            poll()
            return with_sw2(run, poll), with_sw2(pair.b, poll)

        def apply(_run, made) -> None:
            a, b = made
            shown = self.comparison.pair
            if shown is not None and shown.b.same_particles(pair.b):
                self.comparison.pair = shown.with_(sw2=pair.sw2)
            self._add(a, ("sw2_ratio",))
            self._add_b(b, ("sw2_ratio",))

        self._for_shown_run("the SW2 of A and B", compute, apply)

    def _poll_while_shown(self, run, wanted=lambda: True):
        """``poll()`` for work on ``run`` off the session thread: it passes the compute turn
        to others, and raises Cancelled once the run has left the screen, ``wanted()`` is false
        or the session has closed."""

        def poll() -> None:
            TURNS.pass_turn()
            if self._closed or not wanted() or not self._shown(run):
                raise Cancelled

        return poll

    def _add_b(self, made, fields: tuple[str, ...]) -> None:
        """``_add`` for run B of the pair on screen."""
        comparison = self.comparison
        pair = comparison.pair
        if pair is None or not pair.b.same_particles(made):
            return
        b = pair.b.with_(**{name: getattr(made, name) for name in fields})
        comparison.pair = pair.with_(b=b)
        comparison.b.result = b

    def _add(self, made, fields: tuple[str, ...]) -> None:
        """Put ``fields`` of ``made`` (the shown run with an extra) onto the run shown now: it
        may have gained another extra meanwhile (the exact density while the reference was
        computing), which a plain replacement would drop."""
        shown = self.state.result
        if shown is not None and shown.same_particles(made):
            self.state.result = shown.with_(**{name: getattr(made, name) for name in fields})
            pair = self.comparison.pair if self.comparison is not None else None
            if pair is not None and pair.a.same_particles(made):
                self.comparison.pair = pair.with_(a=self.state.result)

    def _arrows_if_needed(self, *_events) -> None:
        """Compute the overlay fields of the shown run, once, when an overlay asks for them."""
        if self._comparing() and self.comparison.needs_recompute():
            self.request()  # B's arrows too: the pair is computed with them
            return
        if self.state.overlay == "none" or self.state.arrows is not None or \
                self.state.result is None:  # fmt: skip
            return
        self._for_shown_run("the field overlay", self.state.field_arrows,
                            lambda _run, arrows: setattr(self.state, "arrows", arrows))  # fmt: skip

    def _for_shown_run(self, what: str, compute, apply) -> None:
        """Compute something more of the run on screen (its overlay fields, its exact density):
        once per run, in a compute turn, off the session thread; ``apply(run, value)`` on the
        session thread only if that run's particles are still shown (a newer run brings its
        own; the same run with its exact density added is still the same run)."""
        result = self.state.result
        if self._extra_for.get(what) is result:
            return  # already on its way
        self._extra_for[what] = result
        COMPUTE.submit(self._work_extra, what, result, compute, apply)

    def _work_extra(self, what: str, result, compute, apply) -> None:
        try:
            with TURNS.turn():
                shown = self._shown(result)  # else superseded while it waited
                value = compute(result) if shown else None
        except Cancelled:  # the run left the screen while this was computed for it
            self._schedule(lambda: self._extra_done(what, result, None))
            return
        except Exception as exc:
            log.exception("%s failed", what)
            self._schedule(lambda error=exc: self._extra_done(what, result, lambda: setattr(
                self.state, "notice", f"Could not compute {what} ({error}).")))  # fmt: skip
            return
        self._schedule(lambda: self._extra_done(
            what, result, (lambda: apply(result, value)) if shown else None))  # fmt: skip

    def _extra_done(self, what: str, result, then) -> None:
        if self._extra_for.get(what) is result:  # a late answer for an older run keeps the mark
            self._extra_for[what] = None
        if then is not None and self._shown(result):
            then()

    def _shown(self, result) -> bool:
        """Whether the views show ``result``'s particles (it, or it with more added)."""
        return result is not None and result.same_particles(self.state.result)

    def _fail(self, generation: int, exc: Exception) -> None:
        if not self._current(generation):
            return
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # A NonFiniteRun's message names the first bad frame, its t and the settings.
        shown = "showing the last good run" if self.state.result is not None else \
            "no run to show yet: change a setting"  # fmt: skip
        self.state.notice = f"Could not compute with these settings ({message}); {shown}."
        self.busy = False

    def shutdown(self) -> None:
        """Stop this session's run in flight at its next step, and its reference at its next
        evaluation (the shared thread lives on)."""
        self._closed = True
        with self._lock:
            self._generation += 1


def _pair_notice(a: FlowState, b: FlowState, pair) -> str:
    """A's notice, and B's where it says something A's does not."""
    own, other = a.run_notice(pair.a), b.run_notice(pair.b)
    return " ".join(x for x in (own, f"Run B: {other}" if other and other != own else "") if x)

"""The solver lab's sweep: every ODE solver's endpoint error against the number of model calls.

One :class:`SolverSweep` per session measures
:func:`models.evaluation.solver_error.error_vs_nfe` for the session's current data set,
process, schedule and field (exact, or the learned field that ``app/session/fields.py``
resolves), on a daemon thread, never on the session thread. It computes only while holding
the compute turn (``app/session/fairshare.py``) and hands the turn to every waiting run after
each solver step, from the ``should_stop`` callback that ``error_vs_nfe`` polls at every step:
a page's run waits at most one solver step of a sweep (milliseconds). Like a run, and unlike
training, a sweep is something a user waits for, so in-page training pauses while it computes.

Everything that touches the page goes through ``schedule`` (the session thread's next tick, as
for :class:`app.session.training_job.TrainingJob`). GUI-free: ``app/ui/solver_lab.py`` shows it.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time

import numpy as np
import param
import torch

from app.session.fairshare import TURNS
from app.session.fields import resolve
from app.session.links import one_line
from app.session.state import APP_REFERENCE, FlowState
from models.datasets import make_dataset
from models.evaluation.solver_error import ErrorTable, error_vs_nfe, nfe_targets
from models.fields import ExactField
from models.run.simulate import path_of
from models.solvers import GRIDS, SOLVERS

log = logging.getLogger(__name__)

TARGET_ERROR = 1e-2  # the chart's dashed line and the table's "NFE to reach" column
MIN_NFE = 4  # the sweep's smallest NFE target (euler's 4 steps, rk4's 1 step)
PROGRESS_SECONDS = 0.2  # progress reaches the page at most this often
PROCESS_LABELS = {"fm": "flow matching", "vp": "VP diffusion", "trig": "trigonometric"}


def nfe_to_reach(nfes, errors, target: float = TARGET_ERROR) -> float:
    """The NFE at which a series' error first falls to ``target``, interpolated linearly on
    log NFE against log error between the two runs around the crossing. ``nfes``, ``errors``:
    equal-length sequences (one entry per run, any order). Returns the smallest NFE if the
    first run is already below the target, and inf if no run reaches it."""
    pairs = sorted((n, e) for n, e in zip(nfes, errors, strict=True) if e > 0)
    if not pairs:  # every error exactly zero (a run that lands on the reference)
        return float(min(nfes)) if len(nfes) else math.inf
    if pairs[0][1] <= target:
        return float(pairs[0][0])
    for (n0, e0), (n1, e1) in itertools.pairwise(pairs):
        if e1 <= target < e0:
            ln0, ln1 = math.log(n0), math.log(n1)
            frac = (math.log(target) - math.log(e0)) / (math.log(e1) - math.log(e0))
            return math.exp(ln0 + frac * (ln1 - ln0))
    return math.inf


def series(table: ErrorTable) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """(NFE (k,), endpoint error (k,)) of each (solver, grid) of the table, sorted by NFE, in
    the order the sweep ran them."""
    out = {}
    for key in dict.fromkeys((r["solver"], r["grid"]) for r in table.rows):
        rows = sorted((r for r in table.rows if (r["solver"], r["grid"]) == key),
                      key=lambda r: r["nfe"])  # fmt: skip
        out[key] = (np.array([r["nfe"] for r in rows], dtype=float),
                    np.array([r["endpoint_error"] for r in rows], dtype=float))  # fmt: skip
    return out


class SolverSweep(param.Parameterized):
    """The solver lab's settings and the one sweep of a session."""

    grids = param.ListSelector(default=["uniform", "logsnr"], objects=list(GRIDS),
                               doc="Time grids the fixed-step solvers run on")  # fmt: skip
    particles = param.Integer(default=400, bounds=(20, 2000),
                              doc="Start points (prior samples) every run integrates")  # fmt: skip
    max_nfe = param.Integer(default=200, bounds=(8, 400),
                            doc="The most model calls (NFE) a run may make")  # fmt: skip
    nfe_points = param.Integer(default=9, bounds=(3, 12),
                               doc="NFE targets per solver and grid, log-spaced")  # fmt: skip
    solvers = param.ListSelector(default=list(SOLVERS), objects=list(SOLVERS),
                                 doc="The ODE solvers measured")  # fmt: skip

    running = param.Boolean(default=False, doc="A sweep is in progress")
    progress = param.Number(default=0.0, bounds=(0.0, 1.0), doc="Fraction of the sweep done")
    status = param.String(default="Not measured yet.", doc="One line on the sweep")
    table = param.ClassSelector(class_=ErrorTable, default=None, allow_None=True,
                                doc="The last sweep's rows and fitted orders")  # fmt: skip
    subject = param.String(default="", doc="What the last sweep measured, in words")

    def __init__(self, state: FlowState, schedule=None, **params):
        """``schedule(fn)`` runs fn on the session thread (at once when None: tests)."""
        super().__init__(**params)
        self.state = state
        self._schedule = schedule or (lambda fn: fn())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._weights_cache: dict = {}  # pretrained weights this sweep has read

    # --- session thread ---------------------------------------------------------------------
    def nfes(self) -> list[int]:
        """The NFE targets of the current settings (about ``nfe_points``, log-spaced)."""
        return nfe_targets(MIN_NFE, self.max_nfe, self.nfe_points)

    def _inputs(self) -> tuple[dict, str, str]:
        """error_vs_nfe's arguments for the state's settings, what they measure in words, and
        the resolver's note ("" if the field asked for is used). Raises ValueError."""
        s = self.state
        if not self.grids and any(not SOLVERS[n].adaptive for n in self.solvers):
            raise ValueError("choose at least one time grid")
        if not self.solvers:
            raise ValueError("choose at least one solver")
        user = s.user_dataset()  # raises for "your points" with none yet
        data = user if user is not None else make_dataset(s.dataset)
        path = path_of(s.config())
        # the app's reference (user points are subsampled to APP_REFERENCE, as in the views),
        # in float64: the reference solution is integrated to rtol 1e-8
        exact = ExactField(path, data.reference(APP_REFERENCE), dtype=torch.float64)
        source, note = resolve(s, data, self._weights_cache)
        field = None if source.make is None else source.make(path, exact)
        if field is None and user is not None:
            field = exact  # error_vs_nfe's own exact field would use all of the user's points
        kind = {"exact": "exact field", "pretrained": "learned field (pretrained)",
                "trained": "learned field (trained here)",
                "exact_m": f"exact field of M = {s.train_size} points"}[source.kind]  # fmt: skip
        name = "your points" if user is not None else s.dataset
        subject = f"{name} · {PROCESS_LABELS.get(s.process, s.process)} · {kind}"
        kwargs = dict(data=data, path=path, field=field, solvers=tuple(self.solvers),
                      grids=tuple(g for g in GRIDS if g in self.grids), nfes=self.nfes(),
                      particles=self.particles, sw2=False)  # fmt: skip
        return kwargs, subject, note

    def start(self) -> bool:
        """Start a sweep with the current settings; a bad setting is one line in ``status``
        and changes nothing else. Returns whether a sweep started."""
        if self.running:
            return False
        try:
            kwargs, subject, note = self._inputs()
        except Exception as exc:  # a bad setting, no points, unreadable weights: say so
            log.info("solver sweep not started: %s", one_line(exc))
            self.status = f"Not measured: {one_line(exc)}"
            return False
        self._stop.clear()
        begun = f"Measuring {subject}…" + (f" ({note})" if note else "")
        self.param.update(running=True, progress=0.0, status=begun)
        self._thread = threading.Thread(target=self._work, args=(kwargs, subject, note),
                                        daemon=True, name="flowscope-solver-sweep")  # fmt: skip
        self._thread.start()
        return True

    def stop(self) -> None:
        """Ask the sweep to stop at its next solver step; the rows measured so far are kept."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the sweep's thread (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    # --- sweep thread -----------------------------------------------------------------------
    def _work(self, kwargs: dict, subject: str, note: str) -> None:
        reported = [0.0]

        def progress(fraction: float) -> None:
            now = time.perf_counter()
            if now - reported[0] > PROGRESS_SECONDS and fraction < 1:
                reported[0] = now
                self._send(lambda: setattr(self, "progress", min(1.0, fraction)))

        def should_stop() -> bool:
            # polled after every solver step, while this thread holds the turn: a run that
            # asked meanwhile computes its step now (fair turns, first come first served)
            TURNS.pass_turn()
            return self._stop.is_set()

        table, failure = None, None
        start = time.perf_counter()
        try:
            with TURNS.turn():
                table = error_vs_nfe(**kwargs, progress=progress, should_stop=should_stop)
        except Exception as exc:  # never let a failure pass silently, never show a traceback
            log.exception("solver sweep failed")
            failure = one_line(exc)
        seconds = time.perf_counter() - start
        self._send(lambda: self._deliver(table, failure, subject, note, seconds))

    def _send(self, fn) -> None:
        try:
            self._schedule(fn)
        except Exception:  # the session closed (its page went away) while this sweep ran
            log.debug("solver sweep update not delivered: the session is gone", exc_info=True)

    # --- session thread again ---------------------------------------------------------------
    def _deliver(self, table: ErrorTable | None, failure: str | None, subject: str, note: str,
                 seconds: float) -> None:  # fmt: skip
        extra = f" ({note})" if note else ""
        if failure is not None:
            self.param.update(running=False, status=f"The measurement failed: {failure}{extra}")
            return
        runs = len(table.rows)
        if table.stopped and not runs:
            status = f"Stopped after {seconds:.1f} s, before the first run."
        elif table.stopped:
            status = f"Stopped after {runs} runs in {seconds:.1f} s: the chart shows those."
        else:
            status = f"Measured {runs} runs in {seconds:.1f} s."
        self.param.update(table=table, subject=subject, running=False,
                          progress=self.progress if table.stopped else 1.0,
                          status=status + extra)  # fmt: skip

"""Training a field in the page: a job on its own thread, in chunks that take fair turns.

The job trains on the session's current data set, process and schedule (a
:class:`~models.learned.training.Trainer`), never on the session thread. It computes only while
holding
the compute turn (``app/session/fairshare.py``: two OpenMP teams computing at once fight over
the cores), and only while no run computes or waits: it gives the turn back after the
training step in which a run asks (``app/session/fairshare.py``, "runs before training").
Between chunks it reports progress, and every
``REFRESH_SECONDS`` (and once at the end) publishes a snapshot of the EMA weights as the state's
``trained`` model, which reruns the views when they show the field trained here.

Everything that touches the state or the page goes through ``schedule`` (the session thread's
next tick, as for :class:`app.session.runner.Recomputer`). GUI-free: the Train panel
(``app/ui/train_panel.py``) shows it.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import numpy as np
import param

from app.session.fairshare import TURNS
from app.session.fields import TRAIN_SEED, TrainedModel
from app.session.state import FlowState
from models.learned.training import TrainConfig, Trainer

log = logging.getLogger(__name__)

CHUNK_SECONDS = 0.05  # compute held per turn while no run asks for it
IDLE_POLL_SECONDS = 0.005  # how often training looks for a free turn while runs compute
REFRESH_SECONDS = 3.0  # views refresh from the current weights this often while training
PROGRESS_SECONDS = 0.2  # progress (bar, loss curve) reaches the page at most this often


class TrainingJob(param.Parameterized):
    """The Train panel's settings and the one training run of a session."""

    steps = param.Integer(default=2000, bounds=(1, 100_000), doc="Optimiser steps")
    batch = param.Integer(default=256, bounds=(2, 4096), doc="Training pairs per step")
    lr = param.Number(default=3e-3, bounds=(1e-5, 0.1), step=1e-4,
                      doc="Peak learning rate (Adam, warm-up, cosine decay to 2 %)")  # fmt: skip
    ot = param.Boolean(default=False, doc="Pair data and noise in each batch by exact minibatch "
                       "optimal transport: straighter paths")  # fmt: skip
    conditional = param.Boolean(
        default=False,
        doc="Train a class-conditional network: it also sees each point's class (the data "
        "set's colours), dropped for 20 % of the points so that the same network learns the "
        "unconditional field, as classifier-free guidance needs",
    )

    running = param.Boolean(default=False, doc="A training run is in progress")
    step = param.Integer(default=0, doc="Steps done by the current or last run")
    total = param.Integer(default=1, doc="Steps asked of the current or last run")
    status = param.String(default="Not trained yet.", doc="One line on the run")

    def __init__(self, state: FlowState, schedule=None, on_losses=None, **params):
        """``schedule(fn)`` runs fn on the session thread; ``on_losses(steps, loss, ema)``
        receives new points of the loss curve there (arrays of equal length)."""
        super().__init__(**params)
        self.state = state
        self._schedule = schedule or (lambda fn: fn())
        self._on_losses = on_losses
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- session thread ---------------------------------------------------------------------
    def config(self) -> TrainConfig:
        s = self.state
        return TrainConfig(
            process=s.process, dataset=s.dataset, steps=self.steps, batch=self.batch, lr=self.lr,
            train_size=s.train_size or None, ot=self.ot, seed=TRAIN_SEED, device=s.device,
            schedule=s.schedule, beta_min=s.beta_min, beta_max=s.beta_max,
            source=s.data_source, conditional=self.conditional,
        )  # fmt: skip

    def start(self) -> bool:
        """Start training with the current settings; a bad setting is one line in the notice
        and changes nothing. Returns whether a run started."""
        if self.running:
            return False
        try:
            trainer = Trainer(self.config(), self.state.user_dataset())
        except Exception as exc:  # a bad setting or no points: say so, keep everything
            text = str(exc).strip().splitlines()
            self.state.notice = f"Training not started: {text[0] if text else type(exc).__name__}"
            return False
        points = None if self.state.points is None else np.array(self.state.points)
        labels = self.state.user_labels()  # the classes a conditional network learns
        user = self.state.dataset == "points"
        meta = (self.state.dataset, points if user else None,
                None if labels is None or not user else np.array(labels))  # fmt: skip
        self._stop.clear()
        n = trainer.arch.n_classes
        kind = f"a class-conditional network ({n} classes) " if n else ""
        self.param.update(running=True, step=0, total=trainer.config.steps,
                          status=f"Training {kind}on {trainer.device.type}…")  # fmt: skip
        self._thread = threading.Thread(target=self._loop, args=(trainer, meta), daemon=True,
                                        name="flowscope-train")  # fmt: skip
        self._thread.start()
        return True

    def stop(self) -> None:
        """Ask the run to stop after its current chunk; its last EMA weights are kept."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the training thread (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    # --- training thread --------------------------------------------------------------------
    def _chunk(self, trainer: Trainer) -> str | None:
        """Steps for up to ``CHUNK_SECONDS`` in one turn, taken only while no run computes or
        waits, and given back as soon as one asks; returns a reason to stop, or None."""
        while not TURNS.idle and not self._stop.is_set():  # runs first (fairshare.py, 3.)
            time.sleep(IDLE_POLL_SECONDS)
        if self._stop.is_set():
            return None
        with TURNS.turn():
            start = time.perf_counter()
            while trainer.step < trainer.config.steps:
                value = trainer.train_step()
                if not math.isfinite(value):
                    return f"non-finite loss at step {trainer.step + 1}; kept the last good weights"
                if time.perf_counter() - start > CHUNK_SECONDS or TURNS.waiting:
                    break
            trainer.elapsed += time.perf_counter() - start
        return None

    def _loop(self, trainer: Trainer, meta) -> None:
        reason, sent, published, reported = None, 0, time.perf_counter(), 0.0
        try:
            while trainer.step < trainer.config.steps and not self._stop.is_set():
                reason = self._chunk(trainer)
                last = trainer.step >= trainer.config.steps or reason is not None
                if last or time.perf_counter() - reported > PROGRESS_SECONDS:
                    progress, new = trainer.progress(), trainer.losses[sent:]
                    reported, sent = time.perf_counter(), len(trainer.losses)
                    self._schedule(lambda p=progress, n=new: self._progress(p, n))
                if reason:
                    break
                if time.perf_counter() - published > REFRESH_SECONDS:
                    published = time.perf_counter()
                    self._publish(trainer, meta, final=False)
        except Exception as exc:  # never let a training failure pass silently
            log.exception("training failed")
            reason = f"training failed ({str(exc).splitlines()[0] if str(exc) else exc!r})"
        if self._stop.is_set() and reason is None:
            reason = "stopped"
        if len(trainer.losses) > sent:  # steps since the last report (a stop comes any time)
            progress, new = trainer.progress(), trainer.losses[sent:]
            try:
                self._schedule(lambda: self._progress(progress, new))
            except Exception:  # the session closed while this run ended (see _publish)
                log.debug("final progress not delivered: the session is gone", exc_info=True)
        self._publish(trainer, meta, final=True, reason=reason)

    def _publish(self, trainer: Trainer, meta, final: bool, reason: str | None = None) -> None:
        """Snapshot the EMA weights (on this thread) and hand them to the session thread."""
        model = None
        if trainer.step > 0:
            dataset, points, labels = meta
            c = trainer.config
            model = TrainedModel(trainer.snapshot(), trainer.arch, dataset, points,
                                 c.train_size, trainer.step, c.ot, c.source, labels)  # fmt: skip
        try:
            self._schedule(lambda: self._deliver(model, trainer, final, reason))
        except Exception:  # the session closed (its page went away) while this run ended
            log.debug("training result not delivered: the session is gone", exc_info=True)

    # --- session thread again ---------------------------------------------------------------
    def _progress(self, progress, new_losses: list[float]) -> None:
        self.step = progress.step
        self.status = (f"step {progress.step:,} / {self.total:,} · loss {progress.loss:.4f} "
                       f"· EMA {progress.ema_loss:.4f} · {progress.elapsed:.1f} s")  # fmt: skip
        if self._on_losses is not None and new_losses:
            # one point per chunk (the chunk's mean loss), so the curve stays small
            self._on_losses(np.array([progress.step]), np.array([np.mean(new_losses)]),
                            np.array([progress.ema_loss]))  # fmt: skip

    def _deliver(self, model, trainer: Trainer, final: bool, reason: str | None) -> None:
        if model is not None:
            self.state.trained = model
        if not final:
            return
        done = f"{trainer.step:,} steps in {trainer.elapsed:.1f} s"
        if model is None:
            self.status = f"Stopped before the first step ({reason}); nothing trained."
        else:
            end = f" ({reason})" if reason else ""
            self.status = (f"Trained {done}{end}, final EMA loss {trainer.ema_loss:.4f}. "
                           "Field 'learned (trained here)' shows it.")  # fmt: skip
        self.running = False

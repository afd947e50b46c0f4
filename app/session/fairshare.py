"""A fair share of the compute for every session of one server.

Policy (README, "Serving a class"):

1. **Turns, step by step.** A run computes only while it holds the one compute *turn*; after
   every sampler step it hands the turn to the next waiting run, first come first served. A
   heavy run therefore slows a light one by at most one of its own steps per step (milliseconds)
   instead of making it wait for the whole heavy run (measured before: a click in one session
   landed 39 s late while another computed a 48 s run).
2. **A cap on work per run** (``app/session/state.py: MAX_PARTICLE_FRAMES``): what one run
   computes, holds and sends is bounded.
3. **Runs before training.** In-page training (``app/session/training_job.py``) computes only
   while no run holds or waits for the turn, and gives it back after the training step in
   which a run asks: a run waits at most one training step (milliseconds), and training takes
   the time the runs leave.
4. **Cancellation**: a session's superseded run stops at its next step
   (``app/session/runner.py``), and a closed session's run too.

One turn, not one thread: torch runs an OpenMP team per calling thread, and two teams computing
at once fight over the cores (measured on this 2-core machine: a run took 2.3x longer). Runs
live on a small pool of threads, but only the holder of the turn computes.
"""

from __future__ import annotations

import collections
import contextlib
import threading


class FairTurns:
    """A first-come-first-served lock whose holder can hand over to waiters (a ticket lock)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()
        self._holder: object | None = None

    @property
    def idle(self) -> bool:
        """Nobody holds the turn and nobody waits for it."""
        with self._cond:
            return self._holder is None and not self._queue

    @property
    def waiting(self) -> int:
        """Runs waiting for the turn (not counting the holder)."""
        with self._cond:
            return len(self._queue)

    def acquire(self) -> None:
        me = object()
        with self._cond:
            self._queue.append(me)
            while self._holder is not None or self._queue[0] is not me:
                self._cond.wait()
            self._queue.popleft()
            self._holder = me

    def release(self) -> None:
        with self._cond:
            self._holder = None
            self._cond.notify_all()

    @contextlib.contextmanager
    def turn(self):
        """Hold the turn for a block of work."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def pass_turn(self) -> None:
        """Called by the holder between steps: let every run that came first have a step."""
        with self._cond:
            if not self._queue:
                return
        self.release()
        self.acquire()


TURNS = FairTurns()

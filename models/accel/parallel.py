"""One run's independent parts on several threads: the same numbers, less waiting for them.

Particles do not interact: under a given field each row of the (N, 2) positions follows its own
path, so a run of N particles is its row blocks' runs side by side. And the PDE needs nothing
of the particles. Where torch computes on one thread (the server, whose browser needs the other
core: ``app/server.py``), these parts can run at once on free cores:

- each block on its own Python thread, its torch operations on that thread (torch releases
  the GIL inside them), so no barrier per operation: an OpenMP team with more threads than free
  cores stalls at each one (measured 2-3x slower while the page played);
- only where each step's operations are large (:func:`worth_a_thread`): small ones spend
  their time handing the GIL to and fro (measured on 2 cores, reverse VP, N = 2000, T = 100:
  spirals 140 → 87 ms in two blocks, swiss roll 144 → 97, circles 130 → 75, but 2 moons
  50 → 73 and 8 gaussians 21 → 53). The PDE, whose loop is Python around small kernels, goes
  beside the particles by the same rule (beside 8 gaussians' particles it was no faster).

The result does not depend on the split. The SDE's noise of each step is drawn for all N rows
at once, in step order, from the run's one generator (:class:`StepNoise`); each block takes its
rows, so every particle gets the numbers the serial run gives it. Blocks start at multiples of
64 rows, where torch's vectorized kernels give each row the rounding it gets in one block (bit
for bit on this machine; a CPU whose kernels work in other widths could differ in the last
bit). A failing block (a non-finite position, a superseded run) stops the others, and the
failure reported is the one the serial run would meet first.
"""

from __future__ import annotations

import itertools
import queue
import threading

import torch
from torch import Tensor

# Exponentials (or multiply-adds) per step below which blocks lose to one thread: measured on
# torch's path 2.6e5 (2 moons, N = 2000) 1.45x slower in two blocks, 6.7e5 (circles) 1.7x
# faster; the compiled kernels pay from a little lower (models/fields.py has the figures).
MIN_WORK_PER_STEP = 5e5
ALIGN = 64  # rows: block bounds are multiples of this (see run_in_blocks)


def worth_a_thread(field, n: int) -> bool:
    """Whether n particles' steps on ``field`` are work enough to share with another thread:
    the field says its work per point (``work_per_point``), and n times it is large enough."""
    return n * getattr(field, "work_per_point", 0) >= MIN_WORK_PER_STEP


def particle_blocks(field, n: int, workers: int) -> int:
    """How many row blocks to run n particles in, with ``workers`` threads allowed."""
    if workers < 2 or not worth_a_thread(field, n):
        return 1
    return int(min(workers, n // 256 or 1))  # blocks of at least 256 rows: none empty


class StepNoise:
    """Each step's Gaussian noise for all rows, shape (N, 2), drawn in step order from one
    generator, shared by the row blocks of a split run (:meth:`rows`)."""

    def __init__(self, generator: torch.Generator | None, like: Tensor, blocks: int):
        self._generator, self._like, self._blocks = generator, like, blocks
        self._drawn: dict[int, list] = {}  # step -> [noise (N, 2), blocks yet to take it]
        self._lock = threading.Lock()

    def _take(self, step: int) -> Tensor:
        with self._lock:
            if step not in self._drawn:  # steps are drawn in order: each block asks in order
                like = self._like
                self._drawn[step] = [torch.randn(like.shape, generator=self._generator,
                                                 dtype=like.dtype, device=like.device),
                                     self._blocks]  # fmt: skip
            entry = self._drawn[step]
            entry[1] -= 1
            if entry[1] == 0:
                del self._drawn[step]
            return entry[0]

    def rows(self, start: int, stop: int) -> NoiseRows:
        """The noise source of the block of rows start:stop."""
        return NoiseRows(self, start, stop)


class NoiseRows:
    """A block's view of a :class:`StepNoise`: ``draw(x)`` gives its rows of the next step."""

    def __init__(self, noise: StepNoise, start: int, stop: int):
        self._noise, self._start, self._stop, self._step = noise, start, stop, 0

    def draw(self, x: Tensor) -> Tensor:
        out = self._noise._take(self._step)[self._start : self._stop]
        self._step += 1
        return out


class _Abandoned(Exception):
    """A block stops because another failed first (never leaves this module)."""


class PartStops:
    """The parts of one run stop together.

    Their callbacks are called one at a time (a callback may hand the compute turn to another
    session: ``app/session/fairshare.py``). A failure at step i stops the other parts at step
    i: their earlier steps still run, so that the failure reported is the first in step order,
    as in the serial run. A superseded run (one of ``cancelled``) stops them all at once.
    """

    def __init__(self, cancelled=()):
        self._cancelled = tuple(cancelled)
        self._lock = threading.Lock()
        self._stop_at: float = float("inf")
        self._failures: list[tuple[float, BaseException]] = []

    def _fail(self, step: float, exc: BaseException) -> None:
        first = -1 if isinstance(exc, self._cancelled) else step
        self._failures.append((first, exc))
        self._stop_at = min(self._stop_at, first)

    def wrap(self, callback, step_of=lambda info: info["i"], first: float = 0):
        """``callback`` for one part, called under the parts' lock; ``step_of(info)`` is the
        step that its failures are ordered by, ``first`` the part's first step. The result's
        ``next_step`` is the step after the last one it saw: where a failure of the part
        outside its callback (a field that raises) counts."""

        def wrapped(info) -> None:
            step = step_of(info)
            with self._lock:
                wrapped.next_step = step + 1
                if step >= self._stop_at:
                    raise _Abandoned
                try:
                    if callback is not None:
                        callback(info)
                except BaseException as exc:
                    self._fail(step, exc)
                    raise

        wrapped.next_step = first
        return wrapped

    def run(self, fn, callback):
        """``fn()``, or None if it stopped because a part failed; a failure of its own outside
        its ``callback`` (made by :meth:`wrap`) counts after the last step that it saw."""
        try:
            return fn()
        except _Abandoned:
            return None
        except BaseException as exc:
            with self._lock:
                if not any(e is exc for _, e in self._failures):
                    self._fail(callback.next_step, exc)
            return None

    def raise_first(self) -> None:
        """Re-raise the failure that comes first in step order, if any part failed."""
        if self._failures:
            raise min(self._failures, key=lambda f: f[0])[1]


class _Workers:
    """Threads for the parts: an idle one if there is one, else a new one, kept for later.

    Not a pool of fixed size: in the server, runs take turns
    (:class:`app.session.fairshare.FairTurns`) and a part waits for the turn between steps.
    Other runs' parts waiting for the turn could fill a fixed pool while the run holding the
    turn waited for its own part, queued behind them, forever (a test reproduces it). And
    not a new thread per part: a fresh thread's first large allocations fault their pages in
    (measured: spirals' split run 15-25% slower than on reused threads).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue] = []

    def submit(self, fn) -> threading.Event:
        """Run ``fn()`` (which must not raise) on a worker; the event is set when it is done."""
        done = threading.Event()
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="flowscope-part",
                             daemon=True).start()  # fmt: skip
        inbox.put((fn, done))
        return done

    def _serve(self, inbox: queue.SimpleQueue) -> None:
        while True:
            fn, done = inbox.get()
            try:
                fn()
            finally:
                with self._lock:
                    self._idle.append(inbox)
                done.set()


_WORKERS = _Workers()


def in_parallel(parts: list, stops: PartStops) -> list:
    """Run the parts at once (the first on this thread) and return their results in order;
    re-raises the first failure (see :class:`PartStops`). A part is ``(fn, callback)``: a
    zero-argument callable and the callback it steps with (from ``stops.wrap``).

    A part never waits for a thread (see :class:`_Workers`).
    """
    results: list = [None] * len(parts)

    def run(k: int) -> None:
        results[k] = stops.run(*parts[k])

    finished = [_WORKERS.submit(lambda k=k: run(k)) for k in range(1, len(parts))]
    run(0)
    for done in finished:
        done.wait()
    stops.raise_first()
    return results


def run_in_blocks(sampler, field, path, x: Tensor, times, eta: float, generator, callback,
                  blocks: int, cancelled=()) -> Tensor:  # fmt: skip
    """``sampler(field, path, x, times, eta, generator, callback)`` run on ``blocks`` row
    blocks of x (N, 2) at once; returns the trajectories (T+1, N, 2), the serial run's.

    ``cancelled``: exception types that stop every block at once (a superseded run).
    """
    n = len(x)
    # Bounds at multiples of 64 rows: the last rows of a block that is not take the scalar
    # tail of torch's vectorized kernels and round differently (1e-7) from the same rows in
    # one block (measured: spirals at N = 1500 in two blocks, checkerboard at N = 5001).
    bounds = [min(n, -(-(n * k // blocks) // ALIGN) * ALIGN) for k in range(blocks + 1)]
    # a given noise source (models/compare/noise.py) shares out its own rows
    noise = generator if hasattr(generator, "rows") else StepNoise(generator, x, blocks)
    stops = PartStops(cancelled)
    parts = []
    for lo, hi in itertools.pairwise(bounds):
        step = stops.wrap(callback)
        parts.append(
            (
                lambda lo=lo, hi=hi, step=step: sampler(
                    field, path, x[lo:hi], times, eta, noise.rows(lo, hi), step
                ),
                step,
            )
        )
    return torch.cat(in_parallel(parts, stops), 1)

"""Counting a field's evaluations (NFE), for the solver comparisons (docs/MATH.md §4).

One call is one evaluation whatever ``want`` holds: a network evaluates once and converts,
and the exact field computes its responsibilities once. A run split into row blocks
(``models/accel/parallel.run_in_blocks``) calls the field once per stage *in every block*,
each call with that block's rows; so the count per logical evaluation is the number of rows
evaluated divided by the run's particle count, which is exact for any split (the blocks
partition the rows). Without ``particles``, every call counts one.
"""

from __future__ import annotations

import threading

from models.samplers import fused_step


class CountingField:
    """``field`` with the same call signature, counting its evaluations.

    Args:
        field: ``field(x, t, want) -> dict`` of (N, 2) tensors.
        particles: the run's particle count N, when it may run in row blocks (see above).

    Attributes ``calls`` (calls made), ``rows`` (rows evaluated) and the property ``nfe``
    (logical evaluations: rows / particles if particles is set, else calls). Counting holds a
    lock, so the row-block threads of one run may share the counter.
    """

    def __init__(self, field, particles: int | None = None):
        if particles is not None and particles < 1:
            raise ValueError(f"particles must be >= 1, got {particles}")
        self.field, self.particles = field, particles
        self._lock = threading.Lock()
        self.calls = self.rows = 0

    def __call__(self, x, t, want=("velocity",)):
        self._count(len(x))
        return self.field(x, t, want)

    def euler_step(self, x, t, h, score_weight, out):
        """The field's fused Euler step (``models.samplers.fused_step``), counted as one
        evaluation; None, uncounted, where it has none (the sampler then calls the field)."""
        stepped = fused_step(self.field, x, t, h, score_weight, out)
        if stepped is not None:
            self._count(len(x))
        return stepped

    def _count(self, rows: int) -> None:
        """One evaluation of ``rows`` rows."""
        with self._lock:
            self.calls += 1
            self.rows += rows

    @property
    def nfe(self) -> float:
        """Logical evaluations so far: a whole number when every evaluation saw all rows."""
        if self.particles is None:
            return self.calls
        whole, part = divmod(self.rows, self.particles)
        return whole if part == 0 else self.rows / self.particles

    def reset(self, particles: int | None = None) -> None:
        """Start counting afresh (for a run of ``particles`` rows, if given)."""
        with self._lock:
            self.calls = self.rows = 0
            if particles is not None:
                self.particles = particles

    def __getattr__(self, name):
        # everything else (path, nearest_label, work_per_point, ...) is the field's own
        field = self.__dict__.get("field")
        if field is None:
            raise AttributeError(name)
        return getattr(field, name)


class PolledField:
    """``field`` with the same call signature that calls ``poll()`` before every evaluation:
    work whose steps are not its own (the adaptive solver between two frames, a reference
    solve) stops at once when ``poll`` raises, and gives the compute turn back meanwhile."""

    def __init__(self, field, poll):
        self.field, self.poll = field, poll

    def __call__(self, x, t, want=("velocity",)):
        self.poll()
        return self.field(x, t, want)

    def __getattr__(self, name):  # nearest_label, work_per_point, ...: the field's own
        field = self.__dict__.get("field")
        if field is None:
            raise AttributeError(name)
        return getattr(field, name)

"""Splitting one run over threads: its particles in row blocks, its PDE beside its particles.

:func:`models.run.simulate.simulate` tells the run's story; these two functions are how it may
use more than one core for it (the numbers do not depend on the split: ``parallel.py``).
"""

from __future__ import annotations

from models.accel.parallel import (
    PartStops,
    in_parallel,
    particle_blocks,
    run_in_blocks,
    worth_a_thread,
)
from models.samplers import Cancelled


def sample_split(sampler, field, path, x, times, eta, generator, callback, workers: int):
    """``sampler(field, path, x, times, eta, generator, callback)`` in row blocks on up to
    ``workers`` threads where the work per step is large enough to pay; (T+1, N, 2)."""
    blocks = particle_blocks(field, len(x), workers)
    if blocks == 1:
        return sampler(field, path, x, times, eta, generator, callback)
    return run_in_blocks(sampler, field, path, x, times, eta, generator, callback, blocks,
                         cancelled=(Cancelled,))  # fmt: skip


def particles_and_pde(particles, solve, callback, workers: int, field, n: int, steps: int):
    """(what ``particles(callback, workers)`` returns, what ``solve(on_frame)`` returns or None).

    With ``workers`` > 1 and enough work per step the PDE runs on its own thread beside the
    particles (it needs nothing of them), else after them. Failures come in the serial run's
    order either way: the PDE's after the particles' last step. ``solve`` may be None.
    """
    if solve is None or workers < 2 or not worth_a_thread(field, n):
        moved = particles(callback, workers)
        callback(None)
        return moved, None if solve is None else solve(lambda _i: callback(None))
    stops = PartStops(cancelled=(Cancelled,))
    after = steps + 1
    on_step = stops.wrap(callback)
    on_frame = stops.wrap(lambda _i: callback(None), lambda i: after + i, first=after)
    parts = [(lambda: particles(on_step, workers - 1), on_step),
             (lambda: solve(on_frame), on_frame)]  # fmt: skip
    moved, solved = in_parallel(parts, stops)
    callback(None)
    return moved, solved

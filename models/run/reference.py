"""A run beside its reference: the same start points carried by the ODE to a tight tolerance
(docs/MATH.md §4), so that a solver's error can be seen per particle and per frame.

The reference integrates the field that moved the particles, from the run's start points in
float64 (``models.evaluation.solver_error.reference``): an exact field (the data set's, or that
of M points) at rtol 1e-8, a network at rtol 1e-6, its float32 output being rough below that
(``reference_tolerances``). The error shown is then the solver's alone, not the network's.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from models.evaluation.metrics import sliced_w2
from models.evaluation.quality import noise_floor
from models.evaluation.solver_error import (
    exact_field64,
    frame_errors,
    reference,
    reference_tolerances,
)
from models.run.guided import guided_field
from models.run.result import RunResult
from models.run.simulate import build
from models.solvers.counting import PolledField
from models.source_flow import source_field

# The SW2 readout compares at most this many of the run's samples with as many fresh ones, over
# REFS fresh sets, against a noise floor of FLOOR_PAIRS pairs, kept per data set and size: a
# sliced W2 of 2000 points took 0.3 s on a loaded 2-core machine, and the 25 of a full
# evaluation (models/evaluation/quality.py) 8 s; this costs 1-2 s once and ~0.3 s after.
SW2_POINTS, REFS, FLOOR_PAIRS = 1000, 3, 5
_FLOORS: dict = {}
_FLOORS_LOCK = threading.Lock()


def has_reference(result: RunResult) -> bool:
    """Whether the run is a deterministic ODE run, whose particles a reference can follow."""
    config = result.config
    # Hutchinson's probes are random: its guided particles follow no ODE either
    return config.kind != "conditional" and config.noise_level == 0 and not config.hutchinson


def with_reference(result: RunResult, poll=None) -> RunResult:
    """The run with ``reference`` (T+1, N, 2), ``reference_errors`` (T+1,) and, for a reverse
    run, ``sw2_ratio`` (its samples' SW2 to fresh data over the noise floor). ``poll()`` is
    called at every evaluation of the field (it may raise to stop). ValueError for a run that
    has no reference (:func:`has_reference`)."""
    if not has_reference(result):
        raise ValueError("a stochastic run has no reference: its particles follow no ODE")
    config, source = result.config, result.source
    path, data, exact = build(config, result.dataset)
    if source.make is None and config.source != "gaussian":
        field = source_field(path, data, config.source, dtype=torch.float64)
    elif source.make is None:
        field = exact_field64(path, data)
        if result.dataset is not None:  # the user's points: the run's own reference mixture
            field = type(field)(path, exact.reference, dtype=torch.float64)
    else:
        field = source.make(path, exact)
    if config.guided:  # the guided field, its classifier and class mixtures in float64 too
        exact64 = field if source.make is None else exact
        field = guided_field(config, field, exact64)
    moving = field if poll is None else PolledField(field, poll)
    x = torch.from_numpy(result.trajectories[0]).to(torch.float64)
    times = torch.from_numpy(np.asarray(result.times, dtype=np.float64))
    ref, _ = reference(moving, path, x, times, *reference_tolerances(field))
    errors = frame_errors(torch.from_numpy(result.trajectories), ref).numpy()
    ratio = None
    if config.direction == "reverse" and config.guidance_class is None:
        ratio = _sw2_ratio(torch.from_numpy(result.trajectories[-1]), data, result, poll)
    return result.with_(reference=ref.float().numpy(), reference_errors=errors,
                        sw2_ratio=ratio)  # fmt: skip


def with_sw2(result: RunResult, poll=None) -> RunResult:
    """A reverse run with ``sw2_ratio`` (its samples' SW2 to fresh data over the noise floor),
    whatever its kind; the run itself if it is forward or has one already."""
    # a run guided toward a class is measured against its target (models/run/guided.py)
    if result.config.direction != "reverse" or result.sw2_ratio is not None or \
            result.config.guidance_class is not None:  # fmt: skip
        return result
    _, data, _ = build(result.config, result.dataset)
    ratio = _sw2_ratio(torch.from_numpy(result.trajectories[-1]), data, result, poll)
    return result.with_(sw2_ratio=ratio)


def _sw2_ratio(samples: torch.Tensor, data, result: RunResult, poll) -> float:
    """SW2 of the first ``SW2_POINTS`` samples (n, 2) to fresh data, over the noise floor of n
    (the particles are i.i.d.: the first n are a fair sample)."""
    samples = samples[:SW2_POINTS]
    n = len(samples)
    points = getattr(result.dataset, "points", None)
    key = (result.config.dataset, None if points is None else hash(np.asarray(points).tobytes()), n)
    with _FLOORS_LOCK:  # the sessions share it, and poll() below hands the turn to others
        floor = _FLOORS.get(key)
    if floor is None:
        floor = noise_floor(data, n, pairs=FLOOR_PAIRS)
        with _FLOORS_LOCK:
            _FLOORS.clear()  # one data set at a time: the floors are cheap to make again
            _FLOORS[key] = floor
    gen, total = torch.Generator().manual_seed(2000), 0.0
    for _ in range(REFS):
        if poll is not None:
            poll()
        total += sliced_w2(samples, data.sample(n, gen)[0], generator=gen)
    return total / REFS / floor

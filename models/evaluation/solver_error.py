"""How far a solver's particles are from the ODE's own solution, and how that falls with the
number of field evaluations (docs/MATH.md §4, "Reference solutions and measured orders").

The reference is the same start points integrated by Dormand–Prince 5(4) at rtol 1e-8 in
float64 (``models/solvers/adaptive.py``), output by its dense interpolant at the run's times.
Errors are mean Euclidean distances between a run's particles and the reference's, per frame
or at the end; SW2 of the end points to fresh data is reported as a ratio to the noise floor
(``models/evaluation/quality.py``), which says whether a solver's error is visible in the
samples at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
import torch
from torch import Tensor

from models.datasets import Dataset
from models.evaluation.quality import noise_floor, sw2_to_data
from models.fields import ExactField
from models.paths import GaussianPath
from models.solvers import SOLVERS, CountingField, Dopri5, make_times, sampler_of
from models.solvers.counting import PolledField
from models.solvers.grids import default_t_min

REFERENCE_RTOL, REFERENCE_ATOL = 1e-8, 1e-10
LEARNED_RTOL, LEARNED_ATOL = 1e-6, 1e-8  # a float32 network's output is rough below ~1e-7
DOPRI5_RTOLS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)  # its rows of error_vs_nfe: NFE ≈ 30..300
COLUMNS = ("solver", "grid", "steps", "nfe", "endpoint_error", "sw2_ratio", "seconds")


def reference_tolerances(field) -> tuple[float, float]:
    """(rtol, atol) of the reference on ``field``: 1e-8 / 1e-10 on an exact field (computed in
    the points' float64), 1e-6 / 1e-8 on a network (its float32 output is rough below that)."""
    from models.source_flow import SourcePairField  # exact too: a mixture over pairs

    if isinstance(field, ExactField | SourcePairField):
        return REFERENCE_RTOL, REFERENCE_ATOL
    return LEARNED_RTOL, LEARNED_ATOL


def exact_field64(path: GaussianPath, data: Dataset) -> ExactField:
    """The data set's exact field on the path, evaluated in float64."""
    return ExactField(path, data.reference(), dtype=torch.float64)


def reference(
    field, path: GaussianPath, x: Tensor, times: Tensor,
    rtol: float = REFERENCE_RTOL, atol: float = REFERENCE_ATOL,
) -> tuple[Tensor, dict]:  # fmt: skip
    """The ODE solution from x (N, 2) at every time of ``times`` (T+1,): (T+1, N, 2) float64,
    and the adaptive solver's stats (accepted, rejected, nfe)."""
    solver = Dopri5(rtol, atol)
    with torch.no_grad():
        traj = solver(field, path, x.to(torch.float64), times)
    return traj, dict(solver.stats)


def frame_errors(traj: Tensor, ref: Tensor) -> Tensor:
    """Mean distance of the particles to their reference positions per frame, (T+1,) float64."""
    return (traj.to(torch.float64) - ref.to(torch.float64)).norm(dim=-1).mean(-1)


def endpoint_error(traj: Tensor, ref: Tensor) -> float:
    """Mean distance at the last frame; ``traj`` and ``ref`` are (T+1, N, 2) or (N, 2)."""
    end, ref_end = (traj[-1], ref[-1]) if traj.dim() == 3 else (traj, ref)
    return float((end.to(torch.float64) - ref_end.to(torch.float64)).norm(dim=-1).mean())


def sw2_ratio(samples: Tensor, data: Dataset, floor: float | None = None) -> float:
    """Mean SW2 of samples (n, 2) to fresh n-point data samples over the noise floor of n."""
    floor = noise_floor(data, len(samples)) if floor is None else floor
    return sw2_to_data(samples.to(torch.float32), data) / floor


def nfe_targets(low: int = 4, high: int = 200, count: int = 9) -> list[int]:
    """About ``count`` whole NFEs from low to high, log-spaced, without repeats."""
    values = np.unique(np.round(np.geomspace(low, high, count)).astype(int))
    return [int(v) for v in values]


def fitted_order(nfes, errors, floor: float = 1e-12) -> float:
    """Order p of error ∝ NFE^−p: the least-squares slope of log error on log NFE over the
    asymptotic part, the upper half of the NFEs (at least 3 points), leaving out errors at the
    rounding floor. NaN where fewer than 3 points remain."""
    pairs = sorted((n, e) for n, e in zip(nfes, errors, strict=True) if e > floor)
    pairs = pairs[min(len(pairs) // 2, max(len(pairs) - 3, 0)) :]
    if len(pairs) < 3:
        return math.nan
    n, e = np.log(np.array(pairs, dtype=float)).T
    return float(-np.polyfit(n, e, 1)[0])


@dataclass
class ErrorTable:
    """The rows (one dict per run, keys COLUMNS), the fitted order per (solver, grid), and
    whether ``should_stop`` cut the sweep short."""

    rows: list[dict] = dataclass_field(default_factory=list)
    orders: dict[tuple[str, str], float] = dataclass_field(default_factory=dict)
    stopped: bool = False
    reference_stats: dict = dataclass_field(default_factory=dict)


class _Stopped(Exception):
    """Raised from a run's callback when should_stop() says so (never leaves this module)."""


def _plan(solvers, grids, nfes) -> list[tuple[str, str, dict]]:
    """(solver, grid, options) of every run: fixed-step solvers at each grid and target NFE
    (repeated step counts once), dopri5 at each of DOPRI5_RTOLS."""
    runs = []
    for name in solvers:
        spec = SOLVERS[name]
        if spec.adaptive:
            runs += [(name, "adaptive", {"rtol": r, "atol": r * 1e-2}) for r in DOPRI5_RTOLS]
            continue
        for grid in grids:
            steps = sorted({spec.steps_for(n) for n in nfes})
            runs += [(name, grid, {"steps": s}) for s in steps]
    return runs


def error_vs_nfe(
    data: Dataset,
    path: GaussianPath,
    field=None,
    *,
    solvers=None,
    grids=("uniform", "logsnr"),
    nfes=None,
    particles: int = 400,
    seed: int = 0,
    t_min: float | None = None,
    sw2: bool = True,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ErrorTable:
    """Every ODE solver's endpoint error against the reference, as a function of its NFE.

    Reverse runs from t = 1 to t_min (the process's default) in float64, from ``particles``
    prior points drawn with ``seed``. ``field``: None for the exact field; a learned field's
    reference is its own ODE (solver error, not model error) at rtol 1e-6, as its float32
    output is rough below that. ``solvers``: names of ODE solvers (default: all of SOLVERS).
    ``progress(fraction)`` is called after the reference and after each run; ``should_stop()``
    is polled at every step, and the table so far is returned with ``stopped`` set.
    """
    field = exact_field64(path, data) if field is None else field
    solvers = tuple(SOLVERS) if solvers is None else tuple(solvers)
    nfes = nfe_targets() if nfes is None else list(nfes)
    t_min = default_t_min(path) if t_min is None else t_min
    gen = torch.Generator().manual_seed(seed)
    x1 = path.prior(particles, 1.0, gen, dtype=torch.float64)
    runs = _plan(solvers, grids, nfes)
    table = ErrorTable()

    def check(_info=None):
        if should_stop is not None and should_stop():
            raise _Stopped

    def report(done: int) -> None:
        if progress is not None:
            progress(done / (len(runs) + 1))

    try:
        check()
        end_times = torch.tensor([1.0, t_min], dtype=torch.float64)
        # the adaptive solves take many steps between their two output times: poll at every
        # evaluation, so that a stop lands at once and the compute turn passes meanwhile
        polled = PolledField(field, check)
        tols = reference_tolerances(field)
        ref, table.reference_stats = reference(polled, path, x1, end_times, *tols)
        report(1)
        floor = noise_floor(data, particles) if sw2 else math.nan
        for k, (name, grid, options) in enumerate(runs):
            check()
            counted = CountingField(polled)
            options = dict(options)
            steps = options.pop("steps", 1)
            sampler = sampler_of(name, **options)
            times = make_times(path, grid if grid != "adaptive" else "uniform", steps, 1.0, t_min)
            start = time.perf_counter()
            with torch.no_grad():
                end = sampler(counted, path, x1, times, callback=check)[-1]
            seconds = time.perf_counter() - start
            if isinstance(sampler, Dopri5):
                steps = sampler.stats["accepted"]
            table.rows.append({
                "solver": name, "grid": grid, "steps": steps, "nfe": counted.nfe,
                "endpoint_error": endpoint_error(end, ref[-1]),
                "sw2_ratio": sw2_ratio(end, data, floor) if sw2 else math.nan,
                "seconds": seconds,
            })  # fmt: skip
            report(k + 2)
    except _Stopped:
        table.stopped = True
    for key in dict.fromkeys((r["solver"], r["grid"]) for r in table.rows):
        series = [r for r in table.rows if (r["solver"], r["grid"]) == key]
        table.orders[key] = fitted_order(
            [r["nfe"] for r in series], [r["endpoint_error"] for r in series]
        )
    return table

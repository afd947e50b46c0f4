"""What every solver of this package shares: the time grid as floats, the trajectory buffer,
the noise source and the log-SNR (docs/MATH.md §4).

Every solver keeps the samplers' one signature (``models/samplers.py``)::

    sampler(field, path, x, times, eta=0.0, generator=None, callback=None) -> (T+1, N, 2)
"""

from __future__ import annotations

import itertools
import math

import torch

from models.paths import GaussianPath
from models.samplers import noise, trajectory  # noqa: F401  (shared with the solvers here)


def grid_times(path: GaussianPath, times) -> list[float]:
    """The (T+1,) grid as Python floats, with the path's coefficients remembered for all of
    them in one vectorized call (``GaussianPath.remember``)."""
    ts = [float(t) for t in times]
    if len(ts) < 2:
        raise ValueError(f"a time grid needs at least 2 times, got {len(ts)}")
    gaps = [b - a for a, b in itertools.pairwise(ts)]
    if not (all(g > 0 for g in gaps) or all(g < 0 for g in gaps)):
        raise ValueError("times must be strictly increasing or strictly decreasing")
    path.remember(torch.tensor(ts, dtype=torch.float64))
    return ts


def require_ode(name: str, eta: float) -> None:
    """ValueError unless η = 0: the solver integrates the probability-flow ODE only."""
    if eta != 0:
        raise ValueError(
            f"{name} integrates the probability-flow ODE only: use eta = 0 "
            f"(stochastic runs: euler or ddim), got eta = {eta:g}"
        )


def log_snr(a: float, b: float) -> float:
    """λ = log(a/b), float64: −∞ where a = 0 (fm, trig at t = 1), +∞ where b = 0 (t = 0)."""
    if a <= 0:
        return -math.inf
    if b <= 0:
        return math.inf
    return math.log(a) - math.log(b)

"""Memorization versus generalization: do generated samples land on the training points?

With a finite training set of M points, the exact field of those M points (an empirical
distribution) sends every reverse run onto one of them: it memorizes. The true exact field
and a network that generalizes produce samples *between* the training points as well.

The readout is the share of generated samples within δ of their nearest training point. A fixed
δ cannot work at every M (2D data on curves: with many training points every sample is close
to one), so δ scales with the training set: a fraction of the median distance between a
training point and its nearest other training point. For samples drawn independently of the
training set from a locally uniform 2D density, δ = ¼ of that median spacing gives a share of
1 − 2^(−1/16) ≈ 4 % (1D: 1 − 2^(−1/4) ≈ 16 %); a memorizing field gives ≈ 100 %.
"""

from __future__ import annotations

import torch
from torch import Tensor

from models.datasets import Dataset

DELTA_FRACTION = 0.25  # δ = this x the median nearest-neighbour spacing of the training set
BLOCK = 2**20  # distances per block (8 MB of float64): rows x M, whatever M is


def training_points(data: Dataset, m: int, seed: int) -> tuple[Tensor, Tensor]:
    """The M training points (M, 2) float32 and labels (M,) that
    :class:`models.learned.training.Trainer` draws for ``train_size=m`` and ``seed`` (its first draw
    from a generator seeded with ``seed``), so the exact field of M points and a network
    trained here share one training set."""
    return data.sample(m, torch.Generator().manual_seed(seed))


def nearest_distance(x: Tensor, points: Tensor, exclude_self: bool = False) -> Tensor:
    """Distance from each row of x (N, 2) to its nearest row of points (M, 2), shape (N,).

    ``exclude_self`` (x is points): the nearest *other* point (needs M ≥ 2).
    """
    x, points = x.double(), points.double()
    out = []
    rows_per_block = max(1, BLOCK // max(1, len(points)))
    for start in range(0, len(x), rows_per_block):
        d = torch.cdist(x[start : start + rows_per_block], points)
        if exclude_self:
            rows = torch.arange(len(d))
            d[rows, rows + start] = float("inf")
        out.append(d.min(1).values)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def memorization_delta(train: Tensor, fraction: float = DELTA_FRACTION) -> float:
    """δ for a training set (M, 2), M ≥ 2: ``fraction`` x its median nearest-neighbour spacing."""
    assert len(train) >= 2, "δ needs at least two training points"
    return fraction * float(nearest_distance(train, train, exclude_self=True).median())


def memorized_share(samples: Tensor, train: Tensor, delta: float) -> float:
    """Share of samples (N, 2) within ``delta`` of some training point (M, 2), in [0, 1]."""
    assert delta >= 0, f"delta must be >= 0, got {delta}"
    if len(samples) == 0:
        return 0.0
    return float((nearest_distance(samples, train) <= delta).double().mean())

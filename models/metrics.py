"""Distances between point clouds (MATH.md §7)."""

from __future__ import annotations

import torch
from torch import Tensor


def sliced_w2(x: Tensor, y: Tensor, n_directions: int = 256, generator=None) -> float:
    """Sliced Wasserstein-2 distance between two clouds of equal size.

    Projects both on random unit directions, sorts, and averages the squared differences of
    the sorted projections: SW2 = √(mean over directions of W2² in 1D).

    Args:
        x, y: point clouds, shape (N, 2) each.
        n_directions: number of random directions.
    """
    if x.shape != y.shape:
        raise ValueError(f"clouds must have the same shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    theta = torch.randn(n_directions, x.shape[1], generator=generator, dtype=torch.float64)
    theta = theta / theta.norm(dim=1, keepdim=True)
    px = torch.sort(x.double().cpu() @ theta.T, dim=0).values
    py = torch.sort(y.double().cpu() @ theta.T, dim=0).values
    return float(((px - py) ** 2).mean().sqrt())

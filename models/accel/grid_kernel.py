"""The responsibility mean of Cartesian blocks of components (the checkerboard's
``models.datasets.GridBlocks``) on the CPU in one compiled pass (numba).

The Gaussian factorises over the axes, so a block's sum over its components is the product of
two sums over its axis coordinates: per point, one short sum per axis group and one term per
block, instead of a term per component (12x fewer exponentials), as ``ExactField._grid_mean``
computes it in torch. The exponentials and the output are those of
:mod:`models.accel.mixture_kernel`; so are its rules (float32, no ``nnan``/``ninf``, rows
independent of their block).
"""

from __future__ import annotations

import numba
import numpy as np

from models.accel.mixture_kernel import (
    BLOCK,
    FAST,
    SAFE_LOGIT,
    exp_nonpositive,
    output_for,
    write_affine,
)


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")
def _axis_terms(u, axes, a, inv_2c2, shift, total, mean, near):
    """Per axis group g of ``axes`` (G, k) and point i of ``u`` (b,): the largest of
    d_gj = −(u_i − a axes_gj)² / 2c² (``shift``), Σ_j e^(d_gj − shift) (``total``, in [1, k])
    and the softmax mean of axes_g (``mean``); outputs (G, b), points along the lanes.
    ``near`` (G, b) is scratch: the nearest centre a axes_gj of each group."""
    b = u.shape[0]
    for g in range(axes.shape[0]):
        for i in range(b):
            shift[g, i] = -np.inf
            near[g, i] = 0.0
        for j in range(axes.shape[1]):
            centre = a * axes[g, j]
            for i in range(b):
                d = (u[i] - centre) * (u[i] - centre) * inv_2c2
                higher = d > shift[g, i]
                shift[g, i] = d if higher else shift[g, i]
                near[g, i] = centre if higher else near[g, i]
        for i in range(b):
            total[g, i] = 0.0
            mean[g, i] = 0.0
        for j in range(axes.shape[1]):
            centre, coord = a * axes[g, j], axes[g, j]
            for i in range(b):
                # d_gj − shift as (c_b − c)(2u − c − c_b) / 2c²: small terms, 0 for the nearest
                # (recomputing d_gj − shift came out far above 0 for far points)
                nearest = near[g, i]
                w = exp_nonpositive(
                    inv_2c2 * (nearest - centre) * (np.float32(2.0) * u[i] - centre - nearest)
                )
                total[g, i] += w
                mean[g, i] += w * coord
        for i in range(b):
            mean[g, i] /= total[g, i]


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")
def _grid_mean(x, xs, ys, blocks, a, inv_2c2, alpha, beta, out):
    """out (N, 2) = α m(x) + β x, m the responsibility mean of Cartesian blocks
    (``models.datasets.GridBlocks``: xs (Gx, kx), ys (Gy, ky), blocks (B, 2) group pairs).
    Block b's weight is the product of its axis sums, e^(shift_x + shift_y − largest) total_x
    total_y ≤ k_x k_y: no logarithm."""
    n, n_blocks = x.shape[0], blocks.shape[0]
    u = np.empty(BLOCK, np.float32)
    v = np.empty(BLOCK, np.float32)
    terms_x = [np.empty((xs.shape[0], BLOCK), np.float32) for _ in range(3)]
    terms_y = [np.empty((ys.shape[0], BLOCK), np.float32) for _ in range(3)]
    near_x = np.empty((xs.shape[0], BLOCK), np.float32)
    near_y = np.empty((ys.shape[0], BLOCK), np.float32)
    top = np.empty(BLOCK, np.float32)
    total = np.empty(BLOCK, np.float32)
    sum_x = np.empty(BLOCK, np.float32)
    sum_y = np.empty(BLOCK, np.float32)
    for start in range(0, n, BLOCK):
        b = min(BLOCK, n - start)
        for i in range(b):
            u[i] = x[start + i, 0]
            v[i] = x[start + i, 1]
        shift_x, total_x, mean_x = terms_x
        shift_y, total_y, mean_y = terms_y
        _axis_terms(u[:b], xs, a, inv_2c2, shift_x, total_x, mean_x, near_x)
        _axis_terms(v[:b], ys, a, inv_2c2, shift_y, total_y, mean_y, near_y)
        for i in range(b):
            top[i] = -np.inf
            total[i] = 0.0
            sum_x[i] = 0.0
            sum_y[i] = 0.0
        for k in range(n_blocks):
            gx, gy = blocks[k, 0], blocks[k, 1]
            for i in range(b):
                s = shift_x[gx, i] + shift_y[gy, i]
                top[i] = s if s > top[i] else top[i]
        for k in range(n_blocks):
            gx, gy = blocks[k, 0], blocks[k, 1]
            for i in range(b):
                # the same stored shifts summed as for top: exactly 0 for the top block
                w = exp_nonpositive(shift_x[gx, i] + shift_y[gy, i] - top[i])
                w *= total_x[gx, i] * total_y[gy, i]
                total[i] += w
                sum_x[i] += w * mean_x[gx, i]
                sum_y[i] += w * mean_y[gy, i]
        for i in range(b):
            write_affine(out, start + i, sum_x[i] / total[i], sum_y[i] / total[i], u[i], v[i],
                   alpha, beta)  # fmt: skip


class GridKernel:
    """The responsibility mean of Cartesian blocks (``models.datasets.GridBlocks``) at any
    (a, c²): per axis sums, as ``ExactField._grid_mean`` computes them in torch."""

    def __init__(self, grid):
        self.xs = np.ascontiguousarray(grid.xs.numpy(), np.float32)
        self.ys = np.ascontiguousarray(grid.ys.numpy(), np.float32)
        self.blocks = np.ascontiguousarray(grid.blocks.numpy(), np.int64)
        self.reach = float(max(np.abs(self.xs).max(), np.abs(self.ys).max()))

    def fits(self, largest_abs_x: float, a: float, c2: float) -> bool:
        """Whether points with max |coordinate| ``largest_abs_x`` are safe for the kernel at
        (a, c²): (|x| + a |axes|)² / 2c² stays below SAFE_LOGIT (False for NaN)."""
        return (largest_abs_x + abs(a) * self.reach) ** 2 < 2 * c2 * SAFE_LOGIT

    def __call__(self, x: np.ndarray, a: float, c2: float) -> np.ndarray:
        """m(x) for x float32 (N, 2) → float32 (N, 2)."""
        return self.affine(x, a, c2, 1.0, 0.0)

    def affine(self, x: np.ndarray, a: float, c2: float, alpha: float, beta: float,
               out: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """α m(x) + β x, as ``MixtureKernel.affine``."""
        out = output_for(x, out)
        _grid_mean(np.ascontiguousarray(x, np.float32), self.xs, self.ys, self.blocks,
                   np.float32(a), np.float32(-0.5 / c2), float(alpha), float(beta),
                   out)  # fmt: skip
        return out

"""Eulerian frames: densities on a fixed grid (docs/MATH.md §6).

Arrays are (F, H, W) with row j at y_j and column i at x_i (cell centres, y increasing with the
row index, as an image with its origin at the lower left). Densities integrate to the mass inside
the box: Σ ρ dx dy ≤ 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.datasets import Reference
from models.paths import GaussianPath

DEFAULT_EXTENT = (-4.0, 4.0, -4.0, 4.0)
DEFAULT_RESOLUTION = 128
DEFAULT_BANDWIDTH = 0.1
FRAME_CHUNK = 4  # (4, M, 128) float32 factors stay in cache


@dataclass(frozen=True)
class Grid:
    """A regular grid over extent (xmin, xmax, ymin, ymax) with (height, width) cells."""

    extent: tuple[float, float, float, float] = DEFAULT_EXTENT
    shape: tuple[int, int] = (DEFAULT_RESOLUTION, DEFAULT_RESOLUTION)

    @property
    def cell(self) -> tuple[float, float]:
        """(dx, dy)."""
        x0, x1, y0, y1 = self.extent
        return (x1 - x0) / self.shape[1], (y1 - y0) / self.shape[0]

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell edges (ex (W+1,), ey (H+1,)), float64: the x of the faces between columns and
        the y of the faces between rows."""
        x0, x1, y0, y1 = self.extent
        return np.linspace(x0, x1, self.shape[1] + 1), np.linspace(y0, y1, self.shape[0] + 1)

    def centres(self, dtype=torch.float64, device=None) -> tuple[Tensor, Tensor]:
        """Cell centres (xs (W,), ys (H,))."""
        x0, _, y0, _ = self.extent
        dx, dy = self.cell
        xs = x0 + dx * (torch.arange(self.shape[1], dtype=dtype, device=device) + 0.5)
        ys = y0 + dy * (torch.arange(self.shape[0], dtype=dtype, device=device) + 0.5)
        return xs, ys


def _blur_taps(sigma_px: float, dtype) -> Tensor:
    """(2r + 1,) weights of the normalised Gaussian of width sigma_px truncated at r = ⌈3σ⌉."""
    radius = max(1, math.ceil(3 * sigma_px))
    u = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (u / sigma_px) ** 2)
    return (g / g.sum()).to(dtype)


def smooth(images: Tensor, sigma_px: tuple[float, float]) -> Tensor:
    """Separable Gaussian blur of (F, H, W) images, widths in pixels (along y, along x).

    Each axis is a sum of 2r + 1 shifted copies of the zero-padded images: mass blurred past the
    border leaves the box, as it would for a KDE. Measured 2x faster on the CPU than two banded
    matrix products (and 40x faster than ``conv2d`` with one-channel kernels).
    """
    out = images
    for axis, sigma in ((1, sigma_px[0]), (2, sigma_px[1])):
        if sigma <= 0:
            continue
        taps = _blur_taps(sigma, images.dtype).tolist()
        radius, size = len(taps) // 2, out.shape[axis]
        pad = (radius, radius, 0, 0) if axis == 2 else (0, 0, radius, radius)
        padded = torch.nn.functional.pad(out, pad)
        blurred = taps[0] * padded.narrow(axis, 0, size)
        for k in range(1, len(taps)):
            blurred.add_(padded.narrow(axis, k, size), alpha=taps[k])
        out = blurred
    return out


def histogram_density(frames: Tensor, grid: Grid, bandwidth: float = DEFAULT_BANDWIDTH) -> Tensor:
    """Density of each frame of a particle cloud: histogram, then Gaussian smoothing.

    Args:
        frames: positions, shape (F, N, 2).
        grid: the grid.
        bandwidth: smoothing width in data units (0 for the bare histogram).

    Returns:
        float32 densities, shape (F, H, W); one ``bincount`` for all frames at once.
    """
    n_frames, n, _ = frames.shape
    height, width = grid.shape
    x0, _, y0, _ = grid.extent
    dx, dy = grid.cell
    ix = torch.floor((frames[..., 0] - x0) / dx).long()
    iy = torch.floor((frames[..., 1] - y0) / dy).long()
    inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height) & torch.isfinite(frames).all(-1)
    frame_idx = torch.arange(n_frames, device=frames.device)[:, None].expand(-1, n)
    flat = (frame_idx * height + iy) * width + ix
    counts = torch.bincount(flat[inside], minlength=n_frames * height * width)
    hist = counts.reshape(n_frames, height, width).to(torch.float32) / (n * dx * dy)
    return smooth(hist, (bandwidth / dy, bandwidth / dx)) if bandwidth > 0 else hist


def _gaussian_factor(axis: Tensor, centres: Tensor, var: Tensor) -> Tensor:
    """N(axis; centres, var) for every centre, shape (f, M, len(axis)); in place after one
    allocation, since memory traffic, not arithmetic, bounds this on the CPU."""
    g = axis[None, None, :] - centres
    # The clamp keeps exp off its slow path for underflowing arguments (< −87 in float32, 100x
    # slower); e⁻⁵⁰ is zero to float32 precision next to the peak of any Gaussian in the sum.
    g = g.square_().mul_(-0.5 / var).clamp_(min=-50.0).exp_()
    return g.mul_(1.0 / torch.sqrt(2 * math.pi * var))


def mixture_density(reference: Reference, path: GaussianPath, times: Tensor, grid: Grid) -> Tensor:
    """Exact p_t on the grid for each time (docs/MATH.md §5), shape (F, H, W) float32.

    p_t(x, y) = (1/M) Σ_i N(x; a x_i1, c²) N(y; a x_i2, c²): the isotropic Gaussian separates,
    so each frame is one (H, M) @ (M, W) product instead of H·W·M exponentials. Cartesian
    blocks (the checkerboard) sum each axis first: an (H, B) @ (B, W) product, B blocks.
    """
    device, dtype = (
        reference.points.device,
        torch.float32,
    )  # float32: ample for a picture, 2x faster
    coef = path.coefficients(times.to(torch.float64))
    a = coef.a.to(device)
    c2 = (a**2 * reference.sigma**2 + coef.b.to(device) ** 2).to(dtype)
    a = a.to(dtype)
    xs, ys = grid.centres(dtype=dtype, device=device)
    pts = reference.points.to(device=device, dtype=dtype)
    blocks = reference.grid
    out = []
    for sl in torch.arange(len(times)).split(FRAME_CHUNK):
        a_, c2_ = a[sl, None, None], c2[sl, None, None]  # (f, 1, 1)
        if blocks is None:
            gx = _gaussian_factor(xs, a_ * pts[None, :, 0:1], c2_)  # (f, M, W)
            gy = _gaussian_factor(ys, a_ * pts[None, :, 1:2], c2_)  # (f, M, H)
        else:
            gx = _axis_sums(xs, blocks.xs, a_, c2_)[:, blocks.blocks[:, 0]]  # (f, B, W)
            gy = _axis_sums(ys, blocks.ys, a_, c2_)[:, blocks.blocks[:, 1]]  # (f, B, H)
        out.append(torch.bmm(gy.transpose(1, 2), gx) / len(pts))  # (f, H, W)
    return torch.cat(out)


def _axis_sums(axis: Tensor, groups: Tensor, a: Tensor, var: Tensor) -> Tensor:
    """Σ_j N(axis; a u_gj, var) for each group g of (G, k) coordinates, shape (f, G, len(axis))."""
    f, (n_groups, k) = len(a), groups.shape
    centres = a * groups.reshape(1, -1, 1).to(axis)  # (f, G·k, 1)
    return _gaussian_factor(axis, centres, var).reshape(f, n_groups, k, -1).sum(2)

"""Two-dimensional toy data sets, each defined as the Gaussian mixture its exact field uses.

Every built-in data set *is* a mixture of M equal-weight isotropic Gaussians (docs/MATH.md §5):
drawing a point picks a component uniformly and adds N(0, σ_d² I), σ_d the data set's own noise
width. So the exact field of :mod:`models.fields` is exact for the data set itself, not for a
blurred copy of noisy samples. The components are:

============  ====  ======  ==============================================================
data set      M     σ_d     components (spacing δ between neighbours)
============  ====  ======  ==============================================================
8gaussians    8     0.15    the eight means on a circle of radius 2
moons         128   0.08    64 points per half circle (radius 1.5), δ = 0.074
circles       336   0.05    168 points per circle (radius 1 and 2), δ ≤ 0.075
swissroll     384   0.04    equal steps in θ on r ∝ θ, δ ≤ 0.060
checkerboard  1152  0.08    a 12 x 12 grid of cell centres in each of the 8 unit squares (the
                            field sums them per axis: 96 exponentials, not 1152),
                            δ = 0.083
spirals       512   0.05    256 points per arm at equal steps of r², δ ≤ 0.062 for 99 %
                            (up to 0.09 for the innermost few, where the arm is nearly empty)
============  ====  ======  ==============================================================

Why these counts are enough: components spaced δ along a curve (or on a grid) and blurred by σ_d
equal the continuous curve (or uniform square) blurred by σ_d up to a relative ripple of
2 exp(−2π² σ_d² / δ²) (Poisson summation): 3e−4 for δ = 1.5 σ_d (the circles' outer ring,
the swiss roll's outer turn), 2.4e−8 for the checkerboard (δ = 1.04 σ_d), below 5e−9 elsewhere
but for 4e−3 at the spirals' nearly empty centre. That is far below what any sample can resolve
(4,000 points resolve density differences of a few per cent), and more components would only
cost latency: the exponentials of the exact field grow with M (circles and swiss roll had
512 and 576 components at δ ≤ σ_d, 1.5x slower). The pictures are those of the former data
sets (same curves, same noise widths); the checkerboard, once uniform with sharp edges, now
has its edges softened by σ_d = 0.08, the noise width of the moons.

User points (:class:`Points`) are different: an empirical set smoothed by a bandwidth, whose
exact field reproduces (memorizes) those points.

All data sets live in roughly [-2.5, 2.5]², so that the noise N(0, I) and the data share one view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

DEFAULT_BANDWIDTH = 0.08
# σ_d of user points: below 1e-3 its square (the kernel's variance) nears float32's resolution
# of the view and, far below, underflows to 0 (a division by zero); above 10 it hides the view
BANDWIDTH_RANGE = (1e-3, 10.0)
MAX_REFERENCE = 4000
MAX_COORD = 1000.0  # user points beyond this are refused: float32 squares lose the data there


@dataclass(frozen=True)
class GridBlocks:
    """Components that form Cartesian grids: block b holds the means (xs[gx_b, j], ys[gy_b, k])
    for every j, k, in the order ``meshgrid(..., indexing="xy")`` flattens them (x fastest).

    An isotropic Gaussian factorises over the axes, so the exact field sums a block's kx·ky
    components as (Σ_j)(Σ_k): kx + ky exponentials per distinct axis instead of kx·ky per block
    (the checkerboard: 96 instead of 1152 per particle). The mixture is unchanged; only its
    evaluation is faster.

    Attributes:
        xs: x coordinates of each x-group, (Gx, kx); ys: (Gy, ky).
        blocks: the (gx, gy) group pair of each block, (B, 2) int64.
    """

    xs: Tensor
    ys: Tensor
    blocks: Tensor

    def points(self) -> Tensor:
        """Every component mean, (B·ky·kx, 2), block by block (the mixture's order)."""
        out = []
        for gx, gy in self.blocks.tolist():
            u, v = torch.meshgrid(self.xs[gx], self.ys[gy], indexing="xy")
            out.append(torch.stack([u.reshape(-1), v.reshape(-1)], 1))
        return torch.cat(out)


@dataclass(frozen=True)
class Reference:
    """A Gaussian mixture with equal weights and isotropic components.

    Attributes:
        points: component means x_i, shape (M, 2).
        labels: an integer label per component (for colouring), shape (M,).
        sigma: component standard deviation σ_d > 0.
        grid: the same components as Cartesian blocks, when they are (a faster evaluation),
            each block one label; None otherwise.
    """

    points: Tensor
    labels: Tensor
    sigma: float
    grid: GridBlocks | None = None


def _normal(shape, g: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64)


def _midpoints(k: int) -> Tensor:
    """(k,) float64: the midpoints (j + ½)/k of k equal cells of [0, 1]."""
    return (torch.arange(k, dtype=torch.float64) + 0.5) / k


class Dataset:
    """A mixture data set: subclasses define :meth:`_components`; ``n_labels`` classes (their
    components' labels, the colours of the particles), named by ``class_names``."""

    name = "dataset"
    n_labels = 1
    class_names: tuple[str, ...] = ()
    sigma = DEFAULT_BANDWIDTH

    def _components(self) -> tuple[Tensor, Tensor]:
        """Component means float64 (M, 2) and labels int64 (M,)."""
        raise NotImplementedError

    def _grid(self) -> GridBlocks | None:
        """The components as Cartesian blocks, for sets built that way (else None)."""
        return None

    @cached_property
    def mixture(self) -> Reference:
        """The mixture that defines the data set (and that its exact field uses)."""
        points, labels = self._components()
        return Reference(points, labels, self.sigma, self._grid())

    def sample(
        self, n: int, generator: torch.Generator, dtype=torch.float32, device=None
    ) -> tuple[Tensor, Tensor]:
        """Draw n labelled points: pick a component, add its Gaussian.

        Returns (points (n, 2), labels (n,)).
        """
        mix = self.mixture
        idx = torch.randint(0, len(mix.points), (n,), generator=generator)
        points = mix.points[idx] + mix.sigma * _normal((n, 2), generator)
        return points.to(dtype=dtype, device=device), mix.labels[idx].to(device=device)

    def reference(self, m: int | None = None, seed: int = 0) -> Reference:
        """The mixture the exact field uses: the data set's own (``m``, ``seed`` only matter
        for user points, which may be subsampled)."""
        return self.mixture


class EightGaussians(Dataset):
    """Eight isotropic Gaussians of width 0.15 on a circle of radius 2."""

    name = "8gaussians"
    n_labels = 8
    class_names = ("east", "north-east", "north", "north-west", "west", "south-west", "south",
                   "south-east")  # fmt: skip
    radius, sigma = 2.0, 0.15

    def means(self) -> Tensor:
        angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
        return self.radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)

    def _components(self):
        return self.means(), torch.arange(8)


class Moons(Dataset):
    """Two interleaving half circles (as scikit-learn's make_moons), centred and scaled by 1.5."""

    name = "moons"
    n_labels = 2
    class_names = ("upper moon", "lower moon")
    sigma, per_moon = 0.08, 64

    def _components(self):
        theta = math.pi * _midpoints(self.per_moon)
        outer = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
        inner = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], 1)
        points = 1.5 * (torch.cat([outer, inner]) - torch.tensor([0.5, 0.25], dtype=torch.float64))
        return points, torch.arange(2).repeat_interleave(self.per_moon)


class Circles(Dataset):
    """Two concentric circles of radius 1 and 2, equally likely."""

    name = "circles"
    n_labels = 2
    class_names = ("inner circle", "outer circle")
    sigma, per_circle = 0.05, 168

    def _components(self):
        theta = 2 * math.pi * _midpoints(self.per_circle)
        unit = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
        return torch.cat([unit, 2 * unit]), torch.arange(2).repeat_interleave(self.per_circle)


class SwissRoll(Dataset):
    """The 2D swiss roll r = θ, θ ∈ [1.5π, 4.5π], scaled to radius 2.4; labelled by quarter."""

    name = "swissroll"
    n_labels = 4
    class_names = ("inner quarter", "second quarter", "third quarter", "outer quarter")
    sigma, count = 0.04, 384

    def _components(self):
        u = _midpoints(self.count)
        theta = 1.5 * math.pi * (1 + 2 * u)
        points = torch.stack([theta * torch.cos(theta), theta * torch.sin(theta)], 1) / 5.9
        return points, torch.clamp((u * 4).long(), max=3)


class Checkerboard(Dataset):
    """Eight unit squares of a 4x4 checkerboard on [-2, 2]², blurred by σ_d; labelled by square.

    Each square is a 12 x 12 grid of components at its cell centres (spacing 0.083 ≈ σ_d); the
    squares are Cartesian blocks (:class:`GridBlocks`), which the exact field sums per axis.
    """

    name = "checkerboard"
    n_labels = 8
    # the squares in _grid's order, each named by its centre
    class_names = tuple(f"square at ({c - 1.5:+g}, {r + c % 2 - 1.5:+g})"
                        for c in range(4) for r in (0, 2))  # fmt: skip
    sigma, per_side = 0.08, 12

    def _grid(self) -> GridBlocks:
        cell = _midpoints(self.per_side)
        columns = torch.stack([cell + (c - 2) for c in range(4)])  # (4, k): x of each column
        rows = torch.stack([cell + (r - 2) for r in range(4)])  # (4, k): y of each row
        # the dark squares: in column c, rows 0 and 2 shifted up by the column's parity
        blocks = [[c, r + c % 2] for c in range(4) for r in (0, 2)]
        return GridBlocks(columns, rows, torch.tensor(blocks))

    def _components(self):
        grid = self._grid()
        labels = torch.arange(len(grid.blocks)).repeat_interleave(self.per_side**2)
        return grid.points(), labels


class Spirals(Dataset):
    """Two interleaved spiral arms reaching radius 2.4, points denser outwards (r ∝ √u)."""

    name = "spirals"
    n_labels = 2
    class_names = ("first arm", "second arm")
    sigma, per_arm = 0.05, 256

    def _components(self):
        r = torch.sqrt(_midpoints(self.per_arm)) * 3 * math.pi
        arm = torch.stack([-torch.cos(r) * r, torch.sin(r) * r], 1) / 3.9
        return torch.cat([arm, -arm]), torch.arange(2).repeat_interleave(self.per_arm)


class Points(Dataset):
    """A set of points given by the caller (later: drawn by the user): an empirical set.

    Its mixture is the points themselves smoothed by ``bandwidth``; sampling draws a point and
    adds N(0, bandwidth² I). The exact field of that mixture memorizes the points (reverse runs
    land on them), where a learned field would generalize. Sets larger than ``MAX_REFERENCE``
    are subsampled for the field (fixed seed) so its cost stays bounded.
    """

    name = "points"

    def __init__(self, points, labels=None, bandwidth: float = DEFAULT_BANDWIDTH):
        pts = torch.as_tensor(np.asarray(points, dtype=np.float64))
        if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
            raise ValueError(f"points must have shape (M, 2) with M >= 1, got {tuple(pts.shape)}")
        if not torch.isfinite(pts).all():
            raise ValueError("points contain NaN or infinite values")
        if float(pts.abs().max()) > MAX_COORD:
            raise ValueError(
                f"points must lie within ±{MAX_COORD:g} of the origin (the view is ±4), "
                f"got a coordinate of {float(pts.abs().max()):.3g}"
            )
        low, high = BANDWIDTH_RANGE
        if not low <= bandwidth <= high:
            raise ValueError(f"bandwidth must be in {low:g}..{high:g}, got {bandwidth:g}")
        lab = torch.zeros(len(pts), dtype=torch.long) if labels is None else torch.as_tensor(labels)
        if lab.shape != (len(pts),):
            raise ValueError("labels must have one entry per point")
        self.points, self.labels, self.bandwidth = pts, lab.long(), float(bandwidth)
        self.n_labels = int(self.labels.max()) + 1

    @property
    def sigma(self) -> float:
        return self.bandwidth

    def _components(self):
        return self.points, self.labels

    def reference(self, m: int | None = MAX_REFERENCE, seed: int = 0) -> Reference:
        m = MAX_REFERENCE if m is None else m
        points, labels = self.points, self.labels
        if len(points) > m:
            perm = torch.randperm(len(points), generator=torch.Generator().manual_seed(seed))
            keep = perm[:m]
            # every class keeps a point: a random subset could drop a small one, which guidance
            # could then not steer toward (the class's weight π_c still varies with the draw)
            missing = sorted(set(labels.tolist()) - set(labels[keep].tolist()))
            if missing:
                ranked = labels[perm]
                firsts = torch.stack([perm[(ranked == c).nonzero()[0, 0]] for c in missing])[:m]
                keep = torch.cat([keep[: m - len(firsts)], firsts])
            points, labels = points[keep], labels[keep]
        return Reference(points, labels, self.bandwidth)


DATASETS: dict[str, type[Dataset]] = {
    cls.name: cls for cls in (EightGaussians, Moons, Circles, SwissRoll, Checkerboard, Spirals)
}


def make_dataset(name: str) -> Dataset:
    """Build a named built-in data set (``points`` needs :class:`Points` directly)."""
    try:
        return DATASETS[name]()
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None

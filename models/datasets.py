"""Two-dimensional toy data sets (MATH.md §5).

Every data set draws N labelled points with a ``torch.Generator`` and reports a
:class:`Reference`: the points and smoothing width σ_d of the Gaussian mixture that the exact
field uses. For the analytic mixture (8 gaussians) that mixture *is* the data distribution; for
the others it is a fixed set of reference points smoothed by a small kernel.

All data sets live in roughly [-2.5, 2.5]², so that the noise N(0, I) and the data share one view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

DEFAULT_REFERENCE = 1000
DEFAULT_BANDWIDTH = 0.08
MAX_REFERENCE = 4000
MAX_COORD = 1000.0  # user points beyond this are refused: float32 squares lose the data there


@dataclass(frozen=True)
class Reference:
    """A Gaussian mixture with equal weights and isotropic components.

    Attributes:
        points: component means x_i, shape (M, 2).
        labels: an integer label per component (for colouring), shape (M,).
        sigma: component standard deviation σ_d > 0.
    """

    points: Tensor
    labels: Tensor
    sigma: float


def _uniform(n: int, g: torch.Generator) -> Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64)


def _normal(shape, g: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float64)


class Dataset:
    """Base class: subclasses implement ``_generate``; ``n_labels`` says how many colours."""

    name = "dataset"
    n_labels = 1
    bandwidth = DEFAULT_BANDWIDTH

    def _generate(self, n: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """Return (points float64 (n, 2), labels int64 (n,))."""
        raise NotImplementedError

    def sample(
        self, n: int, generator: torch.Generator, dtype=torch.float32, device=None
    ) -> tuple[Tensor, Tensor]:
        """Draw n labelled points: (points (n, 2), labels (n,))."""
        points, labels = self._generate(n, generator)
        return points.to(dtype=dtype, device=device), labels.to(device=device)

    def reference(self, m: int = DEFAULT_REFERENCE, seed: int = 0) -> Reference:
        """The mixture the exact field uses: m data points (fixed seed) smoothed by σ_d."""
        g = torch.Generator().manual_seed(10_000 + seed)
        points, labels = self._generate(m, g)
        return Reference(points, labels, self.bandwidth)


class EightGaussians(Dataset):
    """Eight isotropic Gaussians of width 0.15 on a circle of radius 2."""

    name = "8gaussians"
    n_labels = 8
    radius, std = 2.0, 0.15

    def means(self) -> Tensor:
        angles = torch.arange(8, dtype=torch.float64) * (math.pi / 4)
        return self.radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)

    def _generate(self, n, g):
        labels = torch.randint(0, 8, (n,), generator=g)
        return self.means()[labels] + self.std * _normal((n, 2), g), labels

    def reference(self, m: int = DEFAULT_REFERENCE, seed: int = 0) -> Reference:
        # The analytic mixture itself: the exact field is exact for this data set.
        return Reference(self.means(), torch.arange(8), self.std)


class Moons(Dataset):
    """Two interleaving half circles (as scikit-learn's make_moons), centred and scaled."""

    name = "moons"
    n_labels = 2

    def _generate(self, n, g):
        labels = (_uniform(n, g) < 0.5).long()
        theta = math.pi * _uniform(n, g)
        outer = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
        inner = torch.stack([1 - torch.cos(theta), 0.5 - torch.sin(theta)], 1)
        points = torch.where(labels[:, None] == 0, outer, inner) - torch.tensor([0.5, 0.25])
        return 1.5 * points + 0.08 * _normal((n, 2), g), labels


class Circles(Dataset):
    """Two concentric circles of radius 1 and 2."""

    name = "circles"
    n_labels = 2

    def _generate(self, n, g):
        labels = (_uniform(n, g) < 0.5).long()
        theta = 2 * math.pi * _uniform(n, g)
        radius = 1.0 + labels.double()
        points = radius[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], 1)
        return points + 0.05 * _normal((n, 2), g), labels


class SwissRoll(Dataset):
    """The 2D swiss roll r = θ, θ ∈ [1.5π, 4.5π], scaled to radius 2.4; labelled by quarter."""

    name = "swissroll"
    n_labels = 4

    def _generate(self, n, g):
        u = _uniform(n, g)
        theta = 1.5 * math.pi * (1 + 2 * u)
        points = torch.stack([theta * torch.cos(theta), theta * torch.sin(theta)], 1) / 5.9
        labels = torch.clamp((u * 4).long(), max=3)
        return points + 0.04 * _normal((n, 2), g), labels


class Checkerboard(Dataset):
    """Eight unit squares of a 4x4 checkerboard on [-2, 2]²; labelled by square."""

    name = "checkerboard"
    n_labels = 8

    def _generate(self, n, g):
        x = 4 * _uniform(n, g) - 2
        column = torch.floor(x)
        row = torch.randint(0, 2, (n,), generator=g).double() * 2 - 2  # -2 or 0
        y = row + (column.long() % 2).double() + _uniform(n, g)
        labels = ((column + 2) * 2 + (row + 2) / 2).long()
        return torch.stack([x, y], 1), labels


class Spirals(Dataset):
    """Two interleaved spiral arms reaching radius 2.4."""

    name = "spirals"
    n_labels = 2

    def _generate(self, n, g):
        labels = (_uniform(n, g) < 0.5).long()
        r = torch.sqrt(_uniform(n, g)) * 3 * math.pi
        arm = torch.stack([-torch.cos(r) * r, torch.sin(r) * r], 1) / 3.9
        sign = 1 - 2 * labels.double()
        return sign[:, None] * arm + 0.05 * _normal((n, 2), g), labels


class Points(Dataset):
    """A set of points given by the caller (later: drawn by the user).

    Sampling draws reference points at random and adds N(0, σ_d²) noise, which is exactly the
    mixture the exact field uses. Data sets larger than ``MAX_REFERENCE`` are subsampled for the
    field (with a fixed seed) so its cost stays bounded.
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
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
        lab = torch.zeros(len(pts), dtype=torch.long) if labels is None else torch.as_tensor(labels)
        if lab.shape != (len(pts),):
            raise ValueError("labels must have one entry per point")
        self.points, self.labels, self.bandwidth = pts, lab.long(), float(bandwidth)
        self.n_labels = int(self.labels.max()) + 1

    def _generate(self, n, g):
        idx = torch.randint(0, len(self.points), (n,), generator=g)
        return self.points[idx] + self.bandwidth * _normal((n, 2), g), self.labels[idx]

    def reference(self, m: int = MAX_REFERENCE, seed: int = 0) -> Reference:
        points, labels = self.points, self.labels
        if len(points) > m:
            keep = torch.randperm(len(points), generator=torch.Generator().manual_seed(seed))[:m]
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


def load_points(path: str) -> np.ndarray:
    """Read user points from a .npy, .npz (first array or ``points``) or .csv/.txt file.

    Never unpickles: ``allow_pickle=False`` throughout. Returns float64 (M, 2).
    """
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as f:
            arr = f["points"] if "points" in f.files else f[f.files[0]]
    elif path.endswith(".npy"):
        arr = np.load(path, allow_pickle=False)
    else:
        arr = np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=2)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
        raise ValueError(f"{path}: expected an array of shape (M, 2), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: points contain NaN or infinite values")
    return arr

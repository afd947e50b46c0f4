"""Classes of a mixture data set, and the fields that guide generation toward one
(docs/MATH.md §12).

Every built-in data set labels its components (the 8 gaussians' modes, the two moons, …), so a
class c is a sub-mixture with weight π_c = M_c / M, and everything guidance needs is a closed form:

    p_t(x | c)    the class's own mixture on the path (its exact field: :func:`class_field`)
    p(c | x_t)    = π_c p_t(x|c) / p_t(x), the responsibilities summed per class (:func:`posterior`)
    ∇ log p(c|x_t) = s_c − s = (a / c²)(m_c − m), m and m_c the responsibility means

Classifier-free guidance mixes the unconditional and conditional fields, v_w = v + w (v_c − v)
(the same mix of x̂, ε̂ and the score: each is affine in the score at a fixed t, with weights
that sum to 1). Classifier guidance adds w ∇ log p(c|x_t) to the score, and the matching
increments to the other kinds; for the *exact* field the two are the same field (Bayes' rule),
and :class:`ClassifierGuided` is built from m and m_c alone so that the tests can see that
independently. They part where the unconditional field is learned: classifier guidance then
steers a network with the exact classifier.

Neither samples p(x|c)^w p(x)^(1−w) for w ∉ {0, 1}: the guided field at time t is the score of
the tilted p_t(x|c)^w p_t(x)^(1−w), but those tilted densities are not the marginals of one
diffusion. :func:`tilted_density` gives the target on a grid, :func:`sample_grid` draws from it,
so a run can show how far its samples land from it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.datasets import Dataset, GridBlocks, Reference
from models.density import Grid, mixture_density
from models.evaluation.metrics import sliced_w2
from models.fields import ExactField

GUIDANCE_KINDS = ("cfg", "classifier", "divergence")
WEIGHT_RANGE = (0.0, 10.0)  # w of classifier-free and classifier guidance
# λ of divergence guidance, length² (models/divergence.py): 0.01-0.1 tightens the samples
# (measured there); up to 0.2 so that its distortion shows too
LAMBDA_RANGE = (0.0, 0.2)


def class_names(dataset: Dataset) -> tuple[str, ...]:
    """A short name per class, in label order (the data set's own, else "class k")."""
    names = getattr(dataset, "class_names", None)
    if names and len(names) == dataset.n_labels:
        return tuple(names)
    return tuple(f"class {k}" for k in range(dataset.n_labels))


def class_reference(reference: Reference, label: int) -> Reference:
    """The sub-mixture of the components labelled ``label`` (Cartesian blocks kept as blocks).

    Raises ValueError if no component carries the label."""
    keep = reference.labels == label
    if not bool(keep.any()):
        raise ValueError(f"the data set has no class {label} (its classes are "
                         f"0..{int(reference.labels.max())})")  # fmt: skip
    grid = reference.grid
    if grid is not None:  # one label per block: keep the blocks of this class
        per_block = len(reference.points) // len(grid.blocks)
        block_keep = keep[::per_block]
        grid = GridBlocks(grid.xs, grid.ys, grid.blocks[block_keep])
    return Reference(reference.points[keep], reference.labels[keep], reference.sigma, grid)


def class_weights(reference: Reference, n_classes: int) -> Tensor:
    """π_c = M_c / M for c = 0..n_classes−1, (K,) float64."""
    counts = torch.bincount(reference.labels, minlength=n_classes)[:n_classes]
    return counts.double() / len(reference.labels)


def class_field(exact: ExactField, label: int) -> ExactField:
    """The exact field of class ``label``'s own mixture, on the same path."""
    return ExactField(exact.path, class_reference(exact.reference, label))


def posterior(exact: ExactField, x: Tensor, t: float, n_classes: int) -> Tensor:
    """p(c | x_t) for every class, (N, K) in the dtype of x, rows summing to 1: Bayes' rule on
    the class mixtures, log π_c + log p_t(x|c) normalised (in the log domain: far from the data
    every density underflows, the ratios do not)."""
    weights = class_weights(exact.reference, n_classes)
    logs = []
    for c in range(n_classes):
        if weights[c] == 0:
            logs.append(torch.full((len(x),), -math.inf, dtype=x.dtype, device=x.device))
            continue
        sub = ExactField(exact.path, class_reference(exact.reference, c))
        logs.append(sub.log_density(x, t) + math.log(float(weights[c])))
    return torch.softmax(torch.stack(logs, 1), 1)


class GuidedField:
    """Classifier-free guidance: each kind as u + w (u_c − u), u the unconditional field.

    Args:
        base: the unconditional field (exact or learned; ``field(x, t, want) -> dict``).
        conditional: the field of the class (the class's exact mixture, or the network's
            class branch).
        weight: w ≥ 0 (0: the unconditional field, 1: the conditional one).
        label: the class, for the record.
    """

    def __init__(self, base, conditional, weight: float, label: int):
        self.base, self.conditional = base, conditional
        self.weight, self.label = float(weight), int(label)
        self.path = base.path

    def __getattr__(self, name):  # reference, nearest_label, work_per_point: the base's
        if name in ("base", "conditional"):
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def work_per_point(self) -> float:
        return 2 * getattr(self.base, "work_per_point", 0)

    def __call__(self, x: Tensor, t, want=("velocity",)) -> dict[str, Tensor]:
        plain = self.base(x, t, want)
        if self.weight == 0:
            return plain
        cond = self.conditional(x, t, want)
        if self.weight == 1:
            return cond
        return {k: plain[k] + self.weight * (cond[k] - plain[k]) for k in want}


class ClassifierGuided:
    """Classifier guidance: the base field's score plus w ∇ log p(c | x_t), the classifier
    being the exact one of the data's mixture, and the matching increments of the other kinds.

    With d = m_c − m (responsibility means of the class and of all components):

        Δs = w (a/c²) d,   Δε̂ = −b Δs,   Δx̂ = w (b²/c²) d,   Δv = w ((ȧ b² − a b ḃ)/c²) d

    all finite at both ends of the path (docs/MATH.md §12).

    Args:
        base: the field to steer (exact or learned).
        exact: the data's exact field (the classifier's mixture).
        weight: w ≥ 0; label: the class c.
    """

    def __init__(self, base, exact: ExactField, weight: float, label: int):
        self.base, self.exact = base, exact
        self.weight, self.label = float(weight), int(label)
        self.path = base.path
        self.cls = class_field(exact, label)

    def __getattr__(self, name):
        if name in ("base", "exact", "cls"):
            raise AttributeError(name)
        return getattr(self.base, name)

    @property
    def work_per_point(self) -> float:
        return getattr(self.base, "work_per_point", 0) + self.exact.work_per_point

    def increments(self, x: Tensor, t) -> dict[str, Tensor]:
        """Δ of every kind, each (N, 2)."""
        k = self.exact.scalars(t)
        a, b, c2 = k["a"], k["b"], k["c2"]
        d = self.cls.responsibility_mean(x, t) - self.exact.responsibility_mean(x, t)
        w = self.weight
        score = (w * a / c2) * d
        return {"score": score, "eps": -b * score, "x0": (w * b * b / c2) * d,
                "velocity": (w * (k["da"] * b * b - a * k["b_db"]) / c2) * d}  # fmt: skip

    def __call__(self, x: Tensor, t, want=("velocity",)) -> dict[str, Tensor]:
        plain = self.base(x, t, want)
        if self.weight == 0:
            return plain
        delta = self.increments(x, t)
        return {kind: plain[kind] + delta[kind].to(plain[kind].dtype) for kind in want}


def tilted_density(
    reference: Reference, path, times: Tensor, grid: Grid, label: int, weight: float
) -> Tensor:
    """p_{w,t}(x) ∝ p_t(x|c)^w p_t(x)^(1−w), normalised on the grid, (F, H, W) float32: the
    density whose score the guided field is at each time (and at t = 0 the target people
    expect guidance to sample).

    Written p_t (p(c|x_t) / π_c)^w, with p(c|x_t) = π_c p_t(x|c) / p_t(x) ∈ [0, 1]: no
    negative power of a density that underflows. Cells where p_t underflows get 0.
    """
    full = mixture_density(reference, path, times, grid).double()
    sub = class_reference(reference, label)
    pi = len(sub.points) / len(reference.points)
    cond = mixture_density(sub, path, times, grid).double() * pi
    ratio = torch.where(full > 0, (cond / full.clamp_min(1e-300)).clamp(0, 1), 0.0)
    tilted = full * (ratio / pi) ** float(weight)
    dx, dy = grid.cell
    mass = tilted.sum((1, 2), keepdim=True) * (dx * dy)
    return torch.where(mass > 0, tilted / mass.clamp_min(1e-300), 0.0).float()


def posterior_frames(reference: Reference, path, times: Tensor, grid: Grid, label: int) -> Tensor:
    """p(c | x_t) of class ``label`` at the grid's cell centres for each time, (F, H, W) float32
    in [0, 1]: the map of where a point at time t comes from.

    The isotropic Gaussian factorises over the axes, so each class's sum over its components is
    one (H, M_c) @ (M_c, W) product of per-axis factors, computed in float64 with each axis's
    largest logit taken out (π_c p_t(x|c) / p_t(x) = S_c / Σ S: the shifts cancel). Cells where
    every factorised sum underflows (the best component per axis is not the best jointly, at
    small c) are summed point by point (:func:`posterior`).
    """
    pts, labels = reference.points.double(), reference.labels
    keep, n_classes = labels == label, int(labels.max()) + 1
    xs, ys = grid.centres()
    exact = ExactField(path, reference, dtype=torch.float64)
    out = []
    for t in times.tolist():
        k = exact.scalars(t)
        factors = []
        for u, axis in ((xs, 0), (ys, 1)):
            logit = (u[:, None] - k["a"] * pts[:, axis]) ** 2 / (-2 * k["c2"])  # (n, M)
            factors.append(torch.exp(logit - logit.amax(1, keepdim=True)))
        fx, fy = factors
        total = fy @ fx.T  # (H, W)
        frame = (fy[:, keep] @ fx[:, keep].T) / total.clamp_min(1e-300)
        lost = ~(total > 1e-250)  # underflowed (or NaN): point by point, in the log domain
        if lost.any():
            cells = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)[lost]
            frame[lost] = posterior(exact, cells, t, n_classes)[:, label]
        out.append(frame.clamp(0, 1).float())
    return torch.stack(out)


def sample_grid(density: Tensor, grid: Grid, n: int, generator: torch.Generator) -> Tensor:
    """n points drawn from a density on the grid (H, W): a cell by its mass, then uniformly
    within it, (n, 2) float32."""
    probs = density.reshape(-1).double().clamp_min(0)
    cells = torch.multinomial(probs / probs.sum(), n, replacement=True, generator=generator)
    (x0, x1, y0, y1), (ny, nx) = grid.extent, grid.shape
    jitter = torch.rand((n, 2), generator=generator, dtype=torch.float64)
    col, row = cells % nx, cells // nx
    x = x0 + (col + jitter[:, 0]) * (x1 - x0) / nx
    y = y0 + (row + jitter[:, 1]) * (y1 - y0) / ny
    return torch.stack([x, y], 1).float()


TARGET_CELLS = 400  # the target's sampling grid, per axis over the data's box: cells ≈ σ_d / 4


def target_grid(reference: Reference) -> Grid:
    """A fine grid over the data's components ± 6 σ_d (where every p_w has its mass)."""
    pts, margin = reference.points, 6 * reference.sigma
    lo, hi = pts.min(0).values - margin, pts.max(0).values + margin
    extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    return Grid(extent, (TARGET_CELLS, TARGET_CELLS))


def target_samples(reference: Reference, path, label: int, weight: float, n: int, seed: int = 7):
    """n samples of the tilted target at t = 0 (p(x|c)^w p(x)^(1−w) normalised), (n, 2)."""
    grid = target_grid(reference)
    frame = tilted_density(reference, path, torch.zeros(1, dtype=torch.float64), grid,
                           label, weight)[0]  # fmt: skip
    return sample_grid(frame, grid, n, torch.Generator().manual_seed(seed))


def target_gap(samples: Tensor, reference: Reference, path, label: int, weight: float,
               group: int = 1000, groups: int = 4, seed: int = 7) -> float:  # fmt: skip
    """SW2 of the samples (n, 2) to the tilted target over its noise floor: 1 means "as close
    as another sample of p_w". Up to ``groups`` groups of ``group`` samples are each compared
    with their own draw of the target, the floor with as many pairs of draws (one group's
    ratio swings by ±50 % with the sample drawn)."""
    parts = samples.float().split(group)[:groups]
    parts = [p for p in parts if len(p) == len(parts[0])]  # equal sizes: one floor fits all
    n, grid = len(parts[0]), target_grid(reference)
    frame = tilted_density(reference, path, torch.zeros(1, dtype=torch.float64), grid,
                           label, weight)[0]  # fmt: skip
    gen = torch.Generator().manual_seed(seed)
    draw = lambda: sample_grid(frame, grid, n, gen)  # noqa: E731
    gap = sum(sliced_w2(p, draw(), generator=gen) for p in parts) / len(parts)
    floor = sum(sliced_w2(draw(), draw(), generator=gen) for _ in parts) / len(parts)
    return gap / floor


def class_share(exact: ExactField, samples: Tensor, label: int, n_classes: int) -> float:
    """The share of samples (n, 2) whose most probable class at t = 0 is ``label``."""
    if len(samples) == 0:
        return 0.0
    post = posterior(exact, samples.double(), 0.0, n_classes)
    return float((post.argmax(1) == label).double().mean())

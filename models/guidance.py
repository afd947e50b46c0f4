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
diffusion. ``models/class_maps.py`` gives that target and p(c | x_t) on a grid.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.datasets import Dataset, GridBlocks, Reference
from models.fields import ExactField

GUIDANCE_KINDS = ("cfg", "classifier", "divergence")
WEIGHT_RANGE = (0.0, 10.0)  # w of classifier-free and classifier guidance
# λ of divergence guidance, length² (models/divergence.py): 0.01-0.1 tightens the samples
# (measured there); up to 0.2 so that its distortion shows too
LAMBDA_RANGE = (0.0, 0.2)


def class_names(dataset: Dataset) -> tuple[str, ...]:
    """A short name per label 0..n_labels − 1 (the data set's own, else "class k")."""
    names = getattr(dataset, "class_names", None)
    if names and len(names) == dataset.n_labels:
        return tuple(names)
    return tuple(f"class {k}" for k in range(dataset.n_labels))


def class_reference(reference: Reference, label: int) -> Reference:
    """The sub-mixture of the components labelled ``label`` (Cartesian blocks kept as blocks).

    Raises ValueError if no component carries the label."""
    keep = reference.labels == label
    if not bool(keep.any()):
        present = ", ".join(str(k) for k in sorted(set(reference.labels.tolist())))
        raise ValueError(f"the data set has no class {label} (its classes: {present})")
    grid = reference.grid
    if grid is not None:  # one label per block: keep the blocks of this class
        per_block = len(reference.points) // len(grid.blocks)
        block_keep = keep[::per_block]
        grid = GridBlocks(grid.xs, grid.ys, grid.blocks[block_keep])
    return Reference(reference.points[keep], reference.labels[keep], reference.sigma, grid)


def present_classes(reference: Reference) -> list[int]:
    """The labels that have components, ascending (user points may skip some)."""
    return sorted(set(reference.labels.tolist()))


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


def class_share(exact: ExactField, samples: Tensor, label: int, n_classes: int) -> float:
    """The share of samples (n, 2) whose most probable class at t = 0 is ``label``."""
    if len(samples) == 0:
        return 0.0
    post = posterior(exact, samples.double(), 0.0, n_classes)
    return float((post.argmax(1) == label).double().mean())

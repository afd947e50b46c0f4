"""How well a class-conditional field keeps to its class: the share of samples that land in it.

The truth is independent of the network: a generated point x belongs to the class of the data
set's mixture component most responsible for it at t = 0 (``ExactField.nearest_label``), which
is the label the data sampler gave the point's component.
"""

from __future__ import annotations

from models.datasets import Dataset
from models.evaluation.quality import generate
from models.fields import ExactField
from models.learned.network import LearnedField


def class_shares(
    field: LearnedField,
    data: Dataset,
    n_per_class: int = 2000,
    steps: int = 100,
    solver: str = "heun",
    seed: int = 0,
) -> list[float]:
    """Per class c, the share of ``n_per_class`` reverse-ODE samples of ``field.with_label(c)``
    (from t = 1 to 0, ``steps`` steps of ``solver``) whose nearest exact component at t = 0 has
    label c; a list of ``field.n_classes`` floats. Each class starts from its own noise
    (seed + c), so no class is judged on the other's luck.
    """
    if field.n_classes == 0:
        raise ValueError("class shares need a class-conditional network")
    exact = ExactField(field.path, data.reference())
    shares = []
    for c in range(field.n_classes):
        x = generate(field.with_label(c), field.path, n_per_class, steps, seed + c, solver)
        hit = exact.nearest_label(x.float(), 0.0).cpu() == c
        shares.append(float(hit.double().mean()))
    return shares


def class_share(field: LearnedField, data: Dataset, **kwargs) -> float:
    """The mean over classes of :func:`class_shares` (chance: about 1 / n_classes)."""
    shares = class_shares(field, data, **kwargs)
    return sum(shares) / len(shares)

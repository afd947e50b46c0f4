"""Which field moves the particles: exact, learned (pretrained or trained here), exact of M points.

GUI-free, like ``state.py``. :func:`resolve` turns the state's ``field`` choice into the
:class:`models.run.result.FieldSource` that :func:`models.run.simulate.simulate` moves the
particles with (the field's maker and what it is), and a one-line note when the choice cannot
be honoured for these settings, in which case the run uses the exact field (the rule, also in
the ``field`` parameter's doc):

- *pretrained*: the shipped weights of the data set and process. Only built-in data sets have
  them, and VP weights exist for the schedule they were trained on (linear, β 0.1..20):
  ``models.learned.checkpoint.check_matches`` refuses any other, and the run falls back to exact.
- *trained here*: the weights of this session's Train panel, for the process, schedule and data
  set they were trained on; before any training, or after those changed, exact.
- *exact of M points*: the exact field of the M training points (``train_size``), the same set a
  network trained here with that M sees (drawn with ``TRAIN_SEED``); with M = 0 (fresh samples)
  there is no such set, and the run uses the exact field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.datasets import Dataset, Reference
from models.evaluation.memorization import training_points
from models.fields import ExactField
from models.learned.checkpoint import CheckpointError, check_matches, load, pretrained_path
from models.learned.network import Architecture, FieldMLP, LearnedField
from models.run.result import FieldSource, weights_digest

FIELDS = {
    "exact": "exact",
    "learned (pretrained)": "pretrained",
    "learned (trained here)": "trained",
    "exact of the M training points": "exact_m",
}
TRAIN_SEED = 0  # the training set of M points and the network's initial weights
# The exact field of M points is the empirical distribution's: components of (almost) zero width,
# so reverse runs land on the points themselves (a width of 0 would divide by zero at t = 0).
EMPIRICAL_SIGMA = 1e-3


@dataclass(frozen=True)
class TrainedModel:
    """Weights trained in this session (a CPU snapshot of the EMA network, never trained further).

    Attributes:
        net, arch: the network and its architecture (process, schedule, predicted kind).
        dataset: the data set name it was trained on (``points`` for the user's).
        points: the user's points (M, 2) it was trained on, or None for a built-in set.
        train_size: M, or None for fresh samples every step.
        steps: optimiser steps done.
        ot: trained with minibatch optimal-transport pairing.
        source: the data set its flow starts from at t = 1, or None for N(0, I).
        labels: the classes of the user's points (M,) it was trained on, or None (one class,
            or a built-in set).
    """

    net: FieldMLP
    arch: Architecture
    dataset: str
    points: np.ndarray | None
    train_size: int | None
    steps: int
    ot: bool = False
    source: str | None = None
    labels: np.ndarray | None = None

    @property
    def n_classes(self) -> int:
        """Classes of a class-conditional network (trained with "class-conditional"), else 0."""
        return self.arch.n_classes


def _learned(net, arch: Architecture):
    def make_field(path, exact):  # a fresh wrapper per run: the labeler is per run
        return LearnedField(net, arch.path(), arch.predicts, arch.t_min, labeler=exact)

    return make_field


PRETRAINED_PROCESSES = ("fm", "vp")  # assets/weights/<data set>-<process>.safetensors


def wants_classes(state) -> bool:
    """Whether the run takes a network's class branch: classifier-free or divergence guidance
    toward a class (classifier guidance steers the unconditional network with the exact
    classifier)."""
    return state.guided and state.guidance_kind in ("cfg", "divergence") and \
        state.guidance_class >= 0  # fmt: skip


def _pretrained(state, cache: dict):
    if state.dataset == "points":
        raise CheckpointError("no pretrained model for your own points (train one here)")
    conditional = wants_classes(state)
    name = pretrained_path(state.dataset, state.process, conditional)
    if state.process not in PRETRAINED_PROCESSES:  # said plainly, not as a missing file path
        raise CheckpointError(f"no pretrained weights ship for the {state.process} process "
                              "(only for fm, and vp with the linear schedule)")  # fmt: skip
    if conditional and state.process != "fm":
        raise CheckpointError("class-conditional weights ship for flow matching only: to guide "
                              "a network toward a class choose flow matching, or use "
                              "classifier guidance")  # fmt: skip
    if name not in cache:
        field, arch, manifest = load(name)  # refused with one line if missing or bad
        cache[name] = (arch, manifest, field.net, weights_digest(field.net.parameters()))
    arch, manifest, net, digest = cache[name]
    check_matches(arch, state.process, state.schedule, state.beta_min, state.beta_max,
                  f"the pretrained {state.dataset} {state.process.upper()} weights")  # fmt: skip
    return FieldSource("pretrained", weights=name.split("/")[-1], weights_hash=digest,
                       trained_steps=manifest.get("steps_done"),
                       make=_learned(net, arch))  # fmt: skip


_CONDITIONAL_CACHE: dict = {}  # read once per process: shipped files do not change while serving


def conditional_pretrained(dataset: str, process: str, cache: dict | None = None):
    """(net, arch) of the shipped class-conditional weights of a built-in data set and process
    (``<dataset>-<process>-cond.safetensors``), or None where none ship or the file is unusable.

    Read once and kept in ``cache`` (by default one shared by the process: the network is
    frozen and evaluated without gradients, so sessions can share it; a session that moves
    fields to another device should pass its own, as ``_pretrained``'s per-session cache).
    """
    cache = _CONDITIONAL_CACHE if cache is None else cache
    if dataset == "points" or process not in PRETRAINED_PROCESSES:
        return None
    name = pretrained_path(dataset, process, conditional=True)
    if name not in cache:
        try:
            field, arch, _ = load(name)
        except CheckpointError:  # missing or bad: no conditional model (asked again next time)
            return None
        cache[name] = (field.net, arch) if arch.n_classes else None
    return cache[name]


def _trained(state):
    model = state.trained
    if model is None:
        raise ValueError("no weights trained in this session yet: start one in the Train panel")
    check_matches(model.arch, state.process, state.schedule, state.beta_min, state.beta_max,
                  "the weights trained here")  # fmt: skip
    source = state.data_source
    if model.source != source:
        raise ValueError(f"the weights trained here flow from {model.source or 'N(0, I)'}, not "
                         f"from {source or 'N(0, I)'}: train again")  # fmt: skip
    labels = state.user_labels()
    same_labels = not model.n_classes or (
        (model.labels is None) == (labels is None)
        and (labels is None or np.array_equal(model.labels, labels))
    )  # a class-conditional net's
    same_points = state.dataset != "points" or (
        model.points is not None and state.points is not None
        and np.array_equal(model.points, state.points) and same_labels)  # fmt: skip
    if model.dataset != state.dataset or not same_points:
        raise ValueError(f"the weights trained here are for the data set {model.dataset}, "
                         "not the current one: train again")  # fmt: skip
    if wants_classes(state) and model.n_classes <= state.guidance_class:
        raise ValueError("the weights trained here have no branch for this class: tick "
                         "'class-conditional' and train again (classifier guidance steers "
                         "them as they are)")  # fmt: skip
    return FieldSource("trained", weights_hash=weights_digest(model.net.parameters()),
                       trained_steps=model.steps, train_size=model.train_size, ot=model.ot,
                       make=_learned(model.net, model.arch))  # fmt: skip


def _exact_m(state, data: Dataset, device: str):
    m = state.train_size
    if m < 2:
        raise ValueError("the exact field of M points needs M ≥ 2 training points: set M in "
                         "the Train panel")  # fmt: skip
    points, labels = training_points(data, m, TRAIN_SEED)
    reference = Reference(points.double(), labels, EMPIRICAL_SIGMA)

    def make_field(path, exact):
        return ExactField(path, reference, device=device)

    return FieldSource("exact_m", train_size=m, make=make_field)


def resolve(state, data: Dataset, cache: dict) -> tuple[FieldSource, str]:
    """(what moves the particles, note or "") for ``state.field``."""
    choice = state.field
    source = state.data_source
    if choice in ("pretrained", "exact_m") and source is not None:
        return FieldSource("exact", asked=choice), (
            "the pretrained weights and the field of M points flow from N(0, I), not from a "
            "data set; showing the exact field from the source.")  # fmt: skip
    try:
        if choice == "pretrained":
            return _pretrained(state, cache), ""
        if choice == "trained":
            return _trained(state), ""
        if choice == "exact_m":
            return _exact_m(state, data, state.device), ""
    except ValueError as exc:  # CheckpointError is one: a bad or mismatched weights file
        text = str(exc).strip().splitlines()[0]
        return FieldSource("exact", asked=choice), f"{text}; showing the exact field."
    return FieldSource(), ""

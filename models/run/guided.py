"""A guided run: the field its settings ask for, the target it is measured against, its readouts.

:func:`guided_field` wraps the run's field (exact or learned) in the guidance
``RunConfig.guidance_kind`` names (``models/guidance.py``, ``models/divergence.py``);
:func:`target_frames` is the density shown as the run's "exact" frames (the tilted target
p_{w,t}, whose score the guided field is); :func:`with_guidance` adds the readouts to a finished
run: the share of samples in the class and their SW2 to the tilted target over its noise floor.
"""

from __future__ import annotations

import torch

from models import class_maps, guidance
from models.fields import ExactField
from models.run.config import RunConfig
from models.run.result import RunResult


def check_class(label: int | None, labels, dataset: str) -> None:
    """ValueError unless ``label`` (None: no class) is one the mixture of ``dataset`` has
    (``labels``: its components' labels, (M,))."""
    if label is None:
        return
    present = sorted(set(torch.as_tensor(labels).tolist()))
    if label not in present:
        names = ", ".join(str(k) for k in present) if len(present) < 12 else \
            f"{present[0]}..{present[-1]}"  # fmt: skip
        raise ValueError(f"the {dataset} data set has no class {label} (its classes: "
                         f"{names})")  # fmt: skip


def _conditional(field, exact, label: int, learned: bool):
    """The class's branch of ``field``: the network's, or the class's exact mixture."""
    if not learned:
        return guidance.class_field(exact, label)
    if getattr(field, "n_classes", 0) <= 0:
        raise ValueError("this network is unconditional: guiding it toward a class takes a "
                         "class-conditional one (train with --conditional), or use classifier "
                         "guidance, which steers it with the exact classifier")  # fmt: skip
    return field.with_label(label)


def guided_field(config: RunConfig, field, exact, generator: torch.Generator | None = None):
    """The field that moves a guided run's particles (``field`` itself for an unguided run).

    Args:
        field: the run's field (exact, or learned: then ``field is not exact``).
        exact: the data's exact field (the classifier, the class mixtures).
        generator: the Hutchinson probes' random numbers.
    """
    if not config.guided:
        return field
    if isinstance(field, ExactField):  # a mixture of its own (the M training points'): its
        exact = field  # classes and classifier are its own, closed forms like the data's
    learned, label, weight = field is not exact, config.guidance_class, config.guidance
    if learned and getattr(field, "n_classes", 0) > 0:
        field = field.with_label(None)  # the unconditional branch
    kind = config.guidance_kind
    if kind == "cfg":
        return guidance.GuidedField(field, _conditional(field, exact, label, learned), weight,
                                    label)  # fmt: skip
    if kind == "classifier":
        return guidance.ClassifierGuided(field, exact, weight, label)
    from models.divergence import DivergenceGuidedField

    base = field if label is None else _conditional(field, exact, label, learned)
    return DivergenceGuidedField(base, weight, hutchinson=config.hutchinson, generator=generator)


def describe(config: RunConfig) -> str:
    """The guidance of a run in a few words ("" for an unguided run): the captions' and the
    readouts' ("CFG w=3 toward class 2", "divergence guidance λ=0.03 (Hutchinson)")."""
    if not config.guided:
        return ""
    toward = "" if config.guidance_class is None else f" toward class {config.guidance_class}"
    if config.guidance_kind == "divergence":
        how = "Hutchinson" if config.hutchinson else "exact"
        return f"divergence guidance λ={config.guidance:g} ({how}){toward}"
    name = "CFG" if config.guidance_kind == "cfg" else "classifier guidance"
    return f"{name} w={config.guidance:g}{toward}"


def target_weight(config: RunConfig) -> float | None:
    """The w of the tilted target a guided run is shown against: w for cfg and classifier, 1
    (the class's own density) for divergence guidance toward a class; None: the data's p_t."""
    if config.guidance_class is None:
        return None
    return 1.0 if config.guidance_kind == "divergence" else float(config.guidance)


def target_frames(config: RunConfig, reference, path, times: torch.Tensor) -> torch.Tensor:
    """The tilted target p_{w,t} on the run's grid at each time, (T+1, H, W) float32."""
    return class_maps.tilted_density(reference, path, times, config.grid, config.guidance_class,
                                   target_weight(config))  # fmt: skip


READOUT_POINTS = 4000  # samples compared with the target, in groups of 1000 (target_gap)


def with_guidance(result: RunResult, poll=None) -> RunResult:
    """A guided reverse run with ``guidance_share`` (its samples' share in the class, by the
    exact classifier at t = 0) and ``guidance_gap`` (their SW2 to the tilted target over the
    target's own noise floor); the run itself otherwise or if it has them."""
    config = result.config
    if config.guidance_class is None or result.guidance_share is not None:
        return result
    from models.run.simulate import build

    path, data, exact = build(config, result.dataset)
    samples = torch.from_numpy(result.trajectories[-1][:READOUT_POINTS])
    share = guidance.class_share(exact, samples, config.guidance_class, data.n_labels)
    if poll is not None:
        poll()
    gap = class_maps.target_gap(samples, exact.reference, path, config.guidance_class,
                              target_weight(config))  # fmt: skip
    return result.with_(guidance_share=share, guidance_gap=gap)


def posterior_class(config: RunConfig, reference) -> int:
    """The class whose p(c | x_t) a run's map shows: the one it is guided toward, else the
    first its mixture (``reference``) has."""
    if config.guidance_class is not None:
        return config.guidance_class
    return guidance.present_classes(reference)[0]


def with_posterior_map(result: RunResult) -> RunResult:
    """The run with ``posterior_map``, p(c | x_t) of :func:`posterior_class` on its grid at
    each of its times (T+1, H, W); the run itself if it has it. ValueError for a run from a
    data set as the source (no Gaussian noise end, no classes of one mixture)."""
    config = result.config
    if result.posterior_map is not None:
        return result
    if config.source != "gaussian":
        raise ValueError("the class map is for runs from Gaussian noise")
    from models.run.simulate import build

    path, _, exact = build(config, result.dataset)
    label = posterior_class(config, exact.reference)
    check_class(label, exact.reference.labels, config.dataset)
    times = torch.from_numpy(result.times.astype("float64"))
    frames = class_maps.posterior_frames(exact.reference, path, times, config.grid, label)
    return result.with_(posterior_map=frames.numpy(), posterior_class=label)

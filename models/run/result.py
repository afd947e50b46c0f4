"""One finished run as one immutable value: its settings, what moved its particles, its arrays.

A :class:`RunResult` is never changed after :func:`models.run.simulate.simulate` makes it.
Something added later (the exact density asked for after the run, a note, the memorization
readout) makes a new value with :meth:`RunResult.with_`, sharing the arrays it does not
replace; :meth:`RunResult.same_particles` tells a view that only the extras changed. The
settings become JSON only where a file is written (:attr:`RunResult.meta`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from models.density import histogram_density
from models.run.config import RunConfig

LEARNED_KINDS = ("pretrained", "trained", "learned")


@dataclass(frozen=True)
class FieldSource:
    """What moved the particles.

    Attributes:
        kind: ``exact`` (the data set's closed form), ``pretrained`` (shipped weights),
            ``trained`` (weights trained in this session), ``learned`` (a weights file named on
            the command line) or ``exact_m`` (the exact field of the M training points).
        asked: the field the user asked for when the run fell back to the exact one.
        weights: the weights file's name; weights_hash: a digest of the weights themselves.
        trained_steps: optimiser steps of the weights; train_size: M of their training set
            (None: fresh samples every step); ot: trained with minibatch OT pairing.
        details: more to record in the run's metadata (a learned field's architecture).
        make: ``(path, exact_field) -> field`` building the field for this run's path, or None
            for the exact field (not part of the value's identity or its metadata).
    """

    kind: str = "exact"
    asked: str | None = None
    weights: str | None = None
    weights_hash: str | None = None
    trained_steps: int | None = None
    train_size: int | None = None
    ot: bool | None = None
    details: dict = field(default_factory=dict, compare=False)
    make: Callable | None = field(default=None, compare=False, repr=False)

    @property
    def learned(self) -> bool:
        """Whether a network moved the particles."""
        return self.kind in LEARNED_KINDS

    def to_dict(self) -> dict:
        """The metadata entries: ``field`` and whichever of the others are known."""
        out = {"field": self.kind, "field_asked": self.asked, "weights": self.weights,
               "weights_hash": self.weights_hash, "trained_steps": self.trained_steps,
               "train_size": self.train_size, "ot": self.ot}  # fmt: skip
        return {k: v for k, v in out.items() if v is not None} | self.details


def weights_digest(tensors) -> str:
    """A short digest (16 hex digits) of a network's weights, in the order given."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Memorization:
    """How many generated samples landed on a training point (docs/MATH.md §7).

    share: the fraction within ``delta`` of one of the ``m`` training points.
    """

    share: float
    delta: float
    m: int

    def to_dict(self) -> dict:
        return {"memorized": round(self.share, 4), "memorization_delta": round(self.delta, 5),
                "memorization_m": self.m}  # fmt: skip


@dataclass(frozen=True)
class RunResult:
    """The arrays of one run (numpy, on the CPU), with what made them.

    Attributes:
        trajectories: positions (T+1, N, 2) float32, index 0 where the run starts.
        times: t of each frame, (T+1,) float64.
        labels: colour label of each particle (its mixture component / data cluster), (N,) int.
        exact_density: exact p_t on the run's grid, (T+1, H, W) float32, or None.
        extent: (xmin, xmax, ymin, ymax).
        n_labels: number of distinct labels.
        config: the settings.
        source: what moved the particles.
        dataset: the user's data set the run started from, or None for a built-in one (its
            name is in ``config``); with ``source`` it rebuilds the run's field later.
        pde_density: the PDE solution on the same grid, (T+1, H, W) float32, or None.
        pde_mass: its mass inside the box, (T+1,); pde_outflow: mass gone through the edges.
        log_density: log p_t carried along each particle (ODE runs), (T+1, N) float32, or None.
        memorization: the readout of a generating run with M ≥ 2 training points, or None.
        nfe: the field evaluations (model calls) that moved the particles, counted (0 for the
            closed forms); solver_stats: the adaptive solver's accepted / rejected steps.
        reference: the same start points carried by the ODE to a tight tolerance, (T+1, N, 2)
            float32, or None (``models/run/reference.py``); reference_errors: the particles'
            mean distance from it per frame, (T+1,); sw2_ratio: the end samples' sliced W2 to
            fresh data over the noise floor (reverse runs).
        guidance_share: a guided run's samples in its class (the exact classifier at t = 0);
            guidance_gap: their SW2 to the tilted target over its noise floor
            (``models/run/guided.py``).
        posterior_map: p(c | x_t) of class ``posterior_class`` on the run's grid,
            (T+1, H, W) float32 in [0, 1], or None (made on request: ``with_posterior_map``).
        warnings: one-line remarks on a valid run the user should know of (user points far
            outside the view, whose density frames are then empty).
        density: the particles' histogram on the run's grid, (T+1, H, W) float32: made on first
            use (the app's page makes its own from the positions it has).
    """

    trajectories: np.ndarray
    times: np.ndarray
    labels: np.ndarray
    exact_density: np.ndarray | None
    extent: tuple[float, float, float, float]
    n_labels: int
    config: RunConfig
    source: FieldSource = FieldSource()
    dataset: object | None = field(default=None, compare=False, repr=False)
    pde_density: np.ndarray | None = None
    pde_mass: np.ndarray | None = None
    pde_outflow: np.ndarray | None = None
    log_density: np.ndarray | None = None
    memorization: Memorization | None = None
    warnings: tuple[str, ...] = ()
    nfe: float = 0
    solver_stats: dict | None = None
    reference: np.ndarray | None = None
    reference_errors: np.ndarray | None = None
    sw2_ratio: float | None = None
    guidance_share: float | None = None
    guidance_gap: float | None = None
    posterior_map: np.ndarray | None = None
    posterior_class: int | None = None
    # a cache, not part of the value: made on first use (set through object.__setattr__, the
    # value being frozen), carried over by with_() while the particles stay
    _density: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def density(self) -> np.ndarray:
        """The particles' density (T+1, H, W) float32, made on first use (finite: the
        positions are)."""
        if self._density is None:
            frames, config = torch.from_numpy(self.trajectories), self.config
            made = histogram_density(frames, config.grid, config.bandwidth).numpy()
            object.__setattr__(self, "_density", made)
        return self._density

    @property
    def meta(self) -> str:
        """Every setting, what moved the particles and the memorization readout, as JSON
        (the npz ``meta`` entry; ``solver`` is what ran, ``solver_requested`` what was asked)."""
        d = self.config.to_dict() | self.source.to_dict() | {"nfe": self.nfe}
        if self.solver_stats:
            d["solver_steps"] = {k: v for k, v in self.solver_stats.items() if k != "nfe"}
        if self.reference_errors is not None:
            d["reference_endpoint_error"] = float(self.reference_errors[-1])
        if self.sw2_ratio is not None:
            d["sw2_ratio"] = round(float(self.sw2_ratio), 4)
        if self.memorization is not None:
            d |= self.memorization.to_dict()
        if self.posterior_class is not None:
            d["posterior_class"] = self.posterior_class
        if self.guidance_share is not None:
            d["guidance_share"] = round(float(self.guidance_share), 4)
            d["guidance_gap"] = None if self.guidance_gap is None else \
                round(float(self.guidance_gap), 4)  # fmt: skip
        return json.dumps(d, sort_keys=True)

    def with_(self, **changes) -> RunResult:
        """A new value with ``changes``; the arrays not replaced are shared, not copied."""
        new = dataclasses.replace(self, **changes)
        if self._density is not None and "trajectories" not in changes:
            object.__setattr__(new, "_density", self._density)
        return new

    def same_particles(self, other: RunResult | None) -> bool:
        """Whether ``other`` shows the very same particles (one is the other plus extras)."""
        return other is not None and other.trajectories is self.trajectories

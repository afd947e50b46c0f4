"""Two runs on the same noise, their frames matched by t, and what tells them apart
(docs/MATH.md §11).

:func:`simulate_pair` runs A as it would run alone and B on A's start and, where both draw
step noise, A's Brownian path (``models/compare/noise.py``), so that B differs from A only in
the settings it changes. The result is one immutable :class:`RunPair`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from models.accel.parallel import PartStops, in_parallel, worth_a_thread
from models.compare.noise import SAME_TIME, shared_noise, shares_start
from models.datasets import make_dataset
from models.run.config import RunConfig
from models.run.result import FieldSource, RunResult
from models.run.simulate import build, path_of, run_times, simulate
from models.samplers import Cancelled

SW2_DIRECTIONS, SW2_POINTS = 64, 1000  # the per-frame SW2 between A and B (see pair_sw2)


@dataclass(frozen=True)
class Side:
    """One run of a comparison: its settings, the user's data set (None: the built-in one
    ``config`` names) and what moves its particles (None: the exact field)."""

    config: RunConfig
    dataset: object | None = None
    source: FieldSource | None = None


@dataclass(frozen=True)
class FrameMatch:
    """One timeline for two runs: at step f of the player, A shows its frame ``a[f]`` and B
    its frame ``b[f]``, matched by t (not by index).

    times: t of each step of the timeline, (F,) (see :func:`match_frames`).
    a, b: the frame each run shows, (F,) int.
    """

    times: np.ndarray
    a: np.ndarray
    b: np.ndarray


def match_frames(times_a: np.ndarray, times_b: np.ndarray) -> FrameMatch:
    """One timeline for two runs: the times of the run with more frames (A on a tie), with
    the other run's times before its start and after its end added, in the order the runs
    go. At each step each run shows the latest of its frames already reached (within 1e-9
    in t), or its first before it starts: so the last step shows both runs' last frames.
    Not every time of both: two offset grids of 100 steps would make 200 steps, on which
    each run moved every other step (a stutter). Runs that go opposite ways play on the
    times of the one with more frames, the other showing its frame nearest in t."""
    times_a, times_b = np.asarray(times_a, np.float64), np.asarray(times_b, np.float64)
    lead_is_a = len(times_a) >= len(times_b)
    lead, other = (times_a, times_b) if lead_is_a else (times_b, times_a)
    way_lead, way_other = _way(lead), _way(other)
    if way_lead and way_other and way_lead != way_other:
        shown = np.abs(other[None, :] - lead[:, None]).argmin(axis=1)
        own = np.arange(len(lead))
        a, b = (own, shown) if lead_is_a else (shown, own)
        return FrameMatch(times=lead.copy(), a=a.astype(np.int64), b=b.astype(np.int64))
    sign = way_lead or way_other or 1.0
    u_lead, u_other = sign * lead, sign * other  # increasing along the runs
    before = u_other[u_other < u_lead[0] - SAME_TIME]
    after = u_other[u_other > u_lead[-1] + SAME_TIME]
    steps = np.concatenate([before, u_lead, after])
    u_a, u_b = (u_lead, u_other) if lead_is_a else (u_other, u_lead)
    a = np.clip(np.searchsorted(u_a, steps + SAME_TIME, side="right") - 1, 0, len(u_a) - 1)
    b = np.clip(np.searchsorted(u_b, steps + SAME_TIME, side="right") - 1, 0, len(u_b) - 1)
    return FrameMatch(times=sign * steps, a=a.astype(np.int64), b=b.astype(np.int64))


def _way(times: np.ndarray) -> float:
    """+1 for a run forward in t, −1 backward, 0 for a single frame."""
    return float(np.sign(times[-1] - times[0])) if len(times) > 1 else 0.0


@dataclass(frozen=True)
class RunPair:
    """Runs A and B of a comparison, with what tells them apart.

    Attributes:
        a, b: the two runs.
        frames: their common timeline (:class:`FrameMatch`).
        shared: one line on the noise they share.
        twin_distance: mean distance between each particle of A and its twin in B (the same
            start) at each step of the timeline, (F,) float64; None when the two runs do not
            start from the same draws (``models.compare.noise.shares_start``).
        sw2: sliced W2 between A's and B's particles at each step of the timeline, (F,): made
            on first use (~0.1 s for 101 steps of 2000 particles; the page asks for it after
            the pair is painted); ``sw2_known`` says whether it has been.
    """

    a: RunResult
    b: RunResult
    frames: FrameMatch
    shared: str
    twin_distance: np.ndarray | None
    # a cache, not part of the value: set through object.__setattr__ (the value is frozen)
    _sw2: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def sw2(self) -> np.ndarray:
        if self._sw2 is None:
            made = pair_sw2(self.a.trajectories, self.b.trajectories, self.frames)
            object.__setattr__(self, "_sw2", made)
        return self._sw2

    @property
    def sw2_known(self) -> bool:
        return self._sw2 is not None

    def with_(self, a: RunResult | None = None, b: RunResult | None = None,
              sw2: np.ndarray | None = None) -> RunPair:  # fmt: skip
        """The same pair with a run replaced by itself plus extras (its reference, its SW2 to
        data), or with its SW2 between A and B made elsewhere: the particles and every
        readout stay."""
        new = replace(self, a=a if a is not None else self.a, b=b if b is not None else self.b)
        object.__setattr__(new, "_sw2", sw2 if sw2 is not None else self._sw2)
        return new

    @property
    def changes(self) -> list[tuple[str, object, object]]:
        """What B changes: (setting, A's value, B's value), as the runs used them."""
        return config_changes(self.a, self.b)


def config_changes(a: RunResult, b: RunResult) -> list[tuple[str, object, object]]:
    """(setting, A's value, B's value) of each setting (as used: ``RunConfig.to_dict``) and
    each entry of the field's source that differs."""
    da = a.config.to_dict() | a.source.to_dict()
    db = b.config.to_dict() | b.source.to_dict()
    return [(k, da.get(k), db.get(k)) for k in sorted(set(da) | set(db)) if da.get(k) != db.get(k)]


def twin_distances(a: np.ndarray, b: np.ndarray, frames: FrameMatch) -> np.ndarray | None:
    """Mean |x_A − x_B| over twins at each step of the timeline, (F,) float64; None when the
    runs have different N. a, b: trajectories (T+1, N, 2)."""
    if a.shape[1] != b.shape[1]:
        return None
    out = np.empty(len(frames.times))
    for f0 in range(0, len(out), 64):  # 64 steps at a time: bounded memory at N = 20,000
        fa, fb = frames.a[f0 : f0 + 64], frames.b[f0 : f0 + 64]
        d = a[fa].astype(np.float64) - b[fb].astype(np.float64)
        out[f0 : f0 + 64] = np.sqrt((d**2).sum(-1)).mean(-1)
    return out


def pair_sw2(a: np.ndarray, b: np.ndarray, frames: FrameMatch, seed: int = 0) -> np.ndarray:
    """Sliced W2 between A's and B's particles at each step of the timeline, (F,) float64:
    the first ``SW2_POINTS`` of each (i.i.d.: a fair sample) on ``SW2_DIRECTIONS`` directions,
    the same at every step (a smooth curve, ``models.evaluation.metrics.sliced_w2``)."""
    n = min(a.shape[1], b.shape[1], SW2_POINTS)
    theta = np.random.default_rng(seed).standard_normal((SW2_DIRECTIONS, 2))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    out = np.empty(len(frames.times))
    for f0 in range(0, len(out), 64):
        # (F, D, n) projections, sorted along the last axis (numpy: torch's sort of these
        # took 130 ms, numpy's 35 ms)
        pa = np.sort(theta @ a[frames.a[f0 : f0 + 64], :n].astype(np.float64).transpose(0, 2, 1))
        pb = np.sort(theta @ b[frames.b[f0 : f0 + 64], :n].astype(np.float64).transpose(0, 2, 1))
        out[f0 : f0 + 64] = np.sqrt(((pa - pb) ** 2).mean(axis=(1, 2)))
    return out


DENSITY_STACKS = {"particles": "density", "exact": "exact_density", "pde": "pde_density"}


def density_difference(pair: RunPair, source: str = "particles") -> np.ndarray:
    """Density A − density B at each step of the timeline, (F, H, W) float32, of the density
    ``source`` names (the particles' histogram, the exact p_t or the PDE's). ValueError when a
    run lacks that density or the two grids differ."""
    stacks = []
    for name, run in (("A", pair.a), ("B", pair.b)):
        stack = getattr(run, DENSITY_STACKS[source])
        if stack is None:
            raise ValueError(f"run {name} has no {source} density")
        stacks.append(stack)
    if stacks[0].shape[1:] != stacks[1].shape[1:] or pair.a.extent != pair.b.extent:
        raise ValueError("A and B have different density grids: no difference to draw")
    return stacks[0][pair.frames.a] - stacks[1][pair.frames.b]


def pair_of(a: RunResult, b: RunResult, shared: str, twins: bool = True) -> RunPair:
    """The pair of two finished runs, with its timeline and readouts (``twins``: whether
    particle i of B started where particle i of A did)."""
    frames = match_frames(a.times, b.times)
    distance = twin_distances(a.trajectories, b.trajectories, frames) if twins else None
    return RunPair(a=a, b=b, frames=frames, shared=shared, twin_distance=distance)


def _same_data(a: Side, b: Side) -> bool:
    """Whether the two runs draw from the same data set (by name, and the same user points)."""
    if a.config.dataset != b.config.dataset:
        return False
    pa, pb = getattr(a.dataset, "points", None), getattr(b.dataset, "points", None)
    if pa is None or pb is None:
        return pa is None and pb is None
    return pa.shape == pb.shape and bool(np.array_equal(np.asarray(pa), np.asarray(pb)))


def simulate_pair(a: Side, b: Side, should_stop=None, exact_cache=None, workers: int = 1,
                  exact_cache_b=None) -> RunPair:  # fmt: skip
    """Run A, and B on A's noise (see the module's docstring); both at once on two threads
    where ``workers`` ≥ 2 and a step is work enough to share (``worth_a_thread``), else one
    after the other. ``should_stop`` and ``exact_cache`` (A's; ``exact_cache_b`` B's: the two
    run at once) as for :func:`models.run.simulate.simulate`."""
    a.config.validate()
    b.config.validate()
    data_a = a.dataset if a.dataset is not None else make_dataset(a.config.dataset)
    times_a = run_times(a.config, path_of(a.config))
    times_b = run_times(b.config, path_of(b.config))
    same_data = _same_data(a, b)
    noise_b, shared = shared_noise(a.config, times_a, b.config, times_b, data_a, same_data)
    twins = shares_start(a.config, b.config, same_data)

    def run_a(stop, threads):
        return simulate(a.config, a.dataset, stop, exact_cache, a.source, threads)

    def run_b(stop, threads):
        return simulate(b.config, b.dataset, stop, exact_cache_b, b.source, threads,
                        step_noise=noise_b)  # fmt: skip

    if workers < 2 or not worth_a_thread(build(a.config, a.dataset)[2],
                                         a.config.particles + b.config.particles):  # fmt: skip
        return pair_of(run_a(should_stop, workers), run_b(should_stop, workers), shared, twins)
    stops = PartStops(cancelled=(Cancelled,))

    def part(run):
        counter = itertools.count()
        check = stops.wrap(lambda _info: _stop_if(should_stop))

        def poll() -> bool:
            check({"i": next(counter)})
            return False

        return (lambda: run(poll, 1)), check

    result_a, result_b = in_parallel([part(run_a), part(run_b)], stops)
    return pair_of(result_a, result_b, shared, twins)


def _stop_if(should_stop) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled

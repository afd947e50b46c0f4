"""Fewer components for the same mixture: equal-size merges that keep the mean and the spread.

The exact field of a flow from one mixture (M components) to another (K components) sums over
M·K pairs (:mod:`models.source_flow`), so two large data sets need fewer components. A mixture
of M equal-weight components N(x_i, σ² I) is reduced to k = M/n components by grouping its
means into k clusters of exactly n (the weights stay equal), each cluster becoming one component
at the cluster mean μ_c with the wider width

    σ'² = σ² + w,    w = (1/2M) Σ_i |x_i − μ_c(i)|²   (the pooled within-cluster variance per axis),

which keeps the mixture's mean and the trace of its covariance exactly (law of total variance).
Moving every mean to its cluster mean moves mass by √(2w) at most in W2, so the clusters are
chosen to make w small: Lloyd's k-means with the equal-size constraint, each assignment an
exact linear assignment of the M means to n copies of each of the k centres (scipy, 0.03-0.07 s
for M = 1152), from the better of two starts: runs of n consecutive components (the built-in
sets list their components along their curves: already near the optimum) and a recursive
bisection (the checkerboard: runs of a grid's rows are a fixed point of Lloyd's iteration).
Clusterings are cached per (means, k).

:func:`pair_sizes` picks k for both sides of a pair: the one that minimises the larger relative
widening w/σ² of the two sides (:func:`distortion`). Not the merge factor M/k alone: merging
the eight separate Gaussians two by two is far worse than merging a curve's neighbours.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from models.datasets import Reference

MAX_PAIRS = 8192  # pairs of one exact source field: 2²⁰ logits are 128 particles' worth
ITERATIONS = 20  # Lloyd iterations at most (they stop when no mean moves)


def _divisors(m: int) -> list[int]:
    return [n for n in range(1, m + 1) if m % n == 0]


def distortion(reference: Reference, k: int) -> float:
    """w/σ² of the reduction to k components: how much wider each component gets (σ'²/σ² − 1);
    0 for k = M. About n²δ²/(24σ²) for a curve sampled at spacing δ merged n at a time."""
    m = len(reference.points)
    if k == m:
        return 0.0
    x = np.ascontiguousarray(reference.points.to(torch.float64).cpu().numpy())
    return _balanced_clusters(x.tobytes(), m, k, ITERATIONS)[1] / reference.sigma**2


def pair_sizes(data: Reference, source: Reference, budget: int = MAX_PAIRS) -> tuple[int, int]:
    """(k_data, k_source): divisors of the two component counts with k_data·k_source ≤ budget
    that minimise the larger :func:`distortion` of the two reductions (among equals: the most
    pairs, then the finer data side, the end a reverse run lands on).

    The candidates (for each k_data the largest k_source that fits) have k_data falling and
    k_source rising, so one distortion rises and the other falls along them: a bisection for
    the crossing clusters about 2 log₂(candidates) reductions, not all of them.
    """
    md, ms = len(data.points), len(source.points)
    if md * ms <= budget:
        return md, ms
    frontier = []
    for kd in sorted(_divisors(md), reverse=True):
        fits = [ks for ks in _divisors(ms) if kd * ks <= budget]
        if fits and (not frontier or fits[-1] > frontier[-1][1]):
            frontier.append((kd, fits[-1]))
    if not frontier:
        raise ValueError(f"no reduction of {md} x {ms} components fits {budget} pairs")

    def cost(i: int) -> tuple[float, float]:
        kd, ks = frontier[i]
        return distortion(data, kd), distortion(source, ks)

    lo, hi = 0, len(frontier) - 1  # the first index where the data side is the worse one
    while lo < hi:
        mid = (lo + hi) // 2
        dd, ds = cost(mid)
        lo, hi = (lo, mid) if dd >= ds else (mid + 1, hi)
    near = range(max(0, lo - 1), min(len(frontier), lo + 2))
    key = {i: (max(cost(i)), -frontier[i][0] * frontier[i][1], cost(i)[0]) for i in near}
    return frontier[min(near, key=key.__getitem__)]


def _bisected(x: np.ndarray, k: int, n: int) -> np.ndarray:
    """Cluster index (M,) of each of the M = k·n means: split recursively along the wider axis,
    k₁ = ⌊k/2⌋ clusters' worth (k₁·n means) to one side, the rest to the other."""
    assign = np.empty(len(x), dtype=np.int64)

    def split(idx: np.ndarray, first: int, count: int) -> None:
        if count == 1:
            assign[idx] = first
            return
        pts = x[idx]
        axis = int(np.argmax(pts.max(0) - pts.min(0)))
        order = idx[np.argsort(pts[:, axis], kind="stable")]
        half = count // 2
        split(order[: half * n], first, half)
        split(order[half * n :], first + half, count - half)

    split(np.arange(len(x)), 0, k)
    return assign


def _lloyd(x: np.ndarray, assign: np.ndarray, k: int, iterations: int) -> np.ndarray:
    """Equal-size Lloyd iterations from ``assign``: centres, then the exact assignment of the
    means to n copies of each centre, until nothing moves."""
    # imported here: scipy.optimize is ~0.35 s of every server's start, needed only for a
    # flow from a source data set
    from scipy.optimize import linear_sum_assignment

    n = len(x) // k
    for _ in range(iterations):
        centres = np.stack([x[assign == c].mean(0) for c in range(k)])  # (k, 2)
        cost = ((x[:, None, :] - centres[None]) ** 2).sum(-1)  # (M, k)
        _, slots = linear_sum_assignment(np.repeat(cost, n, axis=1))  # n slots per centre
        new = slots // n
        if np.array_equal(new, assign):
            break
        assign = new
    return assign


def _within(x: np.ndarray, assign: np.ndarray, k: int) -> float:
    """w = (1/2M) Σ_i |x_i − μ_c(i)|², the pooled within-cluster variance per axis."""
    centres = np.stack([x[assign == c].mean(0) for c in range(k)])
    return float(((x - centres[assign]) ** 2).sum() / (2 * len(x)))


@functools.lru_cache(maxsize=256)
def _balanced_clusters(means: bytes, m: int, k: int, iterations: int) -> tuple[np.ndarray, float]:
    """(cluster index (M,) of each mean, k clusters of exactly M/k; w) from the better of two
    starts: runs of M/k consecutive components (curves listed in order) and recursive
    bisection (grids: runs of a grid's rows are a fixed point of Lloyd's iteration)."""
    x = np.frombuffer(means, dtype=np.float64).reshape(m, 2)
    starts = (np.arange(m) // (m // k), _bisected(x, k, m // k))
    found = [_lloyd(x, start, k, iterations) for start in starts]
    scored = [(_within(x, a, k), i) for i, a in enumerate(found)]
    w, best = min(scored)
    return found[best], w


def reduce_mixture(reference: Reference, k: int) -> Reference:
    """The mixture with k equal-weight components (k must divide M): equal-size clusters of the
    means, each one component at its mean with σ'² = σ² + the pooled within-cluster variance
    per axis. Labels: the most common label of each cluster. ``grid`` is dropped (the reduced
    components are no Cartesian blocks). k = M returns the reference itself.
    """
    m = len(reference.points)
    if not 1 <= k <= m or m % k:
        raise ValueError(f"k must divide the {m} components, got {k}")
    if k == m:
        return reference
    x = reference.points.to(torch.float64).cpu().numpy()
    assign, within = _balanced_clusters(np.ascontiguousarray(x).tobytes(), m, k, ITERATIONS)
    order = np.argsort(assign, kind="stable")
    centres = x[order].reshape(k, m // k, 2).mean(1)
    labels = reference.labels.cpu().numpy()[order].reshape(k, m // k)
    majority = np.array([np.bincount(row).argmax() for row in labels])
    return Reference(torch.from_numpy(centres), torch.from_numpy(majority).long(),
                     float(np.sqrt(reference.sigma**2 + within)))  # fmt: skip


def reduce_pair(data: Reference, source: Reference, budget: int = MAX_PAIRS):
    """(data, source) mixtures reduced by :func:`pair_sizes` so their pairs fit ``budget``."""
    kd, ks = pair_sizes(data, source, budget)
    return reduce_mixture(data, kd), reduce_mixture(source, ks)

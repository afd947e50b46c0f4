"""The noise two runs share, so that a comparison shows the one difference chosen
(docs/MATH.md §11).

Both runs of a comparison draw their start from the same seed: the same standard normals z
(reverse: x = b(t_start) z) or the same data points (forward). An SDE run also draws one
standard normal per step. Run A draws them from its generator, as it would alone. Run B, if it
draws step noise too, takes A's: A's normals define A's Brownian path W at A's grid points,
W(t_{i+1}) − W(t_i) = √|h_i| z_i; B reads W at its own grid points, where a point between two of
A's is drawn from the Brownian bridge between them (and a point beyond A's span from fresh
increments), and its step's normal is (W(s_{k+1}) − W(s_k)) / √|s_{k+1} − s_k|. On A's own grid
these are A's normals, bit for bit; a coarser B sums A's increments, a finer B bridges them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.run.config import RunConfig
from models.source_flow import sample_source

BRIDGE_SEED = 0x5EED  # B's bridge draws: seeded from the run's seed plus this
# Grid points closer than this (in t) are the same point: grids made by different rules
# (linspace, the log-SNR map) land on 0.5 within a few ulps
SAME_TIME = 1e-9


def draws_step_noise(config: RunConfig) -> bool:
    """Whether the run draws a standard normal (N, 2) at every step (``models/samplers.py``)."""
    used = config.solver_used
    return used in ("euler-maruyama", "exact-transition") or (
        used == "ddim" and config.noise_level > 0
    )


def start_draws(config: RunConfig, data, generator) -> None:
    """Draw from ``generator`` what a run draws before its first step (its start points), so
    that the next draws are its steps' noise (``models.run.simulate.trajectories``)."""
    n, device = config.particles, config.device
    if _draws_data(config):
        data.sample(n, generator, device=device)
        if config.kind == "conditional" and config.source != "gaussian":
            sample_source(config.source, n, generator, device=device)
    elif config.source != "gaussian":  # models.run.simulate.start_points
        sample_source(config.source, n, generator, device=device)
    else:  # path.prior: b(t) times these
        torch.randn(n, 2, generator=generator, dtype=torch.float32, device=device)


def step_normals(config: RunConfig, data, steps: int) -> Tensor:
    """The standard normals (steps, N, 2) float32 a run of ``config`` draws at its steps, in
    step order: its generator replayed past its start draws."""
    generator = torch.Generator(device=config.device).manual_seed(config.seed)
    start_draws(config, data, generator)
    shape = (config.particles, 2)
    out = torch.empty((steps, *shape), dtype=torch.float32, device=config.device)
    for i in range(steps):
        out[i] = torch.randn(shape, generator=generator, dtype=torch.float32,
                             device=config.device)  # fmt: skip
    return out


class GivenNoise:
    """A noise source (``models.samplers.noise``) that hands out given normals, one step at a
    time: ``draw(x)`` gives step k's (N, 2), ``rows(lo, hi)`` a row block's share of them (a run
    split over threads, ``models/accel/parallel.py``)."""

    def __init__(self, normals: Tensor, start: int = 0, stop: int | None = None):
        self.normals = normals  # (T, N, 2)
        self._rows = slice(start, stop)
        self._step = 0

    def draw(self, x: Tensor) -> Tensor:
        if self._step >= len(self.normals):
            raise RuntimeError("the run asked for more steps' noise than it was given")
        out = self.normals[self._step, self._rows]
        self._step += 1
        return out.to(dtype=x.dtype, device=x.device)

    def rows(self, start: int, stop: int) -> GivenNoise:
        return GivenNoise(self.normals, start, stop)


def bridged_normals(z_a: Tensor, times_a: Tensor, times_b: Tensor, seed: int) -> Tensor:
    """The normals (T_b, N, 2) of a run on ``times_b`` that sees the Brownian path A's normals
    ``z_a`` (T_a, N, 2) drew on ``times_a`` (both grids run the same way in t).

    Where B's step is one of A's steps, its normal is A's (the same tensor values); otherwise
    it is the normalised increment of W between B's points, W read at A's points and bridged
    (or extended with fresh increments) between them.
    """
    ta = [float(t) for t in times_a]
    tb = [float(t) for t in times_b]
    sign = 1.0 if ta[-1] >= ta[0] else -1.0
    ua, ub = [sign * t for t in ta], [sign * t for t in tb]  # increasing along the runs
    shape = z_a.shape[1:]
    gen = torch.Generator(device=z_a.device).manual_seed(int(seed) + BRIDGE_SEED)

    def fresh() -> Tensor:
        return torch.randn(shape, generator=gen, dtype=torch.float64, device=z_a.device)

    w = _brownian_at(z_a, ua, ub, fresh)
    out = torch.empty((len(ub) - 1, *shape), dtype=torch.float32, device=z_a.device)
    index = {round(u, 9): j for j, u in enumerate(ua)}
    for k in range(len(ub) - 1):
        j = _same_point(index, ub[k], ua)
        j_next = _same_point(index, ub[k + 1], ua)
        if j is not None and j_next == j + 1:  # one of A's steps: its own normal
            out[k] = z_a[j]
        else:
            out[k] = ((w[k + 1] - w[k]) / math.sqrt(ub[k + 1] - ub[k])).float()
    return out


def _same_point(index: dict, u: float, ua: list[float]) -> int | None:
    """The index of A's grid point at u (within SAME_TIME), or None."""
    for key in (round(u, 9), round(u + SAME_TIME, 9), round(u - SAME_TIME, 9)):
        j = index.get(key)
        if j is not None and abs(ua[j] - u) <= SAME_TIME:
            return j
    return None


def _brownian_at(z_a: Tensor, ua: list[float], ub: list[float], fresh) -> list[Tensor]:
    """W at B's points ub (increasing), float64 (N, 2) each, W(ua[0]) = 0 and
    W(ua[i+1]) − W(ua[i]) = √(ua[i+1] − ua[i]) z_a[i]; one pass over both grids."""
    w_b: list[Tensor | None] = [None] * len(ub)
    w_left = torch.zeros(z_a.shape[1:], dtype=torch.float64, device=z_a.device)
    before = [k for k, u in enumerate(ub) if u < ua[0] - SAME_TIME]
    j, k = 0, len(before)  # A's interval [ua[j], ua[j+1]]; B's next point
    # B's points before A's start, outward from it: W(u) = W(next) − √(next − u) ξ
    right_u, right_w = ua[0], w_left
    for kk in reversed(before):
        right_w = right_w - math.sqrt(right_u - ub[kk]) * fresh()
        right_u, w_b[kk] = ub[kk], right_w
    last_u, last_w = ua[0], w_left  # the latest point W is known at, along the run
    while k < len(ub):
        u = ub[k]
        # move A's interval forward until it holds u (or A's grid ends)
        while j < len(ua) - 1 and u > ua[j + 1] + SAME_TIME:
            step = math.sqrt(ua[j + 1] - ua[j]) * z_a[j].double()
            w_left = w_left + step
            j += 1
            last_u, last_w = ua[j], w_left
        if abs(u - ua[j]) <= SAME_TIME:
            w = w_left
        elif j < len(ua) - 1 and abs(u - ua[j + 1]) <= SAME_TIME:
            w = w_left + math.sqrt(ua[j + 1] - ua[j]) * z_a[j].double()
        elif j < len(ua) - 1:  # inside (ua[j], ua[j+1]): the bridge from the last known point
            w_right = w_left + math.sqrt(ua[j + 1] - ua[j]) * z_a[j].double()
            left_u, left_w = (last_u, last_w) if last_u >= ua[j] else (ua[j], w_left)
            span, d = ua[j + 1] - left_u, u - left_u
            w = left_w + (d / span) * (w_right - left_w) \
                + math.sqrt(d * (ua[j + 1] - u) / span) * fresh()  # fmt: skip
        else:  # beyond A's end: fresh increments from the last known point
            w = last_w + math.sqrt(u - last_u) * fresh()
        w_b[k] = w
        last_u, last_w = max(last_u, u), w if u >= last_u else last_w
        k += 1
    return w_b  # type: ignore[return-value]


def _draws_data(config: RunConfig) -> bool:
    """Whether the run starts from data points (forward, or the conditional paths)."""
    return config.direction == "forward" or config.kind == "conditional"


def shares_start(config_a: RunConfig, config_b: RunConfig, same_data: bool) -> bool:
    """Whether the two runs start from the same draws (:func:`start_draws`): the same seed, N,
    direction and device, and, where they start from data, the same data set (``same_data``).
    Their particles are then twins: particle i of B starts where particle i of A does."""
    keys = ("seed", "particles", "direction", "device")
    if any(getattr(config_a, k) != getattr(config_b, k) for k in keys):
        return False
    if _draws_data(config_a) != _draws_data(config_b):
        return False
    return same_data or not _draws_data(config_a)


def shared_noise(config_a: RunConfig, times_a: Tensor, config_b: RunConfig, times_b: Tensor,
                 data_a, same_data: bool = True) -> tuple[GivenNoise | None, str]:  # fmt: skip
    """B's step noise taken from A's (a :class:`GivenNoise`), or None where B draws its own,
    and one line on what the two runs share (``same_data``: the two start from the same data
    set, see :func:`shares_start`)."""
    if not shares_start(config_a, config_b, same_data):
        return None, "independent noise (B changes the seed, N, the direction or the data)"
    start = "the same data points" if config_a.direction == "forward" else "the same noise"
    if not draws_step_noise(config_b):
        return None, f"{start} at the start"
    if not draws_step_noise(config_a):
        return None, f"{start} at the start; B's own increments (A draws none)"
    z_a = step_normals(config_a, data_a, len(times_a) - 1)
    ta, tb = times_a.to(torch.float64), times_b.to(torch.float64)
    if ta.shape == tb.shape and bool(torch.equal(ta, tb)):
        return GivenNoise(z_a), f"{start} at the start and every increment (the same grid)"
    z_b = bridged_normals(z_a, ta, tb, config_a.seed)
    return GivenNoise(z_b), f"{start} at the start; A's Brownian path on B's grid"

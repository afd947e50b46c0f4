"""Noise schedules β(t) for VP diffusion (docs/MATH.md §2).

A schedule gives β(t) and its integral B(t) = ∫₀ᵗ β(s) ds; everything else follows from
α(t) = exp(−½ B(t)) and σ(t) = √(1 − α²). All functions are vectorised over t (any shape) and
keep the dtype and device of t. Every schedule also has its log-SNR λ(t) = log(a²/b²)
(``log_snr``); the schedules defined by λ (sigmoid, shifted cosine, EDM, a drawn one) live in
``models/logsnr.py`` and are re-exported here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from models.drawn_schedule import (
    BETA_LIMIT,
    DEFAULT_POINTS,
    LAMBDA_LIMIT,
    MAX_POINTS,
    MIN_POINTS,
    RATE_LIMIT,
    RATE_STEP,
    SIGNAL_BAND,
    DrawnSchedule,
    Points,
    check_points,
    format_points,
    parse_points,
    sample_log_snr,
)
from models.logsnr import (
    EDMSchedule,
    LogSNRSchedule,
    Schedule,
    ShiftedCosineSchedule,
    SigmoidSchedule,
)

__all__ = [
    "BETA_LIMIT",
    "DEFAULT_POINTS",
    "LAMBDA_LIMIT",
    "MAX_POINTS",
    "MIN_POINTS",
    "RATE_LIMIT",
    "RATE_STEP",
    "SCHEDULES",
    "SIGNAL_BAND",
    "ConstantSchedule",
    "CosineSchedule",
    "DrawnSchedule",
    "EDMSchedule",
    "LinearSchedule",
    "LogSNRSchedule",
    "Points",
    "Schedule",
    "ShiftedCosineSchedule",
    "SigmoidSchedule",
    "check_points",
    "format_points",
    "make_schedule",
    "parse_points",
    "sample_log_snr",
]

COSINE_OFFSET = 0.008
COSINE_BETA_MAX = 100.0  # β of the cosine schedule is clipped here; it would be infinite at t = 1


@dataclass(frozen=True)
class LinearSchedule(Schedule):
    """β(t) = β_min + t (β_max − β_min) (Ho et al. 2020; Song et al. 2021 VP-SDE)."""

    beta_min: float = 0.1
    beta_max: float = 20.0

    def __post_init__(self) -> None:
        if not (0 <= self.beta_min <= self.beta_max):
            raise ValueError(
                f"need 0 <= beta_min <= beta_max, got beta_min={self.beta_min}, "
                f"beta_max={self.beta_max}"
            )

    def beta(self, t: Tensor) -> Tensor:
        # ≥ 0 also one ulp left of t = 0 when β_min = 0
        return (self.beta_min + t * (self.beta_max - self.beta_min)).clamp_min(0.0)

    def integral(self, t: Tensor) -> Tensor:
        return (self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2).clamp_min(0.0)


@dataclass(frozen=True)
class ConstantSchedule(Schedule):
    """β(t) = β₀."""

    beta0: float = 8.0

    def __post_init__(self) -> None:
        if not self.beta0 > 0:
            raise ValueError(f"need beta0 > 0, got {self.beta0}")

    def beta(self, t: Tensor) -> Tensor:
        return torch.full_like(t, self.beta0)

    def integral(self, t: Tensor) -> Tensor:
        return (self.beta0 * t).clamp_min(0.0)


@dataclass(frozen=True)
class CosineSchedule(Schedule):
    """Cosine schedule of Nichol & Dhariwal (2021): ᾱ(t) = f(t)/f(0), f = cos²(π/2 (t+s)/(1+s)).

    β(t) = π/(1+s) tan(π/2 (t+s)/(1+s)) diverges at t = 1, so it is clipped at ``beta_clip``:
    past the time t_c where β reaches the clip, β stays constant and B grows linearly, which
    keeps α, β and B consistent (α(1) ≈ 0.011 for the default clip of 100).
    """

    offset: float = COSINE_OFFSET
    beta_clip: float = COSINE_BETA_MAX

    def _phase(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * (t + self.offset) / (1 + self.offset)

    @property
    def t_clip(self) -> float:
        """Time at which the unclipped β reaches ``beta_clip``."""
        phase = math.atan(self.beta_clip * (1 + self.offset) / math.pi)
        return phase * 2 * (1 + self.offset) / math.pi - self.offset

    def _unclipped_integral(self, t: Tensor) -> Tensor:
        # B = −log ᾱ = −2 log(cos φ(t) / cos φ(0))
        # Clamped at 0: at t = 0 the two logs cancel to a rounding residue that some libm
        # builds leave negative (-2.7e-20 was seen), which would make b = √(1 − e^{−B}) NaN.
        phase0 = 0.5 * math.pi * self.offset / (1 + self.offset)
        raw = -2.0 * (torch.log(torch.cos(self._phase(t))) - math.log(math.cos(phase0)))
        return raw.clamp_min(0.0)

    def beta(self, t: Tensor) -> Tensor:
        t_c = torch.clamp(t, max=self.t_clip)
        raw = math.pi / (1 + self.offset) * torch.tan(self._phase(t_c))
        return torch.where(t < self.t_clip, raw, torch.full_like(t, self.beta_clip))

    def integral(self, t: Tensor) -> Tensor:
        t_c = self.t_clip
        inside = self._unclipped_integral(torch.clamp(t, max=t_c))
        return inside + self.beta_clip * torch.clamp(t - t_c, min=0.0)


SCHEDULES = {
    "linear": LinearSchedule,
    "cosine": CosineSchedule,
    "constant": ConstantSchedule,
    "sigmoid": SigmoidSchedule,
    "shifted-cosine": ShiftedCosineSchedule,
    "edm": EDMSchedule,
    "points": DrawnSchedule,
}


@functools.lru_cache(maxsize=64)
def _drawn(points: Points) -> DrawnSchedule:
    """One drawn schedule per set of points: its steepness check costs ~60 ms, and a session
    asks for the schedule of its settings several times a run. (Frozen values: safe to share,
    and a refused drawing raises again, as errors are not cached.)"""
    return DrawnSchedule(points)


def make_schedule(
    name: str,
    beta_min: float = 0.1,
    beta_max: float = 20.0,
    beta0: float | None = None,
    *,
    shift: float | None = None,
    points: str | Sequence[Sequence[float]] | None = None,
) -> Schedule:
    """Build a schedule by name.

    Args:
        name: one of SCHEDULES.
        beta_min, beta_max: bounds of the linear schedule (and the constant one's default
            level); the other schedules ignore them.
        beta0: level of the constant schedule; defaults to the mean of the linear one,
            ½ (β_min + β_max), so that switching schedules keeps a(1) comparable.
        shift: the shifted cosine's shift (default 2); ignored by the others.
        points: the drawn schedule's control points, (t, λ) pairs or the text 't:λ,t:λ,…'
            (``parse_points``); DEFAULT_POINTS (the linear schedule, 8 points) when None.
            Ignored by the others.
    Raises:
        ValueError (one line) for an unknown name or invalid parameters or points.
    """
    if name == "linear":
        return LinearSchedule(beta_min, beta_max)
    if name == "cosine":
        return CosineSchedule()
    if name == "constant":
        return ConstantSchedule(beta0 if beta0 is not None else 0.5 * (beta_min + beta_max))
    if name == "sigmoid":
        return SigmoidSchedule()
    if name == "shifted-cosine":
        return ShiftedCosineSchedule() if shift is None else ShiftedCosineSchedule(float(shift))
    if name == "edm":
        return EDMSchedule()
    if name == "points":
        if points is None:
            return DrawnSchedule()
        return _drawn(check_points(parse_points(points) if isinstance(points, str) else points))
    raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")

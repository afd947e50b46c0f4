"""Noise schedules β(t) for VP diffusion (docs/MATH.md §2).

A schedule gives β(t) and its integral B(t) = ∫₀ᵗ β(s) ds; everything else follows from
α(t) = exp(−½ B(t)) and σ(t) = √(1 − α²). All functions are vectorised over t (any shape) and
keep the dtype and device of t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

COSINE_OFFSET = 0.008
COSINE_BETA_MAX = 100.0  # β of the cosine schedule is clipped here; it would be infinite at t = 1


@dataclass(frozen=True)
class Schedule:
    """Base class: subclasses define ``beta`` and ``integral`` (B(t))."""

    def beta(self, t: Tensor) -> Tensor:
        """β(t), shape of t."""
        raise NotImplementedError

    def integral(self, t: Tensor) -> Tensor:
        """B(t) = ∫₀ᵗ β(s) ds, shape of t."""
        raise NotImplementedError

    def alpha(self, t: Tensor) -> Tensor:
        """α(t) = exp(−½ B(t)), the signal scale, shape of t."""
        return torch.exp(-0.5 * self.integral(t))


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
        return self.beta_min + t * (self.beta_max - self.beta_min)

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


SCHEDULES = {"linear": LinearSchedule, "cosine": CosineSchedule, "constant": ConstantSchedule}


def make_schedule(
    name: str, beta_min: float = 0.1, beta_max: float = 20.0, beta0: float | None = None
) -> Schedule:
    """Build a schedule by name.

    Args:
        name: one of ``linear``, ``cosine``, ``constant``.
        beta_min, beta_max: bounds of the linear schedule.
        beta0: level of the constant schedule; defaults to the mean of the linear one,
            ½ (β_min + β_max), so that switching schedules keeps a(1) comparable.
    """
    if name == "linear":
        return LinearSchedule(beta_min, beta_max)
    if name == "cosine":
        return CosineSchedule()
    if name == "constant":
        return ConstantSchedule(beta0 if beta0 is not None else 0.5 * (beta_min + beta_max))
    raise ValueError(f"unknown schedule {name!r}; choose from {', '.join(SCHEDULES)}")

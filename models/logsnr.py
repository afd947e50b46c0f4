"""Schedules written by their log-SNR λ(t) = log(a²/b²) (docs/MATH.md §2).

Every VP schedule is a strictly decreasing λ(t): a² = sigmoid(λ), b² = sigmoid(−λ), so
B(t) = −log a² = softplus(−λ) and β = dB/dt = −λ′ sigmoid(−λ). This module holds the base
:class:`Schedule` (every schedule has :meth:`Schedule.log_snr`), :class:`LogSNRSchedule` and the
schedules defined by λ in closed form (sigmoid, shifted cosine, EDM); the drawn schedule, a
monotone interpolant through control points (t_i, λ_i), is in ``models/drawn_schedule.py``.
``models/schedules.py`` re-exports them all.

A schedule whose λ(0) is finite (shifted cosine, EDM, a drawing with its first point at t = 0)
has B(0) = softplus(−λ(0)) > 0: a(0) is slightly below 1 and b(0) slightly above 0 (EDM:
b(0) = 0.002). Every method clamps t into [0, 1] and stays finite there (β too; λ is +∞ at
t = 0 where B(0) = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


def softplus(x: Tensor) -> Tensor:
    """log(1 + eˣ) without overflow or loss: max(x, 0) + log1p(e^{−|x|}); 0 at −∞, ∞ at ∞."""
    return x.clamp_min(0.0) + torch.log1p(torch.exp(-x.abs()))


def _unit(t: Tensor) -> Tensor:
    return t.clamp(0.0, 1.0)


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

    def log_snr(self, t: Tensor) -> Tensor:
        """λ(t) = log(a²/b²) = −log(e^B − 1) = −B − log(1 − e^{−B}), shape of t.

        +∞ where B = 0 (t = 0); the second form neither overflows for large B nor cancels
        for small B (expm1)."""
        big_b = self.integral(t).clamp_min(0.0)
        return -big_b - torch.log(-torch.expm1(-big_b))


@dataclass(frozen=True)
class LogSNRSchedule(Schedule):
    """A schedule defined by its log-SNR. Subclasses give ``_lam`` (λ) and ``_dlam`` (λ′) on
    t ∈ [0, 1], and ``_beta`` in closed form where −λ′ sigmoid(−λ) would be 0·∞ (λ(0) = +∞)."""

    def _lam(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def _dlam(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def _beta(self, t: Tensor) -> Tensor:
        return -self._dlam(t) * torch.sigmoid(-self._lam(t))

    def log_snr(self, t: Tensor) -> Tensor:
        return self._lam(_unit(t))

    def d_log_snr(self, t: Tensor) -> Tensor:
        """λ′(t), shape of t (−∞ at t = 0 where λ(0) = +∞)."""
        return self._dlam(_unit(t))

    def integral(self, t: Tensor) -> Tensor:
        return softplus(-self._lam(_unit(t)))

    def beta(self, t: Tensor) -> Tensor:
        return self._beta(_unit(t)).clamp_min(0.0)


def _log_sinh(x: Tensor | float):
    """log sinh x for x ≥ 0 without overflow: x − log 2 + log(1 − e^{−2x}); −∞ at 0."""
    if isinstance(x, Tensor):
        return x - math.log(2.0) + torch.log(-torch.expm1(-2.0 * x))
    return x - math.log(2.0) + math.log(-math.expm1(-2.0 * x))


def _log_cosh(x: Tensor | float):
    """log cosh x without overflow: |x| − log 2 + log1p(e^{−2|x|})."""
    if isinstance(x, Tensor):
        return x.abs() - math.log(2.0) + torch.log1p(torch.exp(-2.0 * x.abs()))
    return abs(x) - math.log(2.0) + math.log1p(math.exp(-2.0 * abs(x)))


@dataclass(frozen=True)
class SigmoidSchedule(LogSNRSchedule):
    """Sigmoid schedule of Jabri et al. (2022) and Chen (2023): a² = γ(t) with
    γ(t) = (v_end − sigmoid((t (end − start) + start)/τ)) / (v_end − v_start),
    v = sigmoid(·/τ) at start and end (their defaults −3, 3, τ = 1).

    γ(1) = 0 (λ(1) = −∞, β(1) = ∞), so the time is rescaled, t ↦ t·t_end, with t_end < 1 where
    γ = ``gamma_min``: λ(1) = log(γ_min/(1 − γ_min)) is finite and β(1) bounded (Chen clips γ
    at 1e-9 instead, which makes λ constant on a short end interval). γ_min = 1e-4 gives
    a(1) = 0.01, near the linear schedule's 0.0066, with β(1) ≈ 3.0e3.
    """

    start: float = -3.0
    end: float = 3.0
    tau: float = 1.0
    gamma_min: float = 1e-4

    def __post_init__(self) -> None:
        if not (self.tau > 0 and self.end > self.start and 0 < self.gamma_min < 0.5):
            raise ValueError(
                f"the sigmoid schedule needs tau > 0, end > start and 0 < gamma_min < 0.5, got "
                f"start={self.start}, end={self.end}, tau={self.tau}, gamma_min={self.gamma_min}"
            )
        if (self.end - self.start) / self.tau > 100:
            raise ValueError("the sigmoid schedule needs (end - start)/tau <= 100")

    @cached_property
    def _consts(self) -> tuple[float, float, float, float]:
        """(p, D, K, t_end): p = start/τ, D = (end − start)/τ, K = log cosh(p/2) −
        log cosh(q/2) with q = end/τ, and the rescaled end time t_end."""
        p, q = self.start / self.tau, self.end / self.tau
        d = q - p
        k = _log_cosh(0.5 * p) - _log_cosh(0.5 * q)
        # λ_raw(t) = log sinh((1−t)D/2) − log sinh(tD/2) + K = λ_min: with x = tD/2 and
        # r = e^{λ_min − K}, sinh(D/2 − x) = r sinh x gives tanh x = sinh(D/2)/(r + cosh(D/2))
        lam_min = math.log(self.gamma_min) - math.log1p(-self.gamma_min)
        r = math.exp(lam_min - k)
        x = math.atanh(math.sinh(0.5 * d) / (r + math.cosh(0.5 * d)))
        return p, d, k, 2.0 * x / d

    def _lam(self, t: Tensor) -> Tensor:
        # log(γ/(1−γ)) with the differences of sigmoids written as sinh/cosh (no cancellation)
        _, d, k, t_end = self._consts
        s = t * t_end
        return _log_sinh(0.5 * d * (1.0 - s)) - _log_sinh(0.5 * d * s) + k

    def _dlam(self, t: Tensor) -> Tensor:
        _, d, _, t_end = self._consts
        s = t * t_end
        coth = 1.0 / torch.tanh(0.5 * d * (1.0 - s)) + 1.0 / torch.tanh(0.5 * d * s)
        return -0.5 * d * t_end * coth

    def _beta(self, t: Tensor) -> Tensor:
        # β = −d log γ/dt = t_end D cosh(q/2) / (2 cosh(u/2) sinh((1 − s) D/2)), u = p + s D
        p, d, _, t_end = self._consts
        s = t * t_end
        q = p + d
        log_ratio = _log_cosh(0.5 * q) - _log_cosh(0.5 * (p + s * d))
        return 0.5 * d * t_end * torch.exp(log_ratio - _log_sinh(0.5 * d * (1.0 - s)))


@dataclass(frozen=True)
class ShiftedCosineSchedule(LogSNRSchedule):
    """Shifted cosine of Hoogeboom et al. (2023, "simple diffusion"), in log-SNR form:
    λ(t) = −2 log tan(φ_lo + t (φ_hi − φ_lo)) − 2 log(shift), φ_lo = atan(e^{−λ_max/2}),
    φ_hi = atan(e^{−λ_min/2}), so λ(0) = λ_max − 2 log shift, λ(1) = λ_min − 2 log shift.

    shift = 1 is the plain cosine (a = cos φ up to the truncation to [λ_min, λ_max]); shift > 1
    adds noise at every t (λ lower by 2 log shift). The default 2 suits this app's data, whose
    per-coordinate scale is 1.4–2 (8 Gaussians on radius 2): the signal-to-noise ratio of data of
    scale s under λ is s² e^λ, and the shift puts it back on the unit-scale cosine's.
    """

    shift: float = 2.0
    logsnr_min: float = -15.0
    logsnr_max: float = 15.0

    def __post_init__(self) -> None:
        if not (self.shift > 0 and math.isfinite(self.shift)):
            raise ValueError(f"the shifted cosine needs a shift > 0, got {self.shift}")
        if not (-50 <= self.logsnr_min < self.logsnr_max <= 50):
            raise ValueError(
                f"the shifted cosine needs -50 <= logsnr_min < logsnr_max <= 50, got "
                f"{self.logsnr_min}, {self.logsnr_max}"
            )

    @cached_property
    def _angles(self) -> tuple[float, float, float]:
        """(φ_lo, ψ_hi, Δ): φ = φ_lo + tΔ and its complement ψ = π/2 − φ = ψ_hi + (1 − t)Δ,
        both small near their own end, so sin φ and cos φ = sin ψ keep full precision."""
        phi_lo = math.atan(math.exp(-0.5 * self.logsnr_max))
        psi_hi = math.atan(math.exp(0.5 * self.logsnr_min))  # π/2 − φ_hi
        return phi_lo, psi_hi, 0.5 * math.pi - phi_lo - psi_hi

    def _lam(self, t: Tensor) -> Tensor:
        phi_lo, psi_hi, delta = self._angles
        sin_phi = torch.sin(phi_lo + t * delta)
        cos_phi = torch.sin(psi_hi + (1.0 - t) * delta)
        return 2.0 * (torch.log(cos_phi) - torch.log(sin_phi)) - 2.0 * math.log(self.shift)

    def _dlam(self, t: Tensor) -> Tensor:
        # d/dt (−2 log tan φ) = −2Δ/(sin φ cos φ)
        phi_lo, psi_hi, delta = self._angles
        return -2.0 * delta / (torch.sin(phi_lo + t * delta) * torch.sin(psi_hi + (1 - t) * delta))


@dataclass(frozen=True)
class EDMSchedule(LogSNRSchedule):
    """EDM's noise levels (Karras et al. 2022, ρ = 7) as a VP schedule: the noise-to-signal
    ratio b/a = σ(t) = (σ_min^{1/ρ} + t (σ_max^{1/ρ} − σ_min^{1/ρ}))^ρ, so λ = −2 log σ(t).

    λ(0) = −2 log σ_min is finite: a(0) = 1/√(1 + σ_min²), b(0) = σ_min/√(1 + σ_min²) ≈ 0.002;
    a(1) = 1/√(1 + σ_max²) ≈ 0.0125 and β(1) ≈ 10.9.
    """

    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0

    def __post_init__(self) -> None:
        if not (0 < self.sigma_min < self.sigma_max < math.inf and self.rho > 0):
            raise ValueError(
                f"the edm schedule needs 0 < sigma_min < sigma_max and rho > 0, got "
                f"sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, rho={self.rho}"
            )

    def _root(self, t: Tensor) -> tuple[Tensor, float]:
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        return lo + t * (hi - lo), hi - lo

    def _lam(self, t: Tensor) -> Tensor:
        return -2.0 * self.rho * torch.log(self._root(t)[0])

    def _dlam(self, t: Tensor) -> Tensor:
        root, span = self._root(t)
        return -2.0 * self.rho * span / root

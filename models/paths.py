"""Gaussian probability paths x_t = a(t) x_data + b(t) ε (docs/MATH.md §2-3).

A path is defined by its coefficients a, b and their time derivatives; everything else (the
drift f and diffusion g² of the forward SDE, sampling x_t, training targets, and conversions
between the denoiser x̂, the noise prediction ε̂, the score s and the velocity v) is derived
here once, so a new path is one small subclass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.schedules import Schedule

FIELD_KINDS = ("x0", "eps", "score", "velocity")
TINY = 1e-12


@dataclass(frozen=True)
class PathCoefficients:
    """Coefficients of a Gaussian path at times t; every field has the shape of t.

    ``b_db`` is b·ḃ = ½ d(b²)/dt, kept separately because it stays finite where b = 0 and
    ḃ = ∞ (VP at t = 0), which lets exact fields avoid 0·∞.
    """

    a: Tensor
    b: Tensor
    da: Tensor
    db: Tensor
    b_db: Tensor
    f: Tensor | None = None

    @property
    def drift(self) -> Tensor:
        """f(t) = ȧ/a, the linear drift coefficient of the forward SDE (−∞ where a = 0)."""
        return self.f if self.f is not None else self.da / self.a

    @property
    def diffusion2(self) -> Tensor:
        """g(t)² = 2 b ḃ − 2 f b² ≥ 0, the squared diffusion of the forward SDE."""
        return (2.0 * (self.b_db - self.drift * self.b**2)).clamp_min(0.0)


def _as_tensor(t: Tensor | float, like: Tensor | None = None) -> Tensor:
    if isinstance(t, Tensor):
        return t
    dtype = like.dtype if like is not None else torch.float64
    device = like.device if like is not None else None
    return torch.tensor(t, dtype=dtype, device=device)


def _col(c: Tensor, x: Tensor) -> Tensor:
    """Broadcast a coefficient of shape () or (N,) against points x of shape (N, 2)."""
    c = c.to(dtype=x.dtype, device=x.device)
    return c if c.dim() == 0 else c.reshape(-1, *([1] * (x.dim() - 1)))


class GaussianPath:
    """Base class. Subclasses implement :meth:`coefficients`.

    Attributes:
        name: short name used by the command line and the app.
        singular_at_noise: True when f and g² diverge at t = 1 (linear FM), so stochastic
            samplers must start at 1 − ε.
    """

    name = "path"
    singular_at_noise = False

    def coefficients(self, t: Tensor) -> PathCoefficients:
        """a, b, ȧ, ḃ, bḃ at times t (any shape)."""
        raise NotImplementedError

    def at(self, t: float) -> dict[str, float]:
        """a, b, da, b_db and g2 (= g²) at one time, as floats, remembered per path.

        Samplers and fields ask for the same few hundred times once per step; computing them
        one by one cost ~0.2 ms of small tensor operations each (up to 40 ms of a run).
        :meth:`remember` fills the memo for a whole time grid in one call.
        """
        memo = self.__dict__.setdefault("_memo", {})
        found = memo.get(t)  # one lookup: another thread's remember() may clear the memo
        if found is None:
            ((_, found),) = self._at_times(torch.tensor([t], dtype=torch.float64))
            memo[t] = found
        return found

    def remember(self, times: Tensor) -> None:
        """Compute :meth:`at` for every time of ``times`` (T+1,) in one vectorized call."""
        rows = self._at_times(times)
        memo = self.__dict__.setdefault("_memo", {})
        if len(memo) > 100_000:  # a long-lived path asked for ever new times
            memo.clear()  # at() reads with one lookup, so this is safe beside it
        memo.update(rows)

    def _at_times(self, times: Tensor) -> list[tuple[float, dict[str, float]]]:
        """(t, what :meth:`at` gives) for every time of ``times``, in one vectorized call."""
        c = self.coefficients(times.to(torch.float64).reshape(-1))
        columns = zip(*(v.tolist() for v in (c.a, c.b, c.da, c.b_db, c.diffusion2)), strict=True)
        keys = ("a", "b", "da", "b_db", "g2")
        return [(t, dict(zip(keys, values, strict=True)))
                for t, values in zip(times.reshape(-1).tolist(), columns, strict=True)]  # fmt: skip

    # --- sampling and training -------------------------------------------------------------
    def sample(
        self, x0: Tensor, t: Tensor | float, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw x_t = a x0 + b ε.

        Args:
            x0: data points, shape (N, 2).
            t: time, scalar or shape (N,).
            generator: for reproducible ε.

        Returns:
            (x_t, ε), both shape (N, 2).
        """
        eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        c = self.coefficients(_as_tensor(t, x0))
        return _col(c.a, x0) * x0 + _col(c.b, x0) * eps, eps

    def target(self, x0: Tensor, eps: Tensor, t: Tensor | float, kind: str) -> Tensor:
        """Regression target for one pair (x0, ε) at time t, shape (N, 2).

        ``eps``: ε (denoising score matching); ``velocity``: u = ȧ x0 + ḃ ε (conditional flow
        matching); ``x0``: x0; ``score``: −ε / b.
        """
        c = self.coefficients(_as_tensor(t, x0))
        if kind == "eps":
            return eps
        if kind == "x0":
            return x0
        if kind == "velocity":
            return _col(c.da, x0) * x0 + _col(c.db, x0) * eps
        if kind == "score":
            return -eps / _col(c.b, x0)
        raise ValueError(f"unknown target kind {kind!r}; choose from {FIELD_KINDS}")

    def prior(self, n: int, t: float, generator=None, dtype=torch.float32, device=None) -> Tensor:
        """Samples of the noise end at time t: N(0, b(t)² I), shape (n, 2).

        The a(t)·x_data part is dropped: a(t) of the data scale where a sampler starts. That is
        at most 1.2 % for the VP schedules (a(1) ≤ 0.012), and ε for flow matching started at
        1 − ε: up to 10 % for a stochastic run with few steps (docs/MATH.md §4). On ve and edm
        (a = 1) it is the data itself, small next to b(1) = σ_max (models/processes.py).
        """
        b = float(self.coefficients(torch.tensor(t, dtype=torch.float64)).b)
        return b * torch.randn(n, 2, generator=generator, dtype=dtype, device=device)

    def stochastic_start(self, eta: float, steps: int) -> float:
        """Latest time a reverse sampler with noise level η may start at.

        For paths singular at t = 1 with η > 0 it is 1 − ε, ε = clip(2 η² / steps, 1e-3, 0.1):
        one Euler–Maruyama step of size h = 1/steps near t = 1 multiplies the state by about
        1 − h η² g²/2, and ε = 2 η² h keeps that factor from overshooting (below 1 in size).
        """
        if not self.singular_at_noise or eta == 0:
            return 1.0
        return 1.0 - min(max(2.0 * eta**2 / steps, 1e-3), 0.1)

    # --- conversions ------------------------------------------------------------------------
    def to_x0(self, value: Tensor, x: Tensor, t: Tensor | float, kind: str) -> Tensor:
        """Convert a field prediction of ``kind`` at (x, t) to the denoiser x̂, shape (N, 2)."""
        c = self.coefficients(_as_tensor(t, x))
        a, b, da, db = (_col(v, x) for v in (c.a, c.b, c.da, c.db))
        if kind == "x0":
            return value
        if kind == "eps":
            return (x - b * value) / a
        if kind == "score":
            return (x + b**2 * value) / a
        if kind == "velocity":
            # v = ȧ x̂ + ḃ (x − a x̂)/b  ⇒  x̂ = (b v − ḃ x) / (ȧ b − ḃ a)
            return (b * value - db * x) / (da * b - db * a)
        raise ValueError(f"unknown field kind {kind!r}; choose from {FIELD_KINDS}")

    def from_x0(self, x0_hat: Tensor, x: Tensor, t: Tensor | float, kind: str) -> Tensor:
        """Convert the denoiser x̂ at (x, t) to a field of ``kind``, shape (N, 2)."""
        c = self.coefficients(_as_tensor(t, x))
        a, b, da, db = (_col(v, x) for v in (c.a, c.b, c.da, c.db))
        if kind == "x0":
            return x0_hat
        eps = (x - a * x0_hat) / b
        if kind == "eps":
            return eps
        if kind == "score":
            return -eps / b
        if kind == "velocity":
            return da * x0_hat + db * eps
        raise ValueError(f"unknown field kind {kind!r}; choose from {FIELD_KINDS}")

    def convert(self, value: Tensor, x: Tensor, t: Tensor | float, src: str, dst: str) -> Tensor:
        """Convert a field prediction between any two of x̂, ε̂, s, v (docs/MATH.md §3)."""
        if src == dst:
            return value
        return self.from_x0(self.to_x0(value, x, t, src), x, t, dst)


def schedule_terms(schedule: Schedule, t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """B(t), β(t) and a = exp(−½ B) of a schedule at times t (VP and sub-VP share them).

    Clamps, not hopes: t into [0, 1], B ≥ 0 and β ≥ 0, so a ∈ (0, 1] and b ∈ [0, 1] on every
    platform's rounding (a B of −1e−20 at t = 0 made b NaN on one libm).
    """
    t = t.clamp(0.0, 1.0)
    integral = schedule.integral(t).clamp_min(0.0)
    beta = schedule.beta(t).clamp_min(0.0)
    return integral, beta, torch.exp(-0.5 * integral)


class VPPath(GaussianPath):
    """Variance-preserving diffusion: a = α(t) = exp(−½ B(t)), b = √(1 − α²)."""

    name = "vp"

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def coefficients(self, t: Tensor) -> PathCoefficients:
        integral, beta, a = schedule_terms(self.schedule, t)
        b = torch.sqrt((-torch.expm1(-integral)).clamp(0.0, 1.0))  # √(1 − α²), no cancellation
        b_db = 0.5 * beta * a**2
        return PathCoefficients(
            a=a,
            b=b,
            da=-0.5 * beta * a,
            db=b_db / b.clamp_min(TINY),
            b_db=b_db,
            f=-0.5 * beta,  # ȧ/a without 0/0 where a underflows (large B in float32)
        )


class LinearFMPath(GaussianPath):
    """Linear flow matching (rectified flow, CondOT): a = 1 − t, b = t."""

    name = "fm"
    singular_at_noise = True

    def coefficients(self, t: Tensor) -> PathCoefficients:
        t = t.clamp(0.0, 1.0)
        one = torch.ones_like(t)
        return PathCoefficients(a=1 - t, b=t, da=-one, db=one, b_db=t)


class TrigPath(GaussianPath):
    """Trigonometric path a = cos(πt/2), b = sin(πt/2): variance preserving, straight in angle."""

    name = "trig"
    singular_at_noise = True

    def coefficients(self, t: Tensor) -> PathCoefficients:
        w = 0.5 * math.pi
        t = t.clamp(0.0, 1.0)
        a, b = torch.cos(w * t).clamp(0.0, 1.0), torch.sin(w * t).clamp(0.0, 1.0)
        return PathCoefficients(a=a, b=b, da=-w * b, db=w * a, b_db=w * a * b)


def path_curves(path: GaussianPath, n: int = 201) -> dict[str, np.ndarray]:
    """a(t), b(t), g²(t) (β(t) for VP) and the log-SNR log(a²/b²) on n uniform times from 0
    to 1, as float64 arrays (n,) keyed t, a, b, g2, log_snr. g² is clipped at 1e3 only on
    paths where it diverges (``singular_at_noise``: fm, trig); elsewhere it is finite and kept
    (VE's reaches 2 σ_max² log(σ_max/σ_min), 1,400 at its defaults)."""
    t = torch.linspace(0, 1, n, dtype=torch.float64)
    c = path.coefficients(t)
    g2 = c.diffusion2.clamp(max=1e3) if path.singular_at_noise else c.diffusion2
    g2 = torch.nan_to_num(g2, posinf=1e3)
    snr = (c.a**2).clamp_min(1e-12) / (c.b**2).clamp_min(1e-12)
    return {"t": t.numpy(), "a": c.a.numpy(), "b": c.b.numpy(), "g2": g2.numpy(),
            "log_snr": torch.log(snr).numpy()}  # fmt: skip


PATHS = ("vp", "subvp", "ve", "edm", "fm", "trig")


def make_path(
    name: str,
    schedule: Schedule | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
) -> GaussianPath:
    """Build a path by name; ``vp`` and ``subvp`` need a schedule, ``ve`` and ``edm`` take
    σ_min, σ_max (None: the process's defaults, models/processes.py); other paths ignore
    what they do not use."""
    if name == "vp":
        if schedule is None:
            raise ValueError("the vp path needs a schedule")
        return VPPath(schedule)
    if name == "fm":
        return LinearFMPath()
    if name == "trig":
        return TrigPath()
    if name in ("subvp", "ve", "edm"):
        from models.processes import make_process  # it imports this module

        return make_process(name, schedule, sigma_min, sigma_max)
    raise ValueError(f"unknown process {name!r}; choose from {', '.join(PATHS)}")

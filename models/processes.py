"""Three more Gaussian paths: sub-VP, VE (Song et al. 2021) and EDM (Karras et al. 2022).

Each is x_t = a(t) x₀ + b(t) ε on the one time axis t ∈ [0, 1] (t = 0 data, t = 1 noise) of
docs/MATH.md §1-2, a :class:`models.paths.GaussianPath` with its coefficients only; sampling,
targets, conversions and every solver come from the base class.

| name | a(t) | b(t) | f | g² |
|---|---|---|---|---|
| ``subvp`` | e^{−B/2} | 1 − e^{−B} | −½β | β (1 − e^{−2B}) |
| ``ve`` | 1 | σ_min (σ_max/σ_min)^t | 0 | 2 σ² log(σ_max/σ_min) |
| ``edm`` | 1 | (σ_min^{1/ρ} + t (σ_max^{1/ρ} − σ_min^{1/ρ}))^ρ | 0 | 2 σ σ̇ |

VE and EDM keep b(0) = σ_min > 0: their data end is the data blurred by σ_min (0.01 and 0.002,
well below every data set's σ_d ≥ 0.04), λ = −log σ is finite on all of [0, 1], and their noise
end N(0, σ_max² I) still holds the data unscaled (a = 1), which is why σ_max must be large next
to the data's spread (:data:`VE_SIGMA_MAX`).

Every coefficient clamps t into [0, 1] first, so nothing is NaN at t = 0, 1 or an ulp beyond.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from models.paths import GaussianPath, PathCoefficients, schedule_terms
from models.schedules import Schedule

# Song & Ermon (2020, "Improved techniques", technique 1) take σ_max as large as the largest
# distance between two training points, so that p_1 = p_data * N(0, σ_max² I) is close to the
# N(0, σ_max² I) a sampler starts from, whatever the data. The built-in data sets' largest
# distances between two mixture components are 4.0 (8 gaussians, circles) to 5.5
# (checkerboard), 6 with their σ_d; user points may lie anywhere in the default view [−4, 4]²,
# whose diagonal is 11.3. σ_max = 10 covers both (about twice the built-in sets' span) and
# makes the start's error small: N(0, σ_max² I) lacks the data's variance s² per coordinate
# (s ≈ 1.0-1.4), KL(N(0, σ_max² I) ‖ p_1) ≈ (d/4)(s²/σ_max²)² ≈ 2·10⁻⁴ (measured by Monte Carlo:
# 2.7·10⁻⁴ for 8 gaussians, 1.3·10⁻⁴ checkerboard; 7·10⁻³ at σ_max = 4). Larger σ_max only
# stiffens the ODE (its rate grows like log(σ_max/σ_min)) and spreads the noise end wider.
VE_SIGMA_MIN, VE_SIGMA_MAX = 0.01, 10.0
# EDM's σ_min = 0.002 (Karras et al. 2022, as for images); its σ_max = 80 is for pixel data of
# thousands of dimensions; on these 2D data the same rule as VE's gives 10.
EDM_SIGMA_MIN, EDM_SIGMA_MAX, EDM_RHO = 0.002, 10.0, 7.0
# σ_data of EDM's preconditioning: the data's standard deviation per coordinate. Karras et al.
# use 0.5 for images in [−1, 1]. The built-in data sets (mixture_std, with their σ_d): 8 gaussians
# 1.42, moons 1.03 (about 1.06 about their centre), circles 1.12, swiss roll 1.15, checkerboard
# 1.16, spirals 1.21; 1.2 is their round middle. A network may set it per data set
# (:func:`mixture_std`).
EDM_SIGMA_DATA = 1.2
SIGMA_LIMIT = 1000.0  # largest σ_max accepted (models/solvers/grids.py spaces σ up to 1e3)


def check_sigmas(sigma_min: float, sigma_max: float) -> None:
    """ValueError (one line) unless both are finite and 0 < σ_min < σ_max ≤ SIGMA_LIMIT."""
    for name, value in (("sigma-min", sigma_min), ("sigma-max", sigma_max)):
        try:
            finite = math.isfinite(value)
        except TypeError:
            finite = False
        if not finite:
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not sigma_min > 0:
        raise ValueError(f"sigma-min must be > 0, got {sigma_min:g}")
    if not sigma_min < sigma_max:
        raise ValueError(f"sigma-min ({sigma_min:g}) must be below sigma-max ({sigma_max:g})")
    if not sigma_max <= SIGMA_LIMIT:
        raise ValueError(f"sigma-max must be <= {SIGMA_LIMIT:g}, got {sigma_max:g}")


def mixture_std(points: Tensor, sigma: float) -> float:
    """Standard deviation per coordinate of the mixture (1/M) Σ N(x_i, σ² I) (a data set's
    ``Reference``): √(mean_i |x_i − x̄|² / 2 + σ²), EDM's σ_data for that data set."""
    p = points.to(torch.float64)
    spread = float(((p - p.mean(0)) ** 2).sum(1).mean()) / p.shape[1]
    return math.sqrt(spread + sigma**2)


class SubVPPath(GaussianPath):
    """Sub-VP diffusion (Song et al. 2021): a = e^{−B/2}, b = 1 − e^{−B}, from a VP schedule.

    Var(x_t | x₀) = (1 − e^{−B})² ≤ 1 − e^{−B} (VP's): less noise at every t, the same a.
    Forward SDE: f = −½β, g² = β (1 − e^{−2B}); ḃ = β e^{−B} is finite at t = 0 (VP's is not),
    b ≈ B(t) there (VP's b ≈ √B(t)). λ(0) = +∞ as on VP.
    """

    name = "subvp"

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def coefficients(self, t: Tensor) -> PathCoefficients:
        integral, beta, a = schedule_terms(self.schedule, t)
        decay = torch.exp(-integral)  # e^{−B} = a²
        b = (-torch.expm1(-integral)).clamp(0.0, 1.0)  # 1 − e^{−B}, no cancellation near 0
        db = beta * decay
        return PathCoefficients(a=a, b=b, da=-0.5 * beta * a, db=db, b_db=b * db, f=-0.5 * beta)


class _SigmaPath(GaussianPath):
    """a = 1, b = σ(t) increasing from σ_min > 0 to σ_max: f = 0, g² = d(σ²)/dt = 2 σ σ̇."""

    def __init__(self, sigma_min: float, sigma_max: float):
        check_sigmas(sigma_min, sigma_max)
        self.sigma_min, self.sigma_max = float(sigma_min), float(sigma_max)

    def _sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """(σ, σ̇) at t ∈ [0, 1]."""
        raise NotImplementedError

    def coefficients(self, t: Tensor) -> PathCoefficients:
        t = t.clamp(0.0, 1.0)
        sigma, dsigma = self._sigma(t)
        sigma = sigma.clamp(self.sigma_min, self.sigma_max)  # the ends exactly, on any rounding
        one, zero = torch.ones_like(t), torch.zeros_like(t)
        return PathCoefficients(a=one, b=sigma, da=zero, db=dsigma, b_db=sigma * dsigma, f=zero)

    def sigma(self, t: Tensor | float) -> Tensor:
        """σ(t), float64 of t's shape."""
        return self.coefficients(torch.as_tensor(t, dtype=torch.float64)).b

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sigma_min={self.sigma_min:g}, sigma_max={self.sigma_max:g})"


class VEPath(_SigmaPath):
    """Variance-exploding diffusion (SMLD / NCSN++, Song et al. 2021): a = 1,
    b = σ(t) = σ_min (σ_max/σ_min)^t, f = 0, g² = 2 σ² log(σ_max/σ_min).

    Defaults σ_min = 0.01 and σ_max = 10: Song & Ermon's rule, σ_max about the largest distance
    between two data points. The built-in data sets span at most 5.5 (checkerboard; 4.0 for
    8 gaussians and circles) and user points lie in the view [−4, 4]² (diagonal 11.3); 10 is
    above the first and near the second, so the start N(0, σ_max² I), which drops the unscaled
    data from p_1 (a = 1), is off by a KL of about (d/4)(s²/σ_max²)² ≈ 2·10⁻⁴ (s² ≈ 2 the data's
    variance per coordinate). The noise end is N(0, 100 I): a view must reach about
    ±3 σ_max = ±30 to show it.
    """

    name = "ve"

    def __init__(self, sigma_min: float = VE_SIGMA_MIN, sigma_max: float = VE_SIGMA_MAX):
        super().__init__(sigma_min, sigma_max)

    def _sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        rate = math.log(self.sigma_max / self.sigma_min)
        sigma = torch.exp(math.log(self.sigma_min) + rate * t)
        return sigma, rate * sigma


class EDMPath(_SigmaPath):
    """EDM (Karras et al. 2022) with its ρ-schedule as the time variable: a = 1,
    b = σ(t) = (σ_min^{1/ρ} + t (σ_max^{1/ρ} − σ_min^{1/ρ}))^ρ, ρ = 7.

    A uniform grid in t is EDM's own discretization σ_i (their eq. 5, read from t = 1 down),
    and the Karras grid of models/solvers/grids.py, uniform in σ^{1/ρ}, is exactly that
    uniform grid here. f = 0, g² = 2 σ σ̇, σ̇ = ρ σ^{1−1/ρ} (σ_max^{1/ρ} − σ_min^{1/ρ}); the
    probability-flow ODE is EDM's dx/dσ = (x − D(x; σ))/σ times σ̇. σ_min = 0.002 is EDM's;
    σ_max = 10 follows VE's rule on these data (EDM's 80 is for images). ``sigma_data`` is the
    data's std per coordinate for :meth:`preconditioning` (EDM: 0.5; here about 1.2, see
    :data:`EDM_SIGMA_DATA` and :func:`mixture_std`).
    """

    name = "edm"

    def __init__(
        self,
        sigma_min: float = EDM_SIGMA_MIN,
        sigma_max: float = EDM_SIGMA_MAX,
        sigma_data: float = EDM_SIGMA_DATA,
        rho: float = EDM_RHO,
    ):
        super().__init__(sigma_min, sigma_max)
        if not (math.isfinite(sigma_data) and sigma_data > 0):
            raise ValueError(f"sigma-data must be a finite number > 0, got {sigma_data!r}")
        if not (math.isfinite(rho) and rho >= 1):
            raise ValueError(f"rho must be a finite number >= 1, got {rho!r}")
        self.sigma_data, self.rho = float(sigma_data), float(rho)

    def _roots(self) -> tuple[float, float]:
        """(σ_min^{1/ρ}, σ_max^{1/ρ} − σ_min^{1/ρ})."""
        low = self.sigma_min ** (1.0 / self.rho)
        return low, self.sigma_max ** (1.0 / self.rho) - low

    def _sigma(self, t: Tensor) -> tuple[Tensor, Tensor]:
        low, span = self._roots()
        root = low + span * t
        return root**self.rho, self.rho * span * root ** (self.rho - 1.0)

    def time_of(self, sigma: Tensor | float) -> Tensor:
        """t(σ) = (σ^{1/ρ} − σ_min^{1/ρ}) / (σ_max^{1/ρ} − σ_min^{1/ρ}), clamped into [0, 1]."""
        low, span = self._roots()
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        return ((sigma.clamp_min(0.0) ** (1.0 / self.rho) - low) / span).clamp(0.0, 1.0)

    def preconditioning(self, sigma: Tensor | float) -> dict[str, Tensor]:
        """EDM's preconditioning (Karras et al. 2022, Table 1) at noise level σ > 0: a network
        F gives the denoiser D(x; σ) = c_skip x + c_out F(c_in x, c_noise), with

            c_skip = σ_d² / (σ² + σ_d²),     c_out = σ σ_d / √(σ² + σ_d²),
            c_in = 1 / √(σ² + σ_d²),         c_noise = ¼ ln σ,

        σ_d = ``sigma_data``: unit-variance inputs c_in x and training targets
        (x₀ − c_skip x)/c_out at every σ. Returns float64 tensors of σ's shape, keyed
        c_skip, c_out, c_in, c_noise.
        """
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        if not bool((sigma > 0).all()) or not bool(torch.isfinite(sigma).all()):
            raise ValueError("preconditioning needs finite noise levels sigma > 0")
        sd2 = self.sigma_data**2
        total = sigma**2 + sd2
        return {
            "c_skip": sd2 / total,
            "c_out": sigma * self.sigma_data / torch.sqrt(total),
            "c_in": 1.0 / torch.sqrt(total),
            "c_noise": 0.25 * torch.log(sigma),
        }

    def __repr__(self) -> str:
        return (f"EDMPath(sigma_min={self.sigma_min:g}, sigma_max={self.sigma_max:g}, "
                f"sigma_data={self.sigma_data:g}, rho={self.rho:g})")  # fmt: skip


DEFAULT_SIGMAS = {"ve": (VE_SIGMA_MIN, VE_SIGMA_MAX), "edm": (EDM_SIGMA_MIN, EDM_SIGMA_MAX)}


def default_sigmas(name: str) -> tuple[float, float]:
    """(σ_min, σ_max) that ``ve`` or ``edm`` uses when none is given."""
    return DEFAULT_SIGMAS[name]


def make_process(
    name: str,
    schedule: Schedule | None = None,
    sigma_min: float | None = None,
    sigma_max: float | None = None,
) -> GaussianPath:
    """Build ``subvp`` (needs a schedule), ``ve`` or ``edm``; None sigmas: the defaults."""
    if name == "subvp":
        if schedule is None:
            raise ValueError("the subvp path needs a schedule")
        return SubVPPath(schedule)
    if name not in DEFAULT_SIGMAS:
        raise ValueError(f"unknown process {name!r}; choose from subvp, ve, edm")
    low, high = DEFAULT_SIGMAS[name]
    low, high = low if sigma_min is None else sigma_min, high if sigma_max is None else sigma_max
    return VEPath(low, high) if name == "ve" else EDMPath(low, high)

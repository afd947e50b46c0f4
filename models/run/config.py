"""The settings of one run (``RunConfig``) and the limits they must keep.

:meth:`RunConfig.validate` says in one sentence what is wrong with a setting; the command
line, the app and the exports all ask it.
"""

from __future__ import annotations

import contextlib
import math
import operator
from dataclasses import asdict, dataclass

import torch

from models.datasets import DATASETS
from models.density import DEFAULT_BANDWIDTH, Grid
from models.logdensity import CARRIERS
from models.paths import PATHS
from models.schedules import SCHEDULES, make_schedule
from models.solvers import GRIDS, SOLVERS, default_t_min, solvers_for

MAX_STEPS = 1000
MAX_PARTICLES = 50_000
# cells of one density stack, (T+1) x R²: 1001 frames at 256² are 262 MB of float32 a stack, and
# a run holds a few stacks (histogram, exact, PDE) and their float64 work arrays at once: at
# 512² and 1000 steps one run took 7.5 GB
MAX_GRID_CELLS = 1001 * 256 * 256
KINDS = ("ode", "sde", "conditional")
DIRECTIONS = ("forward", "reverse")
# Grids that reach t = 0 itself on every path: a reverse run on them stops at t_min (0 by
# default: the exact field is finite there); the grids spaced in log-SNR need λ finite, so they
# stop at the process's t_min at the earliest (models/solvers/grids.py).
GRIDS_TO_ZERO = ("uniform", "quadratic")
RTOL_RANGE, ATOL_RANGE = (1e-10, 0.1), (1e-12, 0.1)


# --- the rules every caller asks (the command line, the app's state and its controls) ------
def noise_level(kind: str, eta: float | None) -> float:
    """η a run uses: the SDE's (1, Anderson's reverse SDE, unless given); the ODE and the
    conditional paths have no noise (η = 0), whatever ``eta`` says."""
    if kind != "sde":
        return 0.0
    return 1.0 if eta is None else float(eta)


def solver_applies(solver: str, eta: float) -> bool:
    """Whether ``solver`` can step a run of noise level η: every solver integrates the ODE
    (η = 0); at η > 0 only those with a stochastic form (``models.solvers.solvers_for``)."""
    return solver in solvers_for(min(max(eta, 0.0), 1.0))


@dataclass
class RunConfig:
    """Every setting of one run; :meth:`validate` says in one sentence what is wrong."""

    process: str = "fm"
    dataset: str = "8gaussians"
    direction: str = "reverse"
    kind: str = "ode"
    eta: float | None = None  # the SDE's η (None: 1); see noise_level
    solver: str = "euler"
    steps: int = 100
    particles: int = 2000
    seed: int = 0
    schedule: str = "linear"
    beta_min: float = 0.1
    beta_max: float = 20.0
    sigma_min: float | None = None  # σ_min of ve and edm (None: the process's default)
    sigma_max: float | None = None  # σ_max of ve and edm (None: the process's default)
    shift: float = 2.0  # the shifted cosine schedule's shift s (models/schedules.py)
    schedule_points: str = ""  # the drawn schedule's control points "t:λ,…" (schedule points)
    source: str = "gaussian"  # what linear flow matching transports: N(0, I) or a data set
    n_reference: int = 1000
    resolution: int = 128
    bandwidth: float = DEFAULT_BANDWIDTH
    extent: tuple[float, float, float, float] = (-4.0, 4.0, -4.0, 4.0)
    device: str = "cpu"
    exact_density: bool = True
    pde: bool = False  # also solve the Fokker–Planck / continuity equation on the grid
    log_density: bool = False  # carry log p_t along the particles (ODE runs only)
    time_grid: str = "uniform"  # models.solvers.GRIDS
    t_min: float = 0.0  # where a reverse run stops; see data_end
    rtol: float = 1e-5  # tolerances of the adaptive solver (dopri5)
    atol: float = 1e-6
    guidance_class: int | None = None  # the class a guided run aims at (None: unguided)
    guidance_kind: str = "cfg"  # models.guidance.GUIDANCE_KINDS
    guidance: float | None = None  # w of cfg and classifier guidance (None: 1); λ of
    # divergence guidance (None: models.divergence.DEFAULT_LAMBDA)
    hutchinson: bool = False  # divergence guidance: Hutchinson's one-probe estimate

    def __post_init__(self) -> None:
        if self.guidance is None:
            from models.divergence import DEFAULT_LAMBDA

            self.guidance = DEFAULT_LAMBDA if self.guidance_kind == "divergence" else 1.0
        if self.guidance_class is not None and not isinstance(self.guidance_class, bool):
            with contextlib.suppress(TypeError):  # numpy's integers are class numbers too
                self.guidance_class = operator.index(self.guidance_class)

    @property
    def guided(self) -> bool:
        """Whether guidance changes the field: a class to aim at, or divergence guidance."""
        return self.guidance_class is not None or self.guidance_kind == "divergence"

    @property
    def grid(self) -> Grid:
        """The grid of the run's density frames."""
        return Grid(tuple(self.extent), (self.resolution, self.resolution))

    @property
    def data_end(self) -> float:
        """Where a reverse run stops: ``t_min``, and on the grids spaced in log-SNR no earlier
        than the process's default t_min (λ must be finite there)."""
        if self.time_grid in GRIDS_TO_ZERO:
            return float(self.t_min) + 0.0  # + 0.0: -0.0 is 0
        return max(float(self.t_min), default_t_min(self.process))

    @property
    def noise_level(self) -> float:
        """η the run uses (:func:`noise_level`)."""
        return noise_level(self.kind, self.eta)

    def validate(self) -> None:
        """Raise ValueError with a one-line message for any bad setting."""
        for name in ("eta", "beta_min", "beta_max", "bandwidth", "t_min", "rtol", "atol"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name.replace('_', '-')} must be a finite number, got {value}")
        checks = [
            (self.process in PATHS, f"unknown process {self.process!r}; choose from {PATHS}"),
            (
                self.dataset in DATASETS or self.dataset == "points",
                f"unknown dataset {self.dataset!r}",
            ),
            (self.direction in DIRECTIONS, f"direction must be one of {DIRECTIONS}"),
            (self.kind in KINDS, f"kind must be one of {KINDS}"),
            (self.solver in SOLVERS, f"solver must be one of {tuple(SOLVERS)}"),
            (self.time_grid in GRIDS, f"time-grid must be one of {GRIDS}"),
            (0 <= self.t_min <= 0.5, f"t-min must be in [0, 0.5], got {self.t_min}"),
            (
                RTOL_RANGE[0] <= self.rtol <= RTOL_RANGE[1],
                f"rtol must be in [{RTOL_RANGE[0]:g}, {RTOL_RANGE[1]:g}], got {self.rtol:g}",
            ),
            (
                ATOL_RANGE[0] <= self.atol <= ATOL_RANGE[1],
                f"atol must be in [{ATOL_RANGE[0]:g}, {ATOL_RANGE[1]:g}], got {self.atol:g}",
            ),
            (self.schedule in SCHEDULES, f"schedule must be one of {tuple(SCHEDULES)}"),
            (1 <= self.steps <= MAX_STEPS, f"steps must be in 1..{MAX_STEPS}, got {self.steps}"),
            (
                1 <= self.particles <= MAX_PARTICLES,
                f"particles must be in 1..{MAX_PARTICLES}, got {self.particles}",
            ),
            (
                self.eta is None or 0 <= self.eta <= 1,
                f"eta must be in [0, 1], got {self.eta}",
            ),
            (
                self.kind == "sde" or not self.eta,
                f"eta is the SDE's noise level; kind {self.kind} runs without noise "
                f"(for eta {self.eta}, use --kind sde)",
            ),
            (self.beta_min >= 0, f"beta-min must be >= 0, got {self.beta_min}"),
            (
                self.beta_min <= self.beta_max,
                f"beta-min ({self.beta_min}) must not exceed beta-max ({self.beta_max})",
            ),
            (self.beta_max <= 1000, f"beta-max must be <= 1000, got {self.beta_max}"),
            (self.beta_max > 0 or self.schedule != "linear", "beta-max must be > 0"),
            (8 <= self.resolution <= 512, f"resolution must be in 8..512, got {self.resolution}"),
            (
                (self.steps + 1) * self.resolution**2 <= MAX_GRID_CELLS,
                f"{self.steps} steps at resolution {self.resolution} make density frames of "
                f"{(self.steps + 1) * self.resolution**2 * 4 / 1e6:.0f} MB a stack (at most "
                f"{MAX_GRID_CELLS * 4 / 1e6:.0f} MB); lower the resolution or the steps",
            ),
            (self.bandwidth >= 0, f"bandwidth must be >= 0, got {self.bandwidth}"),
            (1 <= self.n_reference <= 4000, "n-reference must be in 1..4000"),
            (self.device in ("cpu", "cuda"), f"device must be cpu or cuda, got {self.device!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self._validate_sigmas()
        self._validate_path()
        self._validate_guidance()
        steps_noise = self.solver_used not in ("closed-form", "exact-transition")
        if steps_noise and not solver_applies(self.solver, self.noise_level):
            raise ValueError(
                f"the {self.solver} solver has no stochastic form (it integrates the ODE, "
                f"eta = 0); for the SDE use --solver {' or '.join(solvers_for(1.0))}"
            )
        if self.log_density and (self.kind != "ode" or self.noise_level != 0):
            raise ValueError(
                "log-density is carried along ODE runs only (kind ode, eta 0), "
                f"not kind {self.kind} with eta {self.noise_level:g}"
            )
        if self.log_density and self.solver not in CARRIERS:
            raise ValueError(
                f"log-density is carried by the solvers {', '.join(CARRIERS)}, not "
                f"{self.solver} (it steps on x̂ and ε̂, which log p has not)"
            )
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device cuda asked for, but no CUDA device is available")

    def _validate_path(self) -> None:
        """The schedule's own settings (a drawn schedule's points, the shift) and the source of
        flow matching, each refused in one line."""
        if self.schedule == "points" and not self.schedule_points:
            raise ValueError("schedule points needs its control points (--schedule-points)")
        if self.schedule_points and self.schedule != "points":
            raise ValueError("--schedule-points draws a schedule: give it with --schedule points")
        if not (math.isfinite(self.shift) and 0.01 <= self.shift <= 100):
            raise ValueError(f"shift must be in [0.01, 100], got {self.shift}")
        if self.schedule == "points":
            make_schedule("points", points=self.schedule_points)  # its one-line refusal
        if self.source != "gaussian":
            if self.source not in DATASETS:
                raise ValueError(f"unknown source {self.source!r}; choose gaussian or one of "
                                 f"{', '.join(DATASETS)}")  # fmt: skip
            if self.process != "fm":
                raise ValueError(f"a data set as the source is for flow matching (fm), "
                                 f"not {self.process}: diffusion starts from noise")  # fmt: skip
            # DDIM's η-family and the exact transition draw x_t | x0 as a Gaussian, which it
            # is not here; Euler–Maruyama on the exact score is right but stiff: the score
            # grows like 1/σ_s² near t = 1, where g² diverges (docs/MATH.md §5.1)
            if self.kind == "sde" and self.noise_level > 0:
                raise ValueError("from a data set as the source, run the ODE or the "
                                 "conditional paths: the SDE's noise is Gaussian, and its "
                                 "Euler-Maruyama steps blow up near the source")  # fmt: skip
            if self.log_density:
                raise ValueError("log-density is carried from a Gaussian noise end; a data set "
                                 "as the source has none")  # fmt: skip

    def _validate_guidance(self) -> None:
        """Guidance steers generation: reverse ODE or SDE runs from Gaussian noise, a class of
        the data set (checked against its labels where the run is built), w in 0..10 or λ in
        the divergence guidance's range."""
        from models.guidance import GUIDANCE_KINDS, LAMBDA_RANGE, WEIGHT_RANGE

        kind, value, label = self.guidance_kind, self.guidance, self.guidance_class
        if kind not in GUIDANCE_KINDS:
            raise ValueError(f"guidance-kind must be one of {GUIDANCE_KINDS}, got {kind!r}")
        if not math.isfinite(value):
            raise ValueError(f"guidance must be a finite number, got {value}")
        low, high = LAMBDA_RANGE if kind == "divergence" else WEIGHT_RANGE
        name = "λ of divergence guidance" if kind == "divergence" else "the guidance weight w"
        if not low <= value <= high:
            raise ValueError(f"{name} must be in [{low:g}, {high:g}], got {value:g}")
        if label is not None and not (type(label) is int and 0 <= label <= 63):  # no bools
            raise ValueError(f"class must be a label 0..63 of the data set, got {label!r}")
        if not isinstance(self.hutchinson, bool):
            raise ValueError(f"hutchinson must be true or false, got {self.hutchinson!r}")
        if kind == "classifier" and label is None:
            raise ValueError("classifier guidance steers toward a class: give one (--class)")
        if self.hutchinson and kind != "divergence":
            raise ValueError("hutchinson estimates the divergence: use it with "
                             "--guidance-kind divergence")  # fmt: skip
        if not self.guided:
            return
        if self.direction != "reverse" or self.kind == "conditional":
            raise ValueError("guidance steers generation: use it on reverse ode or sde runs "
                             f"(not {self.direction} {self.kind})")  # fmt: skip
        if self.source != "gaussian":
            raise ValueError("guidance starts from Gaussian noise, not from a data set as the "
                             "source")  # fmt: skip
        if self.log_density:
            raise ValueError("log-density is carried along unguided runs only")
        if kind == "divergence" and self.noise_level > 0:
            raise ValueError("divergence guidance adds to an ODE step (kind ode, eta 0)")

    def _validate_sigmas(self) -> None:
        """σ_min and σ_max of ve and edm (None: the process's default): finite, and
        0 < σ_min < σ_max <= 1000 with the process's default standing in for a None."""
        from models.processes import SIGMA_LIMIT, check_sigmas, default_sigmas

        low, high = self.sigma_min, self.sigma_max
        for name, value in (("sigma-min", low), ("sigma-max", high)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if low is not None and not low > 0:
            raise ValueError(f"sigma-min must be > 0, got {low:g}")
        if high is not None and not 0 < high <= SIGMA_LIMIT:
            raise ValueError(f"sigma-max must be in (0, {SIGMA_LIMIT:g}], got {high:g}")
        if self.process in ("ve", "edm"):
            default_low, default_high = default_sigmas(self.process)
            low = default_low if low is None else low
            high = default_high if high is None else high
        if low is not None and high is not None:
            check_sigmas(low, high)

    @property
    def solver_used(self) -> str:
        """The integrator this run uses (``models.run.simulate.trajectories`` runs it).

        Conditional paths are closed-form; the forward SDE at η = 1 uses the exact Gaussian
        transition; at any other η > 0 Euler steps Euler–Maruyama and DDIM its η-family (a
        solver without a stochastic form is refused by :meth:`validate`).
        """
        eta = self.noise_level
        if self.kind == "conditional":
            return "closed-form"
        if self.direction == "forward" and self.kind == "sde" and eta == 1.0:
            return "exact-transition"
        if eta > 0 and self.solver == "euler":
            return "euler-maruyama"
        return self.solver

    def to_dict(self) -> dict:
        """Every setting; ``eta`` and ``t_min`` are the ones used, ``solver`` what ran, and
        ``solver_requested``, ``t_min_requested`` what was asked."""
        d = asdict(self)
        d["eta"] = self.noise_level
        d["solver_requested"], d["solver"] = self.solver, self.solver_used
        # a forward run starts at t = 0 whatever t_min says
        end = self.data_end if self.direction == "reverse" else 0.0
        d["t_min_requested"], d["t_min"] = self.t_min, end
        if self.process in ("ve", "edm"):  # the σ range used (None asked: the defaults)
            from models.processes import default_sigmas

            low, high = default_sigmas(self.process)
            d["sigma_min"] = low if self.sigma_min is None else self.sigma_min
            d["sigma_max"] = high if self.sigma_max is None else self.sigma_max
        return d

"""The settings of one run (``RunConfig``) and the limits they must keep.

:meth:`RunConfig.validate` says in one sentence what is wrong with a setting; the command
line, the app and the exports all ask it.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch

from models.datasets import DATASETS
from models.density import DEFAULT_BANDWIDTH, Grid
from models.paths import PATHS
from models.samplers import SAMPLERS
from models.schedules import SCHEDULES

MAX_STEPS = 1000
MAX_PARTICLES = 50_000
# cells of one density stack, (T+1) x R²: 1001 frames at 256² are 262 MB of float32 a stack, and
# a run holds a few stacks (histogram, exact, PDE) and their float64 work arrays at once: at
# 512² and 1000 steps one run took 7.5 GB
MAX_GRID_CELLS = 1001 * 256 * 256
KINDS = ("ode", "sde", "conditional")
DIRECTIONS = ("forward", "reverse")


@dataclass
class RunConfig:
    """Every setting of one run; :meth:`validate` says in one sentence what is wrong."""

    process: str = "fm"
    dataset: str = "8gaussians"
    direction: str = "reverse"
    kind: str = "ode"
    eta: float | None = None  # None: 0 for ode, 1 for sde
    solver: str = "euler"
    steps: int = 100
    particles: int = 2000
    seed: int = 0
    schedule: str = "linear"
    beta_min: float = 0.1
    beta_max: float = 20.0
    n_reference: int = 1000
    resolution: int = 128
    bandwidth: float = DEFAULT_BANDWIDTH
    extent: tuple[float, float, float, float] = (-4.0, 4.0, -4.0, 4.0)
    device: str = "cpu"
    exact_density: bool = True
    pde: bool = False  # also solve the Fokker–Planck / continuity equation on the grid
    log_density: bool = False  # carry log p_t along the particles (ODE runs only)

    @property
    def grid(self) -> Grid:
        """The grid of the run's density frames."""
        return Grid(tuple(self.extent), (self.resolution, self.resolution))

    @property
    def noise_level(self) -> float:
        """η actually used: the explicit one, else 0 for the ODE and 1 for the SDE."""
        if self.eta is not None:
            return float(self.eta)
        return 1.0 if self.kind == "sde" else 0.0

    def validate(self) -> None:
        """Raise ValueError with a one-line message for any bad setting."""
        for name in ("eta", "beta_min", "beta_max", "bandwidth"):
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
            (self.solver in SAMPLERS, f"solver must be one of {tuple(SAMPLERS)}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {tuple(SCHEDULES)}"),
            (1 <= self.steps <= MAX_STEPS, f"steps must be in 1..{MAX_STEPS}, got {self.steps}"),
            (
                1 <= self.particles <= MAX_PARTICLES,
                f"particles must be in 1..{MAX_PARTICLES}, got {self.particles}",
            ),
            (0 <= self.noise_level <= 1, f"eta must be in [0, 1], got {self.noise_level}"),
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
        if (
            self.kind == "sde"
            and self.direction == "reverse"
            and self.solver == "heun"
            and self.noise_level > 0
        ):
            raise ValueError(
                "the heun solver is for the ODE (eta = 0); use --solver euler for the SDE"
            )
        if self.log_density and (self.kind != "ode" or self.noise_level != 0):
            raise ValueError(
                "log-density is carried along ODE runs only (kind ode, eta 0), "
                f"not kind {self.kind} with eta {self.noise_level:g}"
            )
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device cuda asked for, but no CUDA device is available")

    @property
    def solver_used(self) -> str:
        """The integrator this run actually uses (see :func:`trajectories`).

        Conditional paths are closed-form; the forward SDE at η = 1 uses the exact Gaussian
        transition; any other η > 0 steps Euler–Maruyama whatever ``solver`` says (Heun is for
        the ODE).
        """
        eta = self.noise_level
        if self.kind == "conditional":
            return "closed-form"
        if self.direction == "forward" and self.kind == "sde" and eta == 1.0:
            return "exact-transition"
        if eta > 0:
            return "euler-maruyama"
        return self.solver

    def to_json(self) -> str:
        """Every setting as JSON; ``solver`` is what ran, ``solver_requested`` what was asked."""
        d = asdict(self)
        d["eta"] = self.noise_level
        d["solver_requested"], d["solver"] = self.solver, self.solver_used
        return json.dumps(d, sort_keys=True)

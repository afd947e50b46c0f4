"""All settings of a flowscope session in one GUI-free ``param.Parameterized``.

Views are functions of this object; the URL mirrors its parameters. Nothing here imports Panel
or Bokeh, so it is tested by setting parameters and reading arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import param
import torch

from app.session.fields import FIELDS, TRAIN_SEED, TrainedModel, resolve
from app.session.guidance_settings import APP_REFERENCE, GuidanceSettings
from app.session.path_settings import DATASET_LABELS, PathSettings
from app.session.readouts import SOLVER_LABELS, memorization_text, run_notice, solver_text
from models.datasets import DATASETS, Points, make_dataset
from models.evaluation.memorization import memorization_delta, memorized_share, training_points
from models.logdensity import CARRIERS
from models.overlay import run_overlay
from models.paths import path_curves
from models.run.config import RunConfig, noise_level, solver_applies
from models.run.result import FieldSource, Memorization, RunResult
from models.run.simulate import exact_frames, path_of, simulate, view_extent
from models.solvers import SOLVERS

USER_LABEL = "your points (drawn or uploaded)"
# Work per run is capped so that one user cannot stall a shared server or its memory: N x (T+1)
# positions at most, which bounds the compute (N x T steps), what the server holds (32 MB of
# float32 trajectories) and what it sends (16 MB of int16 positions). The defaults use 5 %.
MAX_PARTICLE_FRAMES = 4_000_000
DIFFERENCE_NEEDS_LEARNED = (
    "The learned − exact overlay needs a learned field (pretrained or "
    "trained here); this run uses an exact one."
)
APP_RESOLUTION = 96  # density grid in the app: 96² uint8 frames, ~1 MB per 100 frames
ARROWS = 17  # the field overlay is a 17 x 17 grid of arrows

# Settings that change what is computed (a recompute) versus only what is drawn (client-side).
COMPUTE_PARAMS = (
    "process", "dataset", "direction", "kind", "eta", "solver", "time_grid", "t_min", "rtol",
    "steps", "particles", "seed", "device", "schedule", "beta_min", "beta_max", "shift",
    "schedule_points", "sigma_min", "sigma_max", "source", "field", "train_size",
    "guidance_class", "guidance_kind", "guidance_weight", "divergence_lambda", "hutchinson",
)  # fmt: skip
MAX_TRAIN_SIZE = 4000  # M in the app: the exact field of M points costs N x M per step
DATA_PARAMS = ("points", "point_labels")  # also recompute; travel in the URL in their own form
DISPLAY_PARAMS = ("trail", "density_source", "overlay", "contours", "shade", "reference", "fps",
                  "loop", "posterior")  # fmt: skip


@dataclass(frozen=True)
class RunInputs:
    """The settings of one run, read at once: its config, the user's data set (or None), the
    data set object, what moves the particles and its note, M and the training set's key."""

    config: RunConfig
    user_data: Points | None
    dataset: object
    source: FieldSource
    note: str
    m: int
    train_key: tuple


def run_workers() -> int:
    """Threads a run may use at once (``models/accel/parallel.py``): the cores, up to 4, where torch
    computes on one thread (the server on a small machine); else 1, as torch's own threads
    already share the cores."""
    return min(os.cpu_count() or 1, 4) if torch.get_num_threads() == 1 else 1


def _devices() -> list[str]:
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


class FlowState(PathSettings, GuidanceSettings):
    """Every control of the app, and the arrays of the last finished run."""

    # --- what is computed -------------------------------------------------------------------
    dataset = param.Selector(
        default="8gaussians",
        objects={**{label: name for name, label in DATASET_LABELS.items()}, USER_LABEL: "points"},
        doc="Data distribution at t = 0. Each built-in set is a Gaussian mixture (points on "
        "its curve or shape, each blurred by the set's noise width), and its exact field is "
        "exact. Your own points are an empirical set smoothed by a bandwidth: their exact "
        "field memorizes them (reverse runs land on your points).",
    )
    direction = param.Selector(
        default="reverse",
        objects={"reverse: generation": "reverse", "forward: noising": "forward"},
        doc="Reverse runs from noise (t = 1) to data (t = 0); forward from data to noise",
    )
    kind = param.Selector(
        default="ode",
        objects={"ODE (probability flow)": "ode", "SDE": "sde", "conditional paths": "conditional"},
        doc="Trajectory kind: deterministic ODE, stochastic SDE, or x_t = a x₀ + b ε per particle",
    )
    eta = param.Number(
        default=1.0,
        bounds=(0.0, 1.0),
        step=0.05,
        doc="Noise level η of the SDE: 0 is the probability-flow ODE, 1 Anderson's reverse SDE",
    )
    solver = param.Selector(
        default="euler",
        objects=SOLVER_LABELS,
        doc="Integrator: Euler, Heun, midpoint and RK4 step the velocity; DDIM and "
        "DPM-Solver++(2M) are exponential integrators in x̂ and ε̂; Dormand–Prince 5(4) chooses "
        "its own steps (to its tolerance) and shows its dense output at the grid's times. "
        "For the SDE only Euler (Euler–Maruyama) and DDIM (its η-family) have a stochastic form",
    )
    time_grid = param.Selector(
        default="uniform",
        objects={"uniform in t": "uniform", "uniform in log-SNR": "logsnr",
                 "Karras (ρ = 7)": "karras", "quadratic (dense near data)": "quadratic"},
        doc="Where the steps fall: uniform in t, uniform in log-SNR λ = log(a/b), Karras et "
        "al.'s σ = b/a schedule, or t ∝ (i/T)²; the frames are the grid's times",
    )  # fmt: skip
    t_min = param.Number(
        default=0.0, bounds=(0.0, 0.1), step=0.001,
        doc="Where a reverse run stops (t = 0 is the data). The log-SNR and Karras grids stop "
        "at least at 0.001, where λ is still finite",
    )  # fmt: skip
    rtol = param.Selector(
        default=1e-5, objects={"1e-3": 1e-3, "1e-4": 1e-4, "1e-5": 1e-5, "1e-6": 1e-6,
                               "1e-7": 1e-7},
        doc="Relative tolerance of the adaptive solver (its absolute one is a tenth of it)",
    )  # fmt: skip
    steps = param.Integer(default=100, bounds=(1, 1000), doc="Number of time steps T")
    particles = param.Integer(default=2000, bounds=(100, 20_000), doc="Number of particles N")
    seed = param.Integer(default=0, bounds=(0, 2**31 - 1), doc="Random seed")
    device = param.Selector(default="cpu", objects=_devices(), doc="Where torch computes")
    field = param.Selector(
        default="exact",
        objects=FIELDS,
        doc="Field that moves the particles. Exact: the closed form of the data set's mixture. "
        "Learned (pretrained): the small MLP shipped for this data set and process (VP weights "
        "exist for the linear schedule β 0.1..20 only; elsewhere the run uses the exact field "
        "and says so). Learned (trained here): the network of the Train panel, as trained so "
        "far. Exact of the M training points: the ideal field of the M points a network "
        "trained with that M sees; it memorizes them.",
    )
    train_size = param.Integer(
        default=0,
        bounds=(0, MAX_TRAIN_SIZE),
        doc="M, the size of the training set (0: fresh samples every step, unlimited data). "
        "With M ≥ 2 the run reports how many generated samples land on a training point",
    )

    points = param.Array(
        default=None,
        allow_None=True,
        doc="Your own data set (M, 2), drawn or uploaded: an empirical set smoothed by σ_d, "
        "whose exact field memorizes the points; used while the data set is 'your points'",
    )

    # --- what is drawn (client-side, no recompute) ------------------------------------------
    trail = param.Integer(default=8, bounds=(0, 30), doc="Length of the fading trails, in frames")
    density_source = param.Selector(
        default="particles",
        objects={
            "particles": "particles",
            "PDE": "pde",
            "exact": "exact",
            "p(class | x)": "posterior",
        },
        doc="Heatmap: histogram of the particles, the density solved on the grid by the "
        "continuity / Fokker–Planck equation with the same field (docs/MATH.md §6), the "
        "exact p_t of docs/MATH.md §5 (a guided run's tilted target), or the map of "
        "p(c | x_t), where a point at time t comes from: class c is the guided one, else 0 "
        "(docs/MATH.md §12)",
    )
    overlay = param.Selector(
        default="none",
        objects={
            "none": "none",
            "velocity v": "velocity",
            "score ∇log p": "score",
            "sampler drift": "drift",
            "drift current μρ": "drift_current",
            "diffusion current −D∇ρ": "diffusion_current",
            "probability current J = ρv": "current",
            "learned − exact (velocity)": "difference",
        },
        doc="Field drawn as arrows at the current time; velocity and drift point the way "
        "particles move in this run (−v for a reverse run). Learned − exact: where the network "
        "differs from the ideal (a learned field only), on the velocity arrows' scale of "
        "the frame: a 10 % error draws a tenth as long. Arrows are scaled per frame. Currents "
        "(docs/MATH.md §6.1): J = μρ − D∇ρ = ρv of the exact p_t, on one scale with its parts so "
        "they add up to it, reversed with the run; none if guided, J alone from a source",
    )
    contours = param.Boolean(default=False, doc="Contour lines of the exact density")
    shade = param.Boolean(
        default=False,
        doc="Colour particles by the density each one carries along its ODE trajectory "
        "(d/dt log p = −∇·v, docs/MATH.md §8), in the heatmap's colours: a particle matches the "
        "heatmap under it where the two views agree, and does not where they disagree",
    )
    reference = param.Boolean(
        default=False,
        doc="Compare the run with its reference: the same start points integrated by the "
        "adaptive solver at rtol 1e-8 in float64 (ODE runs). The clicked particle's reference "
        "path is drawn dashed, and the readout gives the error per frame and at the end",
    )
    fps = param.Integer(default=25, bounds=(1, 60), doc="Playback speed, frames per second")
    loop = param.Selector(
        default="loop",
        objects={"loop": "loop", "bounce": "reflect", "stop": "once"},
        doc="At the last frame: start again, play backwards, or stop",
    )

    # --- results ----------------------------------------------------------------------------
    result = param.ClassSelector(class_=RunResult, default=None, doc="Arrays of the last run")
    arrows = param.Dict(
        default=None,
        doc="Overlay fields of the run, {kind: (T+1, P, 2)} and 'points' (P, 2); None while "
        "no overlay has been asked for",
    )
    notice = param.String(default="", doc="A message for the user (bad input, a dropped value)")
    trained = param.ClassSelector(
        class_=TrainedModel, default=None, allow_None=True,
        doc="The weights trained in this session so far (published by the Train panel's job)",
    )  # fmt: skip

    def __init__(self, **params):
        super().__init__(**params)
        self._exact_cache: dict = {}
        self._weights_cache: dict = {}  # pretrained weights read by this session
        self._train_sets: dict = {}  # (data set, points id, M) → (training points, δ)

    @property
    def exact_cache(self) -> dict:
        """This session's memo of the last exact density (``simulate``'s ``exact_cache``)."""
        return self._exact_cache

    def user_dataset(self) -> Points | None:
        """The data set object of the current settings when it is the user's points."""
        if self.dataset != "points":
            return None
        if self.points is None:
            raise ValueError("no points yet: draw on the particle view or upload a file")
        return Points(self.points, labels=self.user_labels())

    @property
    def noise_level(self) -> float:
        """η used by the run (``models.run.config.noise_level``: the slider's for the SDE)."""
        return noise_level(self.kind, self.eta)

    @property
    def uses_eta(self) -> bool:
        """Whether η shapes the run: ``noise_level`` decides, asked with two values."""
        return noise_level(self.kind, 0.0) != noise_level(self.kind, 1.0)

    @property
    def uses_solver(self) -> bool:
        """Whether the solver choice shapes the run: ``RunConfig.solver_used`` decides."""
        runs = {replace(self.config(), solver=s).solver_used for s in ("euler", "heun")}
        return len(runs) == 2

    @property
    def solvers_not_applying(self) -> list[str]:
        """The solvers that cannot step the run at its η (``solver_applies``)."""
        eta = self.noise_level
        return [name for name in SOLVER_LABELS.values() if not solver_applies(name, eta)]

    @property
    def particles_allowed(self) -> int:
        """N actually run: the slider's, unless N x (T+1) passes ``MAX_PARTICLE_FRAMES``."""
        return min(self.particles, MAX_PARTICLE_FRAMES // (self.steps + 1))

    def run_notice(self, result: RunResult) -> str:
        """What the user should know about a finished run ("" when nothing)."""
        return run_notice(self, result)

    @property
    def wants_exact(self) -> bool:
        """Whether the exact density is shown, as the heatmap or as contours. Runs compute it
        only then (for a 512-component data set it was a third of a recompute); switching it
        on computes it for the run on screen (:meth:`with_exact`) without rerunning it."""
        return self.density_source == "exact" or self.contours

    def config(self) -> RunConfig:
        """The run these settings describe. A solver that cannot step it (no stochastic form,
        at η > 0: ``solver_applies``) gives way to Euler–Maruyama; its control is disabled."""
        eta = self.noise_level
        solver = self.solver if solver_applies(self.solver, eta) else "euler"
        config = RunConfig(
            process=self.process, dataset=self.dataset, direction=self.direction, kind=self.kind,
            eta=eta if self.uses_eta else None, solver=solver, time_grid=self.time_grid,
            t_min=self.t_min, rtol=self.rtol, atol=self.rtol / 10, steps=self.steps,
            particles=self.particles_allowed, seed=self.seed, **self.path_config(),
            n_reference=APP_REFERENCE,
            resolution=APP_RESOLUTION, device=self.device, pde=self.density_source == "pde",
            log_density=self.shade and self.kind == "ode" and solver in CARRIERS
            and self.data_source is None and not self.guided,
            exact_density=self.wants_exact, **self.guidance_config(),
        )  # fmt: skip
        return replace(config, extent=view_extent(config))

    def run_inputs(self) -> RunInputs:
        """What one run of the current settings needs, read once (the session thread may change
        the settings while it computes)."""
        data, config, m = self.user_dataset(), self.config(), self.train_size
        labels = self.user_labels()
        train_key = (self.dataset, None if self.points is None else hash(self.points.tobytes()),
                     None if labels is None else hash(labels.tobytes()), m)  # fmt: skip
        dataset = data if data is not None else make_dataset(self.dataset)
        source, note = resolve(self, dataset, self._weights_cache)
        return RunInputs(config, data, dataset, source, note, m, train_key)

    def finish(self, result: RunResult, inputs: RunInputs) -> RunResult:
        """The run with its memorization readout and the field's note among its warnings."""
        readout = self._memorization(result, inputs.dataset, inputs.m, inputs.train_key)
        warnings = (*result.warnings, inputs.note) if inputs.note else result.warnings
        return result.with_(memorization=readout, warnings=warnings)

    def compute(self, should_stop=None) -> tuple[RunResult, dict | None]:
        """Run the models for the current settings; returns (result, arrows). Pure: sets nothing.

        The overlay fields are computed only while an overlay is shown (they cost a third of a
        default run); ``field_arrows`` supplies them later for a run that has none.
        """
        inputs = self.run_inputs()
        result = simulate(inputs.config, dataset=inputs.user_data, should_stop=should_stop,
                          exact_cache=self._exact_cache, source=inputs.source,
                          workers=run_workers())  # fmt: skip
        result = self.finish(result, inputs)
        return result, (self.field_arrows(result) if self.overlay != "none" else None)

    @param.depends("overlay", watch=True)
    def _difference_needs_learned(self) -> None:
        """Say so when the difference overlay is asked of an exact run; unsay it once the
        overlay changes again."""
        result = self.result
        if result is None:
            return
        exact = not result.source.learned
        if (self.overlay == "difference" and exact) or DIFFERENCE_NEEDS_LEARNED in self.notice:
            self.notice = self.run_notice(result)

    def training_set(self, dataset, m: int, key) -> tuple[torch.Tensor, float] | None:
        """The M training points (M, 2) of ``dataset`` and the memorization δ, or None while
        M < 2; ``key`` names the data set and M (cached under it)."""
        if m < 2:
            return None
        if key not in self._train_sets:
            points = training_points(dataset, m, TRAIN_SEED)[0]
            self._train_sets = {key: (points, memorization_delta(points))}  # keep one
        return self._train_sets[key]

    def _memorization(self, result: RunResult, dataset, m: int, key) -> Memorization | None:
        """The memorization readout of a generating run (reverse ODE or SDE) with M ≥ 2."""
        config = result.config
        train = self.training_set(dataset, m, key)
        if train is None or config.direction != "reverse" or config.kind == "conditional":
            return None
        points, delta = train
        share = memorized_share(torch.from_numpy(result.trajectories[-1]), points, delta)
        return Memorization(share, delta, m)

    def memorization_text(self, result: RunResult | None = None) -> str:
        """The memorization readout of a run (the shown one by default), one line or ""."""
        return memorization_text(result if result is not None else self.result)

    def solver_text(self, result: RunResult | None = None) -> str:
        """The sampler's readout of a run (the shown one by default), one line or ""."""
        return solver_text(result if result is not None else self.result, self.reference)

    def field_arrows(self, result: RunResult) -> dict:
        """Overlay fields of a finished run, {kind: (T+1, P, 2)} and 'points' (P, 2), of the
        field that moved its particles; 'difference' (learned − exact) for a learned field."""
        return run_overlay(result, ARROWS, difference=result.source.learned)

    def with_exact(self, result: RunResult) -> RunResult:
        """The run with its exact density (T+1, H, W) float32: the same run if it has it, else
        a new value with the same particles (made without it: ``wants_exact`` was off)."""
        if result.exact_density is not None:
            return result
        exact = exact_frames(result.config, result.times, result.dataset, self._exact_cache)
        return result.with_(exact_density=exact)

    def recompute(self) -> None:
        """Compute synchronously and publish with one ``param.update`` (watchers fire once)."""
        result, arrows = self.compute()
        self.param.update(result=result, arrows=arrows, notice=self.run_notice(result))

    def schedule_curves(self, n: int = 201) -> dict:
        """The current path's curves on n times, for the schedule plot (``path_curves``)."""
        return path_curves(path_of(self.config()), n)

    def a_at_noise(self) -> float:
        """a(1): how much of the data is left at the noise end (≈ 0 for a useful schedule)."""
        path = path_of(self.config())
        return float(path.coefficients(torch.tensor(1.0, dtype=torch.float64)).a)


assert set(DATASET_LABELS) == set(DATASETS), "every data set needs a label in the app"
assert set(SOLVER_LABELS.values()) == set(SOLVERS), "every solver needs a label in the app"

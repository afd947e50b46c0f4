"""One run of a process: settings in, trajectories and density frames out.

The command line and the app both call :func:`simulate`; neither holds mathematics of its own.
It reads as the story of a run: build the path, the data and the field; draw the start;
integrate; check; solve the PDE if asked; make the exact density if asked. How a run may use
more than one thread lives beside it (``models/accel/split.py``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from models.accel.split import particles_and_pde, sample_split
from models.datasets import Dataset, make_dataset
from models.density import mixture_density
from models.fields import ExactField
from models.logdensity import carried_trajectories
from models.paths import GaussianPath, make_path
from models.run.config import RunConfig
from models.run.diagnostics import left_view, outside_view
from models.run.guided import check_class, guided_field, target_frames, target_weight
from models.run.nonfinite import NonFiniteRun, check_finite
from models.run.result import FieldSource, RunResult
from models.samplers import (
    Cancelled,
    conditional_paths,
    forward_sde_exact,
    time_grid,
)
from models.schedules import make_schedule
from models.solvers import SOLVERS, CountingField, make_times, sampler_of
from models.solvers.counting import PolledField
from models.source_flow import (
    SourcePairField,
    conditional_from_source,
    pair_mixture_density,
    sample_source,
    solve_continuity,
    source_field,
)


def path_of(config: RunConfig) -> GaussianPath:
    """The Gaussian path a configuration names (its schedule, and σ_min, σ_max, included)."""
    schedule = make_schedule(config.schedule, config.beta_min, config.beta_max,
                             shift=config.shift, points=config.schedule_points or None)  # fmt: skip
    return make_path(config.process, schedule, config.sigma_min, config.sigma_max)


def build(
    config: RunConfig, dataset: Dataset | None = None
) -> tuple[GaussianPath, Dataset, ExactField]:
    """The path, data set and exact field a configuration names: the data's mixture on the
    path, or from a data set as the source, the mixture over pairs (docs/MATH.md §5.1)."""
    path = path_of(config)
    data = dataset if dataset is not None else make_dataset(config.dataset)
    if config.source != "gaussian":
        return path, data, source_field(path, data, config.source, device=config.device)
    return path, data, ExactField(path, data.reference(config.n_reference), device=config.device)


def start_points(config: RunConfig, path: GaussianPath, t0: float, generator) -> torch.Tensor:
    """Where a reverse run starts, (N, 2): the noise end N(0, b(t0)² I) (``GaussianPath.prior``)
    or b(t0) times samples of the source data set."""
    n, device = config.particles, config.device
    if config.source == "gaussian":
        return path.prior(n, t0, generator, device=device)
    b = float(path.coefficients(torch.tensor(t0, dtype=torch.float64)).b)
    return b * sample_source(config.source, n, generator, device=device)[0]


def run_times(config: RunConfig, path: GaussianPath) -> torch.Tensor:
    """The run's time grid (T+1,), float64, on ``config.time_grid``, in the order its frames
    are shown: forward runs from 0, reverse runs from (about) 1 to ``config.data_end``; SDE
    runs start where the path allows (``stochastic_start``)."""
    eta, steps, grid = config.noise_level, config.steps, config.time_grid
    forward = config.direction == "forward"
    if config.solver_used in ("closed-form", "exact-transition"):  # no sampler: closed forms
        times = _grid(path, grid, steps, 0.0 if forward else config.data_end, 1.0)
        return times if forward else times.flip(0)  # played from noise to data
    # Euler–Maruyama must not start at a singular noise end (docs/MATH.md §4); DDIM's η-family
    # is finite there (its step draws from the path's own Gaussians)
    noise_end = path.stochastic_start(eta, steps) if config.solver_used == "euler-maruyama" \
        else 1.0  # fmt: skip
    if forward:
        return _grid(path, grid, steps, 0.0, noise_end)
    return _grid(path, grid, steps, noise_end, config.data_end)


def _grid(path: GaussianPath, grid: str, steps: int, start: float, end: float) -> torch.Tensor:
    """``make_times``; the uniform grid as ``time_grid`` (linspace) makes it, bit for bit."""
    return time_grid(start, end, steps) if grid == "uniform" else make_times(
        path, grid, steps, start, end)  # fmt: skip


def trajectories(
    config: RunConfig, path, data, field, generator, callback=None, workers: int = 1,
    sampler=None, step_noise=None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """Run the sampler the configuration names (``RunConfig.solver_used``; or ``sampler``,
    made by :func:`sampler_for`), in row blocks on up to ``workers`` threads where that pays
    (the same numbers either way; an adaptive solver runs in one block). The start points come
    from ``generator``; the steps' noise too, unless ``step_noise`` gives it (a noise source
    of ``models/compare/noise.py``: the increments another run drew).

    Returns (trajectories (T+1, N, 2), times (T+1,), labels (N,)).
    """
    device, eta, n = config.device, config.noise_level, config.particles
    times = run_times(config, path)
    used = config.solver_used
    sampler = sampler if sampler is not None else sampler_for(config)
    noise_source = generator if step_noise is None else step_noise
    if SOLVERS[config.solver].adaptive:
        workers = 1  # one step size for all particles: a split would change the steps
    if config.direction == "forward" or config.kind == "conditional":
        x0, labels = data.sample(n, generator, device=device)
        if used == "closed-form":  # played from noise to data for reverse runs
            forward = times if config.direction == "forward" else times.flip(0)
            if config.source == "gaussian":
                traj = conditional_paths(path, x0, forward, generator)
            else:  # x_t = a x0 + b x1, x1 a sample of the source (independent of x0)
                x1 = sample_source(config.source, len(x0), generator, device=device)[0]
                traj = conditional_from_source(path, x0, x1, forward)
            traj = traj if config.direction == "forward" else traj.flip(0)
        elif used == "exact-transition":
            traj = forward_sde_exact(path, x0, times, noise_source)
        else:  # ODE, or the η-family forward for 0 < η < 1
            traj = sample_split(
                sampler, field, path, x0, times, eta, noise_source, callback, workers
            )
        return traj, times, labels.cpu()
    x1 = start_points(config, path, float(times[0]), generator)
    traj = sample_split(sampler, field, path, x1, times, eta, noise_source, callback, workers)
    labels = field.nearest_label(traj[-1], 0.0).cpu()
    return traj, times, labels


def sampler_for(config: RunConfig):
    """The sampler of ``config.solver`` (``models.solvers``), a fresh one for the adaptive
    solver (it records the steps it took in ``stats``); Euler at η > 0 is Euler–Maruyama."""
    return sampler_of(config.solver, rtol=config.rtol, atol=config.atol)


def simulate(
    config: RunConfig,
    dataset: Dataset | None = None,
    should_stop=None,
    exact_cache=None,
    source: FieldSource | None = None,
    workers: int = 1,
    step_noise=None,
) -> RunResult:
    """Validate, sample and grid one run.

    Args:
        config: the settings.
        dataset: overrides ``config.dataset`` (user points).
        should_stop: optional ``() -> bool`` polled after every step; once true the run raises
            :class:`models.samplers.Cancelled` (a newer request superseded it).
        exact_cache: optional dict reused across runs for the exact density, which depends on
            the path, data set and time grid only (not on particles, seed, η or solver).
        source: what moves the particles (default: the exact field). Its ``make(path,
            exact_field)`` builds a learned field (which may colour particles with the exact
            one); the exact density stays the closed form.
        workers: threads the run may use at once (``models/accel/split.py``): its particles in
            row blocks where that pays, and the PDE beside the particles. For callers whose
            torch computes on one thread (the server); the numbers do not depend on it.
        step_noise: the steps' noise, given (``models/compare/noise.py``: B of a comparison
            takes A's increments); None draws it from the run's generator.
    """
    config.validate()
    source = source if source is not None else FieldSource()
    path, data, exact = build(config, dataset)
    check_class(config.guidance_class, exact.reference.labels, config.dataset)
    field = exact if source.make is None else source.make(path, exact)
    generator = torch.Generator(device=config.device).manual_seed(config.seed)
    # the Hutchinson probes draw from their own generator: the start points stay those of
    # the unguided run with the same seed
    probes = torch.Generator(device=config.device).manual_seed(config.seed + 1)
    field = guided_field(config, field, exact, probes)
    callback = _step_check(config, should_stop)
    sampler = sampler_for(config)
    counted = CountingField(field, particles=config.particles)  # the particles' model calls
    # an adaptive solver may take many steps between two frames: poll at every evaluation
    moving = PolledField(counted, lambda: callback(None)) if SOLVERS[config.solver].adaptive \
        else counted  # fmt: skip

    def particles(callback, workers: int = 1):
        if config.log_density:  # positions and log p_t, through the same samplers
            traj, times, labels, log_p = carried_trajectories(
                config, path, data, _data_mixture(config, data, exact), moving, generator,
                run_times(config, path), callback, sampler)  # fmt: skip
        else:
            moved = trajectories(config, path, data, moving, generator, callback, workers,
                                 sampler, step_noise)  # fmt: skip
            (traj, times, labels), log_p = moved, None
        check_finite("positions", traj, times, config)  # samplers without a step callback too
        return traj, times, labels, log_p

    solve = _pde_solver(config, path, data, exact, field)
    workers = workers if config.device == "cpu" else 1  # a GPU is one device, not blocks
    moved, solved = particles_and_pde(particles, solve, callback, workers, field,
                                      config.particles, config.steps)  # fmt: skip
    traj, times, labels, log_density = moved
    exact_density = None
    if config.exact_density:
        exact_density = _exact_density(config, dataset is None, exact, path, times, exact_cache)
        check_finite("exact density", exact_density, times, config)
    positions = traj.float().cpu().numpy()
    return RunResult(
        trajectories=positions,
        times=times.cpu().numpy(),
        labels=labels.numpy(),
        exact_density=exact_density,
        extent=tuple(float(v) for v in config.extent),
        n_labels=int(getattr(data, "n_labels", 1)),
        config=config,
        source=source,
        dataset=dataset,
        pde_density=None if solved is None else solved.density,
        pde_mass=None if solved is None else solved.mass,
        pde_outflow=None if solved is None else solved.outflow,
        log_density=None if log_density is None else log_density.float().cpu().numpy(),
        warnings=_warnings(dataset, positions, times, config),
        nfe=counted.nfe if config.solver_used not in ("closed-form", "exact-transition") else 0,
        solver_stats=dict(sampler.stats) if config.solver_used == "dopri5" else None,
    )


def _step_check(config: RunConfig, should_stop):
    """The callback after every step: stop a superseded run, and a run gone non-finite at
    once (``NonFiniteRun`` names the step)."""

    def callback(info) -> None:
        if should_stop is not None and should_stop():
            raise Cancelled
        # a sum is finite iff every entry is (barring overflow, checked again)
        if info is not None and not math.isfinite(float(info["x"].sum())):
            if not bool(torch.isfinite(info["x"]).all()):
                raise NonFiniteRun("positions", info["i"] + 1, info["t"], config)

    return callback


def _warnings(dataset: Dataset | None, positions: np.ndarray, times, config) -> tuple[str, ...]:
    """What the run's picture shows but its numbers do not say: user points outside the view,
    particles that left it."""
    found = (outside_view(getattr(dataset, "points", None), tuple(config.extent)),
             left_view(positions, times.cpu().numpy(), tuple(config.extent), config.kind,
                       config.noise_level), path_ends(config))  # fmt: skip
    return tuple(w for w in found if w)


NOISE_GAP, DATA_BLUR = 0.25, 0.1  # a(1)/b(1) and b(0)/a(0) above these: say so


def path_ends(config: RunConfig) -> str | None:
    """A one-line warning where the path misses one of its ends: signal left at t = 1
    (a(1)/b(1) > 0.25: a weak schedule, VE or EDM with a small σ_max, a drawing that stays
    high), so generation starts from the wrong distribution; or data blurred at t = 0
    (b(0)/a(0) > 0.1: a large σ_min, a drawing that starts low). None for a path that reaches
    both (every default does). Reverse ODE and SDE runs only: they start from the noise end's
    Gaussian and end at t = 0 (forward runs and conditional paths draw both ends exactly)."""
    if config.direction != "reverse" or config.kind == "conditional":
        return None
    c = path_of(config).coefficients(torch.tensor([0.0, 1.0], dtype=torch.float64))
    (a0, a1), (b0, b1) = c.a.tolist(), c.b.tolist()
    if b1 <= 0 or a1 / b1 > NOISE_GAP:
        return (f"this path does not reach noise: at t = 1 the signal is {a1:.3g} against "
                f"noise {b1:.3g}, so generation from N(0, b(1)² I) starts from the wrong "
                "distribution (raise β_max or σ_max, or lower the drawn λ(1))")  # fmt: skip
    if a0 <= 0 or b0 / a0 > DATA_BLUR:
        return (f"this path does not reach the data: at t = 0 it is still blurred by noise "
                f"{b0 / a0:.3g} (lower σ_min, or raise the drawn λ(0))")  # fmt: skip
    return None


def _pde_solver(config: RunConfig, path, data, exact, field):
    """``solve(callback)`` of the run's PDE (on the particles' field, from the data's own
    density), or None if the run has none. ``callback(i)`` is called after frame i and every
    few sub-steps within it."""
    if not config.pde:
        return None
    from models.pde import solver as pde  # loads numba (~0.5-1 s): only for runs that solve the PDE

    eta = 0.0 if config.kind == "conditional" else config.noise_level  # the ODE's marginals
    mixture = _data_mixture(config, data, exact)
    times, grid = run_times(config, path), config.grid
    if isinstance(exact, SourcePairField):  # from the source's mixture (RunConfig: η = 0)
        return lambda callback: solve_continuity(exact, times, grid, callback=callback,
                                                 poll=callback)  # fmt: skip
    # the callback after each frame also polls within a frame: a superseded run stops sooner
    return lambda callback: pde.solve_run(field, path, mixture, times, eta, grid,
                                          callback=callback, poll=callback)  # fmt: skip


def _data_mixture(config: RunConfig, data, field):
    """The data set's mixture (the start of forward runs), also for fields that are not exact."""
    reference = getattr(field, "reference", None)
    return reference if reference is not None else data.reference(config.n_reference)


def exact_frames(config: RunConfig, times, dataset: Dataset | None = None, cache=None):
    """Exact p_t for a run made without it (``exact_density=False``), on its grid at its
    ``times`` (T+1,): (T+1, H, W) float32, refused like the run's own arrays if not finite."""
    path, _, field = build(config, dataset)
    times = torch.as_tensor(times, dtype=torch.float64)
    exact = _exact_density(config, dataset is None, field, path, times, cache)
    check_finite("exact density", exact, times, config)
    return exact


def _exact_density(config, cacheable, field, path, times, cache) -> np.ndarray:
    """Exact p_t on the grid, (T+1, H, W), memoised in ``cache`` (one entry) when given."""
    key = (
        config.process, config.schedule, config.beta_min, config.beta_max, config.shift,
        config.schedule_points, config.sigma_min, config.sigma_max, config.source,
        config.dataset, config.n_reference, tuple(times.tolist()), config.grid,
        config.guidance_class, target_weight(config),
    )  # fmt: skip
    if cache is not None and cacheable and key in cache:
        return cache[key]
    if isinstance(field, SourcePairField):
        made = pair_mixture_density(field.reference, field.source, path, times, config.grid)
    elif target_weight(config) is not None:  # a guided run: the tilted target it aims at
        made = target_frames(config, field.reference, path, times)
    else:
        made = mixture_density(field.reference, path, times, config.grid)
    exact = made.cpu().numpy()
    if cache is not None and cacheable:
        cache.clear()
        cache[key] = exact
    return exact


NOISE_WIDE = 1.5  # b(1) above this: the noise end outgrows the default box (VE, EDM)
DATA_BOX = 4.0  # the default box's half width: it holds every built-in data set


def view_extent(config: RunConfig) -> tuple[float, float, float, float]:
    """The box (x0, x1, y0, y1) that holds the run: ``config.extent``, widened to
    ±(4 + 3.5 b(1)) where the noise end N(0, b(1)² I) outgrows it (VE and EDM, whose b(1) is
    σ_max: a 2D normal leaves 3.5 σ once in 450 draws), rounded up to a whole number."""
    try:
        b1 = float(path_of(config).coefficients(torch.tensor(1.0, dtype=torch.float64)).b)
    except ValueError:  # a bad setting: RunConfig.validate says what is wrong
        return tuple(config.extent)
    if not b1 > NOISE_WIDE:  # NaN too
        return tuple(config.extent)
    half = float(math.ceil(DATA_BOX + 3.5 * b1))
    x0, x1, y0, y1 = config.extent
    return (min(x0, -half), max(x1, half), min(y0, -half), max(y1, half))

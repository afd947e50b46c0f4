"""One run of a process: settings in, trajectories and density frames out.

The command line and the app both call :func:`simulate`; neither holds mathematics of its own.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from models.accel.parallel import (
    PartStops,
    in_parallel,
    particle_blocks,
    run_in_blocks,
    worth_a_thread,
)
from models.datasets import Dataset, make_dataset
from models.density import histogram_density, mixture_density
from models.fields import ExactField
from models.logdensity import carried_trajectories
from models.paths import GaussianPath, make_path
from models.run.config import RunConfig
from models.run.diagnostics import left_view, outside_view
from models.run.nonfinite import NonFiniteRun, check_finite
from models.samplers import (
    SAMPLERS,
    Cancelled,
    conditional_paths,
    forward_sde_exact,
    sample_euler,
    time_grid,
)
from models.schedules import make_schedule


@dataclass
class RunResult:
    """Arrays of one run (numpy, on the CPU).

    Attributes:
        trajectories: positions (T+1, N, 2) float32, index 0 where the run starts.
        times: t of each frame, (T+1,) float64.
        labels: colour label of each particle (its mixture component / data cluster), (N,) int.
        density: density from particles, (T+1, H, W) float32 (a property: the histogram of
            the trajectories on ``config.grid``, made on first use; the app's page makes its
            own from the positions it has, and the server then never needs it).
        exact_density: exact p_t on the same grid, (T+1, H, W) float32, or None.
        extent: (xmin, xmax, ymin, ymax).
        n_labels: number of distinct labels.
        meta: the settings as JSON.
        config: the settings themselves (to evaluate fields for this run later).
        pde_density: the PDE solution on the same grid, (T+1, H, W) float32, or None.
        pde_mass: its mass inside the box, (T+1,); pde_outflow: mass gone through the edges.
        log_density: log p_t carried along each particle (ODE runs), (T+1, N) float32, or None.
        warnings: one-line remarks on a valid run the user should know of (user points far
            outside the view, whose density frames are then empty).
    """

    trajectories: np.ndarray
    times: np.ndarray
    labels: np.ndarray
    exact_density: np.ndarray | None
    extent: tuple[float, float, float, float]
    n_labels: int
    meta: str
    config: RunConfig
    pde_density: np.ndarray | None = None
    pde_mass: np.ndarray | None = None
    pde_outflow: np.ndarray | None = None
    log_density: np.ndarray | None = None
    warnings: tuple[str, ...] = ()
    # made on first use; not an argument, so that dataclasses.replace() never copies it
    _density: np.ndarray | None = dataclasses.field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def density(self) -> np.ndarray:
        """The particles' density (T+1, H, W) float32, made on first use (finite: the
        positions are)."""
        if self._density is None:
            frames, config = torch.from_numpy(self.trajectories), self.config
            self._density = histogram_density(frames, config.grid, config.bandwidth).numpy()
        return self._density


def path_of(config: RunConfig) -> GaussianPath:
    """The Gaussian path a configuration names (its schedule included)."""
    return make_path(
        config.process, make_schedule(config.schedule, config.beta_min, config.beta_max)
    )


def build(
    config: RunConfig, dataset: Dataset | None = None
) -> tuple[GaussianPath, Dataset, ExactField]:
    """The path, data set and exact field a configuration names."""
    path = path_of(config)
    data = dataset if dataset is not None else make_dataset(config.dataset)
    return path, data, ExactField(path, data.reference(config.n_reference), device=config.device)


def run_times(config: RunConfig, path: GaussianPath) -> torch.Tensor:
    """The run's time grid (T+1,), float64, in the order its frames are shown: from 0 for
    forward runs, from (about) 1 for reverse runs, SDE runs starting where the path allows."""
    eta, steps = config.noise_level, config.steps
    forward = config.direction == "forward"
    if config.kind == "conditional" or (forward and config.kind == "sde" and eta == 1.0):
        times = time_grid(0.0, 1.0, steps)  # no sampler: closed forms
        return times if forward else times.flip(0)
    if forward:
        return time_grid(0.0, path.stochastic_start(eta, steps), steps)
    return time_grid(path.stochastic_start(eta, steps), 0.0, steps)


def trajectories(
    config: RunConfig, path, data, field, generator, callback=None, workers: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the sampler the configuration names, in row blocks on up to ``workers`` threads
    where that pays (``models/accel/parallel.py``: the same numbers either way).

    Returns (trajectories (T+1, N, 2), times (T+1,), labels (N,)).
    """
    device, eta, n = config.device, config.noise_level, config.particles
    times = run_times(config, path)
    if config.direction == "forward" or config.kind == "conditional":
        x0, labels = data.sample(n, generator, device=device)
        if config.kind == "conditional":  # played from noise to data for reverse runs
            forward = times if config.direction == "forward" else times.flip(0)
            traj = conditional_paths(path, x0, forward, generator)
            traj = traj if config.direction == "forward" else traj.flip(0)
        elif config.kind == "sde" and eta == 1.0:
            traj = forward_sde_exact(path, x0, times, generator)
        else:  # ODE, or the η-family forward for 0 < η < 1
            sampler = SAMPLERS[config.solver if eta == 0 else "euler"]
            traj = _sample(sampler, field, path, x0, times, eta, generator, callback, workers)
        return traj, times, labels.cpu()
    x1 = path.prior(n, float(times[0]), generator, device=device)
    sampler = SAMPLERS[config.solver] if eta == 0 else sample_euler
    traj = _sample(sampler, field, path, x1, times, eta, generator, callback, workers)
    labels = field.nearest_label(traj[-1], 0.0).cpu()
    return traj, times, labels


def _sample(sampler, field, path, x, times, eta, generator, callback, workers: int):
    """``sampler(...)``, in row blocks on threads where the work per step is large."""
    blocks = particle_blocks(field, len(x), workers)
    if blocks == 1:
        return sampler(field, path, x, times, eta, generator, callback)
    return run_in_blocks(sampler, field, path, x, times, eta, generator, callback, blocks,
                         cancelled=(Cancelled,))  # fmt: skip


def simulate(
    config: RunConfig,
    dataset: Dataset | None = None,
    should_stop=None,
    exact_cache=None,
    make_field=None,
    workers: int = 1,
) -> RunResult:
    """Validate, sample and grid one run.

    Args:
        config: the settings.
        dataset: overrides ``config.dataset`` (user points).
        should_stop: optional ``() -> bool`` polled after every step; once true the run raises
            :class:`models.samplers.Cancelled` (a newer request superseded it).
        exact_cache: optional dict reused across runs for the exact density, which depends on
            the path, data set and time grid only (not on particles, seed, η or solver).
        make_field: optional ``(path, exact_field) -> field`` for the field that moves the
            particles (a learned one; it may colour them with the exact field); the exact
            density stays the closed form.
        workers: threads the run may use at once (``models/accel/parallel.py``): its particles in
            row blocks where that pays, and the PDE beside the particles. For callers whose
            torch computes on one thread (the server); the numbers do not depend on it.
    """
    config.validate()
    path, data, field = build(config, dataset)
    run_field = field if make_field is None else make_field(path, field)
    generator = torch.Generator(device=config.device).manual_seed(config.seed)

    def callback(info) -> None:
        if should_stop is not None and should_stop():
            raise Cancelled
        # stop at once; a sum is finite iff every entry is (barring overflow, checked again)
        if info is not None and not math.isfinite(float(info["x"].sum())):
            if not bool(torch.isfinite(info["x"]).all()):
                raise NonFiniteRun("positions", info["i"] + 1, info["t"], config)

    def particles(callback, workers: int = 1):
        if config.log_density:
            return carried_trajectories(config, path, data, _data_mixture(config, data, field),
                                        run_field, generator, run_times(config, path),
                                        callback)  # fmt: skip
        return (*trajectories(config, path, data, run_field, generator, callback, workers), None)

    grid = config.grid
    solve = _pde_solver(config, path, data, field, run_field, grid)
    workers = workers if config.device == "cpu" else 1  # a GPU is one device, not blocks
    beside = workers > 1 and worth_a_thread(run_field, config.particles)
    if solve is not None and beside:  # the PDE needs nothing of the particles
        stops = PartStops(cancelled=(Cancelled,))
        after = config.steps + 1  # the serial run meets the PDE's failures after its particles'
        on_step = stops.wrap(callback)
        on_frame = stops.wrap(lambda _i: callback(None), lambda i: after + i, first=after)
        parts = [(lambda: particles(on_step, workers - 1), on_step),
                 (lambda: solve(on_frame), on_frame)]  # fmt: skip
        (traj, times, labels, log_density), solved = in_parallel(parts, stops)
    else:
        (traj, times, labels, log_density), solved = particles(callback, workers), None
    callback(None)
    check_finite("positions", traj, times, config)  # runs without a per-step callback too
    if solve is not None and solved is None:  # the serial run: the PDE after the particles
        solved = solve(lambda _i: callback(None))
    exact = None
    if config.exact_density:
        exact = _exact_density(config, dataset is None, field, path, times, grid, exact_cache)
        check_finite("exact density", exact, times, config)
    positions = traj.float().cpu().numpy()
    return RunResult(
        trajectories=positions,
        times=times.cpu().numpy(),
        labels=labels.numpy(),
        exact_density=exact,
        extent=tuple(float(v) for v in config.extent),
        n_labels=int(getattr(data, "n_labels", 1)),
        meta=config.to_json(),
        config=config,
        pde_density=None if solved is None else solved.density,
        pde_mass=None if solved is None else solved.mass,
        pde_outflow=None if solved is None else solved.outflow,
        log_density=None if log_density is None else log_density.float().cpu().numpy(),
        warnings=_warnings(dataset, positions, times, config),
    )


def _warnings(dataset: Dataset | None, positions: np.ndarray, times, config) -> tuple[str, ...]:
    """What the run's picture shows but its numbers do not say: user points outside the view,
    particles that left it."""
    found = (outside_view(getattr(dataset, "points", None), tuple(config.extent)),
             left_view(positions, times.cpu().numpy(), tuple(config.extent), config.kind,
                       config.noise_level))  # fmt: skip
    return tuple(w for w in found if w)


def _pde_solver(config: RunConfig, path, data, field, run_field, grid):
    """``solve(callback)`` of the run's PDE (on the particles' field, from the data's own
    density), or None if the run has none. ``callback(i)`` is called after frame i and every
    few sub-steps within it."""
    if not config.pde:
        return None
    from models.pde import solver as pde  # loads numba (~0.5-1 s): only for runs that solve the PDE

    eta = 0.0 if config.kind == "conditional" else config.noise_level  # the ODE's marginals
    mixture = _data_mixture(config, data, field)
    times = run_times(config, path)
    # the callback after each frame also polls within a frame: a superseded run stops sooner
    return lambda callback: pde.solve_run(run_field, path, mixture, times, eta, grid,
                                          callback=callback, poll=callback)  # fmt: skip


def _data_mixture(config: RunConfig, data, field):
    """The data set's mixture (the start of forward runs), also for fields that are not exact."""
    reference = getattr(field, "reference", None)
    return reference if reference is not None else data.reference(config.n_reference)


def exact_frames(config: RunConfig, times, dataset: Dataset | None = None, cache=None):
    """Exact p_t for a run made without it (``exact_density=False``), on its grid at its
    ``times`` (T+1,): (T+1, H, W) float32, refused like the run's own arrays if not finite."""
    path, _, field = build(config, dataset)
    grid = config.grid
    times = torch.as_tensor(times, dtype=torch.float64)
    exact = _exact_density(config, dataset is None, field, path, times, grid, cache)
    check_finite("exact density", exact, times, config)
    return exact


def _exact_density(config, cacheable, field, path, times, grid, cache) -> np.ndarray:
    """Exact p_t on the grid, (T+1, H, W), memoised in ``cache`` (one entry) when given."""
    key = (
        config.process, config.schedule, config.beta_min, config.beta_max, config.dataset,
        config.n_reference, tuple(times.tolist()), grid,
    )  # fmt: skip
    if cache is not None and cacheable and key in cache:
        return cache[key]
    exact = mixture_density(field.reference, path, times, grid).cpu().numpy()
    if cache is not None and cacheable:
        cache.clear()
        cache[key] = exact
    return exact

"""Density carried along ODE trajectories (docs/MATH.md §8, instantaneous change of variables).

Along dx/dt = v(x, t):   d/dt log p_t(x_t) = −∇·v(x_t, t).

The state (x, log p) is integrated by the samplers themselves (``CarriedField``: the augmented
velocity (v, −∇·v)), so the positions are the particle run's own.
The divergence is exact (one autograd pass per coordinate: two in 2D) or Hutchinson's unbiased
estimate uᵀ (∂v/∂x) u with Rademacher u (one pass; in 2D its variance is (J₁₂ + J₂₁)²).

The model's own density at time t on a grid runs the same integration from each point to t = 1:
log p_t(x) = log N(x_1; 0, b(1)² I) + ∫_t^1 ∇·v dt.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from models.density import Grid
from models.fields import ExactField
from models.paths import GaussianPath
from models.samplers import Field, fused_step
from models.solvers import SOLVERS, sampler_of

# The solvers that can carry log p: those that step on the velocity alone (the registry says).
CARRIERS = tuple(name for name, solver in SOLVERS.items() if solver.on_velocity)

DIVERGENCES = ("exact", "hutchinson")


def divergence(
    field: Field,
    x: Tensor,
    t: float,
    method: str = "exact",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Velocity and its divergence at (x, t): ((N, 2), (N,)), both detached.

    For the exact field the velocity is its plain evaluation, not the one in the autograd
    graph: without a graph it evaluates in a compiled kernel whose last bits differ from
    torch's, and a run carrying log p_t must move its particles exactly as the same run
    without it (the app reruns when the shading is switched on: no particle may jump).

    Args:
        field: ``field(x, t, want)``, differentiable in x.
        x: points, (N, 2).
        method: ``exact`` (one backward pass per dimension) or ``hutchinson`` (one pass with a
            Rademacher probe drawn from ``generator``).
    """
    v, div = _traced(field, x, t, method, generator)
    base = _unwrapped(field)
    if isinstance(base, ExactField):  # the only field whose plain evaluation differs
        with torch.no_grad():  # the same model call, in its other kernel: not counted again
            return base(x.detach(), t, ("velocity",))["velocity"], div
    return v, div


def _traced(field: Field, x: Tensor, t: float, method: str, generator) -> tuple[Tensor, Tensor]:
    """The velocity in the autograd graph and its divergence, ((N, 2), (N,)), detached."""
    if method not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {DIVERGENCES}, got {method!r}")
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        v = field(xg, t, ("velocity",))["velocity"]
        if method == "hutchinson":
            u = torch.randint(0, 2, x.shape, generator=generator, device=x.device).to(x.dtype)
            u = 2 * u - 1
            (vjp,) = torch.autograd.grad(v, xg, grad_outputs=u)
            div = (vjp * u).sum(1)
        else:
            div = torch.zeros(len(x), dtype=x.dtype, device=x.device)
            for i in range(x.shape[1]):
                (g,) = torch.autograd.grad(v[:, i].sum(), xg, retain_graph=i + 1 < x.shape[1])
                div = div + g[:, i]
    return v.detach(), div


def _unwrapped(field):
    """The field inside the wrappers that count or poll its calls (each holds it as
    ``.field``; ``models/solvers/counting.py``)."""
    while not isinstance(field, ExactField) and isinstance(getattr(field, "field", None),
                                                           Callable):  # fmt: skip
        field = field.field
    return field


class CarriedField:
    """The augmented field of the state (x, log p), shape (N, 3): velocity (v, −∇·v).

    Integrating it with any sampler of ``models.samplers`` carries log p_t along the ODE with
    that sampler's own steps, so the positions are exactly the sampler's (the arithmetic on the
    x columns is the same, element by element).
    """

    def __init__(self, field: Field, method: str = "exact", generator=None):
        if method not in DIVERGENCES:
            raise ValueError(f"divergence must be one of {DIVERGENCES}, got {method!r}")
        self.field, self.method, self.generator = field, method, generator

    def __call__(self, state: Tensor, t: float, want=("velocity",)) -> dict[str, Tensor]:
        x = state[:, :2].contiguous()
        v, div = divergence(self.field, x, t, self.method, self.generator)
        return {"velocity": torch.cat([v, -div.to(v.dtype)[:, None]], dim=1)}

    def euler_step(self, state: Tensor, t: float, h: float, score_weight: float,
                   out: Tensor) -> Tensor | None:  # fmt: skip
        """An Euler step of the state (N, 3) into ``out``: the positions by the exact field's
        fused step, as the run without log p takes it (``models.samplers.fused_step``: the
        same bits), log p by −h ∇·v as ``__call__``'s step. None where the field has no fused
        step (the sampler then calls this field)."""
        x = state[:, :2].contiguous()
        # the field inside the counting wrapper: the divergence's own call counts the step
        moved = fused_step(_unwrapped(self.field), x, t, h, score_weight, torch.empty_like(x))
        if moved is None:
            return None
        div = _traced(self.field, x, t, self.method, self.generator)[1]
        out[:, :2] = moved
        out[:, 2] = state[:, 2] + h * -div.to(state.dtype)
        return out


def integrate(field: Field, path: GaussianPath, x: Tensor, times, logp0: Tensor,
              solver="heun", method: str = "exact", generator=None,
              callback=None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Integrate the probability-flow ODE with the log-density it carries: the augmented state
    (x, log p) through the sampler ``solver`` of ``models.solvers`` (η = 0).

    Args:
        x: start positions (N, 2) at times[0].
        times: (T+1,) increasing or decreasing.
        logp0: log-density of the start positions, (N,).
        solver: the name of a solver that steps on the velocity alone (``CARRIERS``: the
            exponential integrators need x̂ and ε̂, which the log-density column has not), or
            such a sampler itself.
        method: divergence, ``exact`` or ``hutchinson``.
        callback: optional ``({"i", "t", "x"}) -> None`` after every step (to cancel); its
            ``x`` is the positions (N, 2).

    Returns:
        (trajectories (T+1, N, 2), log-densities (T+1, N)), in x's dtype.
    """
    if isinstance(solver, str):
        if solver not in CARRIERS:
            raise ValueError(f"log p is carried by the solvers {', '.join(CARRIERS)}, "
                             f"not {solver!r}")  # fmt: skip
        solver = sampler_of(solver)
    if hasattr(solver, "error_columns"):  # an adaptive solver steps as on the positions alone
        solver.error_columns = x.shape[1]
    state = torch.cat([x, logp0.to(x.dtype)[:, None]], dim=1)

    def positions(info) -> None:
        callback({**info, "x": info["x"][:, :2]})

    carried = solver(CarriedField(field, method, generator), path, state, times,
                     callback=None if callback is None else positions)  # fmt: skip
    return carried[..., :2], carried[..., 2]


def gaussian_log_density(x: Tensor, std: float) -> Tensor:
    """log N(x; 0, std² I) in 2D, shape (N,)."""
    return -0.5 * (x * x).sum(1) / std**2 - math.log(2 * math.pi * std**2)


def model_log_density(
    field: Field,
    path: GaussianPath,
    t: float,
    grid: Grid,
    steps: int = 100,
    solver: str = "heun",
    method: str = "exact",
) -> Tensor:
    """log p_t at the cell centres that the field's own flow defines, (H, W) float64.

    Integrates from each centre at t to 1 (⌈(1 − t)·steps⌉ steps) and adds the prior's
    log-density at the end point: log N(x_1; 0, b(1)² I) + ∫_t^1 ∇·v dt.
    """
    xs, ys = grid.centres(dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    n = max(1, math.ceil((1.0 - t) * steps))
    times = torch.linspace(t, 1.0, n + 1, dtype=torch.float64)
    traj, acc = integrate(
        field, path, pts, times, torch.zeros(len(pts), dtype=torch.float64), solver, method
    )
    b1 = float(path.coefficients(torch.tensor(1.0, dtype=torch.float64)).b)
    return (gaussian_log_density(traj[-1], b1) - acc[-1]).reshape(grid.shape)


def carried_trajectories(config, path: GaussianPath, data, reference, field, generator, times,
                         callback=None, sampler=None):  # fmt: skip
    """The ODE run of ``models.run.simulate.trajectories`` (same particles) with log p_t carried
    along. ``config``: the run's settings (a ``RunConfig``: particles, direction, solver,
    device); ``reference``: the data mixture (a ``Reference``); ``times``: the run's grid
    (T+1,) (``models.run.simulate.run_times``); ``sampler``: the run's (default: its solver's).

    The start density is the one the particles are drawn from: the data mixture (forward) or
    the prior N(0, b(1)² I) (reverse). Returns (trajectories (T+1, N, 2), times (T+1,),
    labels (N,), log-densities (T+1, N)).
    """
    n = config.particles
    if config.direction == "forward":
        x, labels = data.sample(n, generator, device=config.device)
        mixture = ExactField(path, reference, device=config.device)
        logp0 = mixture.log_density(x, 0.0)  # the data density (built-in sets are mixtures)
    else:
        x = path.prior(n, float(times[0]), generator, device=config.device)
        b1 = float(path.coefficients(torch.tensor(1.0, dtype=torch.float64)).b)
        logp0 = gaussian_log_density(x, b1)
    solver = sampler if sampler is not None else config.solver
    traj, logp = integrate(field, path, x, times, logp0, solver, callback=callback)
    if config.direction == "reverse":
        labels = field.nearest_label(traj[-1], 0.0)
    return traj, times, labels.cpu(), logp

"""Samplers that return whole trajectories (docs/MATH.md §4).

Every sampler has one signature, after k-diffusion::

    sampler(field, path, x, times, eta=0.0, generator=None, callback=None) -> (T+1, N, 2)

``field(x, t, want)`` returns a dict of (N, 2) tensors (see :class:`models.fields.ExactField`;
a field class may also define a fused Euler step, ``euler_step``, which :func:`euler_step` uses);
``times`` is the (T+1,) grid, increasing for forward runs and decreasing for reverse runs. Index 0
of the result is the start ``x``. ``callback`` gets ``{"i", "t", "x"}`` after every step.
``generator`` is a ``torch.Generator`` (or None), or a noise source with ``draw(x)``: a row
block's share of each step's noise when a run is split over threads (``models/accel/parallel.py``).

The η-family with the same marginals as the forward process, for a step h = t_next − t of either
sign, is

    dx = [ v + sign(h) ½ η² g² s ] dt + η g dw

which is Anderson's reverse SDE for η = 1 and h < 0, the forward SDE for η = 1 and h > 0, and
the probability-flow ODE for η = 0.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import torch
from torch import Tensor

from models.paths import GaussianPath

Field = Callable[..., dict[str, Tensor]]


def eta_drift(
    field: Field, path: GaussianPath, x: Tensor, t: float, h: float, eta: float
) -> Tensor:
    """Drift of the η-family at (x, t) for a step of sign(h), shape (N, 2)."""
    if eta == 0:
        return field(x, t, ("velocity",))["velocity"]
    out = field(x, t, ("velocity", "score"))
    g2 = path.at(t)["g2"]
    return out["velocity"] + math.copysign(0.5 * eta**2 * g2, h) * out["score"]


def euler_step(field: Field, path: GaussianPath, x: Tensor, t: float, h: float, eta: float,
               out: Tensor) -> Tensor:  # fmt: skip
    """x + h · drift of the η-family at (x, t), (N, 2): by the field's own fused step where its
    class has one (``ExactField.euler_step`` writes it into ``out``), else ``eta_drift``."""
    w = math.copysign(0.5 * eta**2 * path.at(t)["g2"], h) if eta != 0 else 0.0
    stepped = fused_step(field, x, t, h, w, out)
    return stepped if stepped is not None else x + h * eta_drift(field, path, x, t, h, eta)


def fused_step(field: Field, x: Tensor, t: float, h: float, score_weight: float,
               out: Tensor) -> Tensor | None:  # fmt: skip
    """``field.euler_step(x, t, h, score_weight, out)`` if the field's *class* defines it, else
    None. Looked up on the class: a wrapper that changes the field (guidance, a learned
    correction) and forwards unknown attributes to the field it wraps must not hand over the
    inner field's step."""
    step = getattr(type(field), "euler_step", None)
    return None if step is None else step(field, x, t, h, score_weight, out)


def noise(x: Tensor, generator) -> Tensor:
    """Standard normal noise shaped like x, from a generator or a noise source (see above)."""
    if hasattr(generator, "draw"):
        return generator.draw(x)
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def trajectory(first: Tensor, steps: int) -> Tensor:
    """An empty (steps+1, N, 2) buffer like ``first``, with frame 0 = first."""
    out = torch.empty((steps + 1, *first.shape), dtype=first.dtype, device=first.device)
    out[0] = first
    return out


def sample_euler(field, path, x, times, eta=0.0, generator=None, callback=None) -> Tensor:
    """Euler (η = 0) or Euler–Maruyama (η > 0) steps of the η-family; order 1 (weak and strong:
    the noise is additive)."""
    ts = [float(t) for t in times]
    path.remember(torch.tensor(ts, dtype=torch.float64))
    traj = trajectory(x, len(ts) - 1)
    for i, (t, t_next) in enumerate(itertools.pairwise(ts)):
        h, frame = t_next - t, traj[i + 1]
        x = euler_step(field, path, x, t, h, eta, frame)
        if eta > 0:
            g = math.sqrt(max(path.at(t)["g2"], 0.0))
            x = x + eta * g * math.sqrt(abs(h)) * noise(x, generator)
        if x is not frame:
            frame.copy_(x)
        if callback is not None:
            callback({"i": i, "t": t_next, "x": x})
    return traj


def sample_heun(field, path, x, times, eta=0.0, generator=None, callback=None) -> Tensor:
    """Heun's method (explicit trapezoid) for the probability-flow ODE; order 2.

    Implements Algorithm 1 of Karras et al. (2022) in t; the exact field is finite at t = 0, so
    the last step is a full Heun step too.
    """
    if eta != 0:
        raise ValueError("Heun is a deterministic solver: use eta = 0 (or the euler solver)")
    ts = [float(t) for t in times]
    path.remember(torch.tensor(ts, dtype=torch.float64))
    traj = trajectory(x, len(ts) - 1)
    for i, (t, t_next) in enumerate(itertools.pairwise(ts)):
        h = t_next - t
        d = field(x, t, ("velocity",))["velocity"]
        x_euler = x + h * d
        d_next = field(x_euler, t_next, ("velocity",))["velocity"]
        x = x + 0.5 * h * (d + d_next)
        traj[i + 1] = x
        if callback is not None:
            callback({"i": i, "t": t_next, "x": x})
    return traj


def forward_sde_exact(path: GaussianPath, x0: Tensor, times: Tensor, generator=None) -> Tensor:
    """Forward SDE with its exact Gaussian transition, exact for any step size (docs/MATH.md §4).

    x_{t+h} = r x_t + √(b(t+h)² − r² b(t)²) z, r = a(t+h)/a(t). ``times`` increasing from 0.
    Returns (T+1, N, 2).
    """
    c = path.coefficients(times.to(torch.float64))
    traj = trajectory(x0, len(times) - 1)
    x = x0
    for i in range(len(times) - 1):
        r = float(c.a[i + 1] / c.a[i])
        var = float(c.b[i + 1] ** 2 - r**2 * c.b[i] ** 2)
        x = r * x + math.sqrt(max(var, 0.0)) * noise(x, generator)
        traj[i + 1] = x
    return traj


def conditional_paths(path: GaussianPath, x0: Tensor, times: Tensor, generator=None) -> Tensor:
    """x_t = a(t) x0 + b(t) ε with one fixed ε per particle, shape (T+1, N, 2).

    Straight lines for linear flow matching; they cross each other, unlike marginal ODE paths.
    """
    eps = noise(x0, generator)
    c = path.coefficients(times.to(torch.float64))
    a = c.a.to(x0.dtype).to(x0.device)[:, None, None]
    b = c.b.to(x0.dtype).to(x0.device)[:, None, None]
    return a * x0[None] + b * eps[None]


def time_grid(start: float, end: float, steps: int) -> Tensor:
    """Uniform grid of ``steps`` + 1 times from ``start`` to ``end``, float64 (T+1,)."""
    return torch.linspace(start, end, steps + 1, dtype=torch.float64)


class Cancelled(Exception):
    """Raised from a sampler callback to drop a run that a newer request superseded."""

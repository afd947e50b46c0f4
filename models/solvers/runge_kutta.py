"""Explicit Runge–Kutta methods for the probability-flow ODE dx/dt = v(x, t) (docs/MATH.md §4).

Both run in either direction (h = t_{k+1} − t_k of either sign) and evaluate the field at the
grid times and at midpoints only, so never outside [0, 1]; the exact field and the learned one
are finite at both ends, so the last step is a full step too.
"""

from __future__ import annotations

import itertools

from models.solvers.base import grid_times, require_ode, trajectory


def _velocity(field, x, t):
    return field(x, t, ("velocity",))["velocity"]


def sample_midpoint(field, path, x, times, eta=0.0, generator=None, callback=None):
    """Explicit midpoint rule, order 2, two evaluations per step:
    k₁ = v(x, t), x' = x + h v(x + ½ h k₁, t + ½ h). Returns (T+1, N, 2)."""
    require_ode("midpoint", eta)
    ts = grid_times(path, times)
    traj = trajectory(x, len(ts) - 1)
    for i, (t, t_next) in enumerate(itertools.pairwise(ts)):
        h = t_next - t
        k1 = _velocity(field, x, t)
        x = x + h * _velocity(field, x + (0.5 * h) * k1, t + 0.5 * h)
        traj[i + 1] = x
        if callback is not None:
            callback({"i": i, "t": t_next, "x": x})
    return traj


def sample_rk4(field, path, x, times, eta=0.0, generator=None, callback=None):
    """Classical Runge–Kutta, order 4, four evaluations per step:
    k₁ = v(x, t), k₂ = v(x + ½h k₁, t + ½h), k₃ = v(x + ½h k₂, t + ½h), k₄ = v(x + h k₃, t + h),
    x' = x + h (k₁ + 2k₂ + 2k₃ + k₄)/6. Returns (T+1, N, 2)."""
    require_ode("rk4", eta)
    ts = grid_times(path, times)
    traj = trajectory(x, len(ts) - 1)
    for i, (t, t_next) in enumerate(itertools.pairwise(ts)):
        h = t_next - t
        t_mid = t + 0.5 * h
        k1 = _velocity(field, x, t)
        k2 = _velocity(field, x + (0.5 * h) * k1, t_mid)
        k3 = _velocity(field, x + (0.5 * h) * k2, t_mid)
        k4 = _velocity(field, x + h * k3, t_next)
        x = x + (h / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
        traj[i + 1] = x
        if callback is not None:
            callback({"i": i, "t": t_next, "x": x})
    return traj

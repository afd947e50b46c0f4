"""Exponential integrators in the log-SNR λ = log(a/b): DDIM (and its η-family) and
DPM-Solver++(2M) (docs/MATH.md §4).

On a Gaussian path the probability-flow ODE in data prediction reads (Lu et al. 2022)

    d(x/b)/dλ = e^λ x̂(x, λ),

so a step from t to s with x̂ held fixed integrates the linear part exactly:

    x_s = (b_s/b_t) x_t + a_s (1 − e^{−h}) x̂ = a_s x̂ + b_s ε̂,   h = λ_s − λ_t,
    ε̂ = (x_t − a_t x̂)/b_t.

The second form is the one computed: it is finite at both ends of every path, where h is
infinite (fm and trig at t = 1: a_t = 0, λ_t = −∞, e^{−h} = 0, x_s = (b_s/b_t) x_t + a_s x̂;
a step landing at b_s = 0: x_s = a_s x̂), and it holds for h of either sign, so forward runs use
the same formula. Where b_t = 0 (a forward run from t = 0) ε̂ is the field's own (its limit).
"""

from __future__ import annotations

import itertools
import math

from models.solvers.base import grid_times, log_snr, noise, require_ode, trajectory


def _denoised(field, x, t: float, a: float, b: float):
    """(x̂, ε̂), each (N, 2), at (x, t) from one evaluation of the field: ε̂ from x̂ where b > 0
    (data prediction: ε̂ then matches x exactly), else the field's own ε̂."""
    if b > 0:
        x0 = field(x, t, ("x0",))["x0"]
        return x0, (x - a * x0) / b
    out = field(x, t, ("x0", "eps"))
    return out["x0"], out["eps"]


def _decay(a_t: float, b_t: float, a_s: float, b_s: float) -> float:
    """ρ = e^{−|λ_s − λ_t|} ∈ [0, 1], as a ratio of products (no infinities: at most one of
    a_t b_s and a_s b_t is 0 on a strictly monotone grid)."""
    num, den = a_t * b_s, a_s * b_t
    return min(num, den) / max(num, den)


def sample_ddim(field, path, x, times, eta=0.0, generator=None, callback=None):
    """DDIM: the first-order exponential integrator, and its η-family for η ∈ (0, 1].

    One evaluation per step. With ρ = e^{−|h|} and ε̂ = (x_t − a_t x̂)/b_t:

        x_s = a_s x̂ + b_s [ √(1 − η²(1 − ρ²)) ε̂ + η √(1 − ρ²) z ],   z ~ N(0, I).

    η = 0 is the exponential step of the ODE. η = 1 on a reverse step (s < t) draws x_s from
    the path's exact posterior q(x_s | x_t, x₀ = x̂): for the forward transition
    x_t = r x_s + σ_{t|s} z, r = a_t/a_s, σ²_{t|s} = b_t² − r² b_s²,

        q(x_s | x_t, x₀) = N( (r b_s²/b_t²) x_t + (a_s σ²_{t|s}/b_t²) x₀,  (σ²_{t|s} b_s²/b_t²) I ),

    and σ²_{t|s}/b_t² = 1 − ρ², so the posterior's standard deviation is b_s √(1 − ρ²) and its
    mean a_s x̂ + b_s ρ ε̂ (DDPM's ancestral step on a general Gaussian path). η = 1 on a
    forward step (s > t) is the exact forward transition x_s = (a_s/a_t) x_t + b_s √(1 − ρ²) z.
    Any η keeps x_s | x₀ ~ N(a_s x₀, b_s² I) when x̂ = x₀, in either direction.

    Returns (T+1, N, 2); the noise z is drawn every step when η > 0 (none when η = 0).
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"ddim needs eta in [0, 1], got {eta:g}")
    ts = grid_times(path, times)
    traj = trajectory(x, len(ts) - 1)
    for i, (t, s) in enumerate(itertools.pairwise(ts)):
        ct, cs = path.at(t), path.at(s)
        x0, eps = _denoised(field, x, t, ct["a"], ct["b"])
        if eta == 0:
            x = cs["a"] * x0 + cs["b"] * eps
        else:
            lost = 1.0 - _decay(ct["a"], ct["b"], cs["a"], cs["b"]) ** 2  # 1 − ρ²
            keep = math.sqrt(max(1.0 - eta**2 * lost, 0.0))
            z = noise(x, generator)
            x = cs["a"] * x0 + cs["b"] * (keep * eps + (eta * math.sqrt(lost)) * z)
        traj[i + 1] = x
        if callback is not None:
            callback({"i": i, "t": s, "x": x})
    return traj


def sample_dpmpp_2m(field, path, x, times, eta=0.0, generator=None, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): multistep, second order, one evaluation
    per step.

    With h = λ_s − λ_t, h₋ the previous step's and x̂₋ the previous evaluation's denoiser,

        x_s = a_s x̂ + b_s ε̂ + a_s (1 − e^{−h}) (h / 2h₋) (x̂ − x̂₋),

    which is the paper's x_s = (b_s/b_t) x_t − a_s (e^{−h} − 1) D with
    D = (1 + 1/2r) x̂ − (1/2r) x̂₋, r = h₋/h. The factor a_s (1 − e^{−h}) is computed as
    a_s − a_t b_s/b_t (finite wherever b_t > 0; forward h < 0 included). The first step and the
    last one are DDIM steps (first order; "lower-order final": stable at few steps, and the
    last step may land on b_s = 0 where h = ∞). Where h₋ is infinite (the step after a start at
    a = 0) the correction is 0. Returns (T+1, N, 2).
    """
    require_ode("dpmpp2m", eta)
    ts = grid_times(path, times)
    steps = len(ts) - 1
    traj = trajectory(x, steps)
    x0_prev, h_prev = None, math.nan
    for i, (t, s) in enumerate(itertools.pairwise(ts)):
        ct, cs = path.at(t), path.at(s)
        a_t, b_t, a_s, b_s = ct["a"], ct["b"], cs["a"], cs["b"]
        x0, eps = _denoised(field, x, t, a_t, b_t)
        h = log_snr(a_s, b_s) - log_snr(a_t, b_t)
        x_next = a_s * x0 + b_s * eps
        if x0_prev is not None and i < steps - 1 and math.isfinite(h) and math.isfinite(h_prev):
            x_next = x_next + ((a_s - a_t * b_s / b_t) * h / (2.0 * h_prev)) * (x0 - x0_prev)
        x, x0_prev, h_prev = x_next, x0, h
        traj[i + 1] = x
        if callback is not None:
            callback({"i": i, "t": s, "x": x})
    return traj

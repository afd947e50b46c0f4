"""Adaptive Dormand–Prince 5(4) for the probability-flow ODE, with dense output at the run's
times (docs/MATH.md §4).

All particles share one step size: the error of a step is Hairer's norm over every coordinate
of every particle, err = √(mean (e_i / (atol + rtol max(|x_i|, |x'_i|)))²), and a step is
accepted when err ≤ 1. The step size follows Hairer's PI controller (Hairer, Nørsett & Wanner,
vol. I §II.4, the ``dopri5`` code: β = 0.04, safety 0.9, factors in [0.2, 10], no growth right
after a rejection). The output times are not step ends: the solution there is the method's
fourth-order continuous extension (Dormand & Prince; the coefficients of Shampine's
interpolant as in scipy's RK45), which costs no evaluations.
"""

from __future__ import annotations

import math
import threading

import torch

from models.solvers.base import grid_times, require_ode, trajectory

C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),  # = B: the FSAL stage
)
# B̂ − B, the error estimate's weights (its sign does not matter to the norm)
E = (-71 / 57600, 0.0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40)
P = (  # dense output: x(t + θh) = x + h Σ_i k_i Σ_j P[i][j] θ^{j+1}
    (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
    (0.0, 0.0, 0.0, 0.0),
    (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
    (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
    (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
    (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
    (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
)
SAFETY, FAC_MIN, FAC_MAX, BETA = 0.9, 0.2, 10.0, 0.04
ALPHA = 0.2 - 0.75 * BETA  # the PI controller's exponents (Hairer's dopri5)


def _combine(x, h: float, weights, ks):
    """x + h Σ w_i k_i over the nonzero weights (ks: list of (N, 2))."""
    out = x
    for w, k in zip(weights, ks, strict=False):
        if w != 0.0:
            out = out + (h * w) * k
    return out


class Dopri5:
    """A sampler (the samplers' signature) that integrates the ODE adaptively.

    Args:
        rtol, atol: the error tolerances of the norm above.
        max_steps: accepted plus rejected steps allowed before RuntimeError.

    After a call, ``stats`` holds ``{"accepted", "rejected", "nfe"}`` of that call (nfe =
    2 + 6 (accepted + rejected): one evaluation at the start, one more for the first step size,
    six per step thanks to "first same as last"); the callback's info carries the same counts
    so far. Run in row blocks (``models/accel/parallel.py``), each block would choose its own
    steps: the result would depend on the split, so run it in one block.
    """

    def __init__(self, rtol: float = 1e-5, atol: float = 1e-6, max_steps: int = 100_000):
        if not (rtol > 0 and atol > 0 and math.isfinite(rtol) and math.isfinite(atol)):
            raise ValueError(f"dopri5 needs rtol > 0 and atol > 0, got {rtol:g}, {atol:g}")
        self.rtol, self.atol, self.max_steps = float(rtol), float(atol), int(max_steps)
        # the columns of the state the error norm reads (None: all). A state that carries more
        # than positions (log p: models/logdensity.py) must take the positions' steps.
        self.error_columns: int | None = None
        self.stats = {"accepted": 0, "rejected": 0, "nfe": 0}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Dopri5(rtol={self.rtol:g}, atol={self.atol:g})"

    def _norm(self, e, x, x_new) -> float:
        if self.error_columns is not None:
            cols = self.error_columns
            e, x, x_new = e[..., :cols], x[..., :cols], x_new[..., :cols]
        scale = self.atol + self.rtol * torch.maximum(x.abs(), x_new.abs())
        return float(torch.sqrt(torch.mean((e / scale) ** 2)))

    def _first_step(self, f, x, t: float, k1, direction: float, span: float) -> float:
        """Hairer's starting step (vol. I §II.4): h₀ from |x| and |k₁|, refined by one Euler
        step's change of the field; at most the whole span."""
        d0, d1 = self._norm(x, x, x), self._norm(k1, x, x)
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        h0 = min(h0, span)
        k2 = f(x + (direction * h0) * k1, t + direction * h0)
        d2 = self._norm(k2 - k1, x, x) / h0
        big = max(d1, d2)
        h1 = max(1e-6, h0 * 1e-3) if big <= 1e-15 else (0.01 / big) ** 0.2
        return min(100.0 * h0, h1, span)

    def __call__(self, field, path, x, times, eta=0.0, generator=None, callback=None):
        """Integrate from times[0] through every time of the grid; returns (T+1, N, 2)."""
        require_ode("dopri5", eta)
        ts = grid_times(path, times)
        traj = trajectory(x, len(ts) - 1)
        counts = {"accepted": 0, "rejected": 0, "nfe": 0}

        def f(y, t):
            counts["nfe"] += 1
            return field(y, t, ("velocity",))["velocity"]

        t, t_end = ts[0], ts[-1]
        direction = math.copysign(1.0, t_end - t)
        k1 = f(x, t)
        h = self._first_step(f, x, t, k1, direction, abs(t_end - t))
        out, err_old, rejected_last = 1, 1e-4, False
        while out < len(ts):
            if counts["accepted"] + counts["rejected"] >= self.max_steps:
                raise RuntimeError(f"dopri5: more than {self.max_steps} steps (rtol {self.rtol:g})")
            last = h >= abs(t_end - t) * (1 - 1e-12)
            t_new = t_end if last else t + direction * h
            dh = t_new - t
            ks = [k1]
            for i in range(1, 7):
                stage = t_new if i >= 5 else t + C[i] * dh  # c = 1 lands exactly on t_new
                y = _combine(x, dh, A[i], ks)
                if i == 6:
                    x_new = y
                ks.append(f(y, stage))
            err = self._norm(_combine(torch.zeros_like(x), dh, E, ks), x, x_new)
            if not math.isfinite(err) or err > 1.0:  # reject: shrink, never below FAC_MIN
                counts["rejected"] += 1
                rejected_last = True
                fac = FAC_MIN if not math.isfinite(err) else max(FAC_MIN, SAFETY * err**-0.2)
                h = abs(dh) * fac
                if h <= 1e-14 * max(1.0, abs(t)):
                    raise RuntimeError(f"dopri5: step size underflow at t = {t:.6g}")
                continue
            counts["accepted"] += 1
            while out < len(ts) and (ts[out] - t_new) * direction <= 0:  # outputs in (t, t_new]
                traj[out] = x_new if ts[out] == t_new else self._dense(x, dh, ks, ts[out] - t)
                if callback is not None:
                    callback({"i": out - 1, "t": ts[out], "x": traj[out], **counts})
                out += 1
            fac = SAFETY * max(err, 1e-10) ** -ALPHA * err_old**BETA
            fac = min(max(fac, FAC_MIN), 1.0 if rejected_last else FAC_MAX)
            h, err_old, rejected_last = abs(dh) * fac, max(err, 1e-4), False
            x, t, k1 = x_new, t_new, ks[6]
        with self._lock:
            self.stats = dict(counts)
        return traj

    @staticmethod
    def _dense(x, dh: float, ks, offset: float):
        """The continuous extension at t + offset inside the accepted step of size dh."""
        theta = offset / dh
        powers = (theta, theta**2, theta**3, theta**4)
        weights = [sum(p * w for p, w in zip(powers, row, strict=True)) for row in P]
        return _combine(x, dh, weights, ks)


def dopri5(rtol: float = 1e-5, atol: float = 1e-6, max_steps: int = 100_000) -> Dopri5:
    """A Dormand–Prince 5(4) sampler with these tolerances (see :class:`Dopri5`)."""
    return Dopri5(rtol, atol, max_steps)

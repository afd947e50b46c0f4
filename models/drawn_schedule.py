"""The drawn schedule: a log-SNR λ(t) through control points (t_i, λ_i) (docs/MATH.md §2.1).

The curve is scipy's PCHIP (monotone, C¹) through the points, extended below the first point
like −log t (a finite β(0) > 0) and beyond the last linearly; a drawing that does not fall, or
falls too steeply to integrate, is refused with one line. Its text form "t:λ,…" travels in
links and on the command line (``format_points``, ``parse_points``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from models.logsnr import LogSNRSchedule, Schedule

LAMBDA_LIMIT = 30.0  # |λ| of a drawn point: a² between 9e-14 and 1 − 9e-14
MIN_POINTS, MAX_POINTS = 2, 64
# How steep a drawing may be (docs/MATH.md §2, drawn schedule), both for a 1000-step run:
# λ falls by at most 1 within any RATE_STEP = 1e-3 of time (one step) where it crosses the band
# −4 ≤ λ ≤ 8 in which the denoiser changes (measured: a cliff of 0.72 per step keeps samples
# within 10 % of the linear schedule's, 1.5 and 3 per step do not), from t = 1e-3 (runs stop) on;
# and β ≤ 1e4 everywhere (h β ≤ 10), a guard above the steepest named schedule's β(1) (shifted
# cosine, 5.7e3, where a ≈ 0 and β hardly matters), so that every named schedule redraws.
RATE_STEP, RATE_LIMIT = 1e-3, 1.0
SIGNAL_BAND = (-4.0, 8.0)
BETA_LIMIT = 1e4
MIN_GAP = 1e-6  # the least t between two points, and the least t of a first point above 0
SAMPLE_T_FIRST = 0.005  # first control point of a sampled schedule whose λ(0) = +∞


Points = tuple[tuple[float, float], ...]


def check_points(points: Sequence[Sequence[float]]) -> Points:
    """Validate control points (t_i, λ_i) and return them as a tuple of float pairs.

    Raises ValueError with one plain line when the drawing is not 2..64 finite pairs with t
    strictly increasing in [0, 1] and λ strictly decreasing within ±30.
    """
    pts = []
    for k, point in enumerate(points, start=1):
        try:
            t, lam = (float(v) for v in point)
        except (TypeError, ValueError):
            raise ValueError(f"schedule point {k} is not a (t, log-SNR) pair: {point!r}") from None
        pts.append((t, lam))
    if len(pts) < MIN_POINTS:
        raise ValueError(f"a drawn schedule needs at least {MIN_POINTS} points, got {len(pts)}")
    if len(pts) > MAX_POINTS:
        raise ValueError(f"a drawn schedule takes at most {MAX_POINTS} points, got {len(pts)}")
    for k, (t, lam) in enumerate(pts, start=1):
        if not (math.isfinite(t) and math.isfinite(lam)):
            raise ValueError(f"schedule point {k} is not a finite number: t={t}, log-SNR={lam}")
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"schedule point {k} has t = {t:g}, outside [0, 1]")
        if abs(lam) > LAMBDA_LIMIT:
            raise ValueError(
                f"schedule point {k} has log-SNR {lam:g}, outside "
                f"[-{LAMBDA_LIMIT:g}, {LAMBDA_LIMIT:g}]"
            )
    for k in range(1, len(pts)):
        (t0, l0), (t1, l1) = pts[k - 1], pts[k]
        if not t1 > t0:
            raise ValueError(
                f"schedule points must go left to right in t: point {k + 1} (t = {t1:g}) "
                f"is not after point {k} (t = {t0:g})"
            )
        if t1 - t0 < MIN_GAP:
            raise ValueError(
                f"schedule points {k} and {k + 1} are closer than {MIN_GAP:g} in t "
                f"(t = {t0:g}, {t1:g}): spread them out"
            )
        if not l1 < l0:
            raise ValueError(
                f"the log-SNR must fall from left to right: point {k + 1} (log-SNR {l1:g}) "
                f"is not below point {k} (log-SNR {l0:g})"
            )
    if 0.0 < pts[0][0] < MIN_GAP:  # the −log t extension below it divides by t_first
        raise ValueError(f"the first schedule point is at t = {pts[0][0]:g}: put it at 0 or "
                         f"at t >= {MIN_GAP:g}")  # fmt: skip
    return tuple(pts)


def _number(x: float) -> str:
    """Shortest text that float() reads back as x exactly ('1', '0.25', '-7.5', '1e-05')."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def format_points(points: Sequence[Sequence[float]], digits: int | None = None) -> str:
    """'t:λ,t:λ,…', shortest round-trip text of each number: parse_points gives the points
    back exactly. Uses only digits, '.', '-', 'e', ':' and ',' (safe in a URL query).

    ``digits``: round each number to that many significant digits first (a dragged point's
    17 digits make a long link; 6 keep 64 points under 1200 characters). The rounded points
    are what the text holds, and they round-trip exactly.
    """

    def text(x) -> str:
        x = float(x)
        if digits is not None and math.isfinite(x):
            x = float(f"{x:.{digits}g}")
        return _number(x)

    return ",".join(f"{text(t)}:{text(lam)}" for t, lam in points)


def parse_points(text: str) -> Points:
    """Read 't:λ,t:λ,…' (spaces allowed) into validated points (see :func:`check_points`)."""
    parts = [p for p in str(text).replace(" ", "").split(",") if p]
    if not parts:
        raise ValueError("no schedule points given: write t:log-SNR pairs such as 0:8,1:-10")
    pts = []
    for k, part in enumerate(parts, start=1):
        try:
            t, lam = part.split(":")
            pts.append((float(t), float(lam)))
        except ValueError:
            raise ValueError(
                f"cannot read schedule point {k} {part!r}: write t:log-SNR pairs separated "
                "by commas, such as 0:8,0.5:0,1:-10"
            ) from None
    return check_points(pts)


# The default drawing (`make_schedule("points")` without points): the linear schedule
# (β 0.1..20) at 8 points, sample_log_snr(LinearSchedule(), 8, digits=4).
DEFAULT_POINTS: Points = (
    (0.005, 7.197), (0.04545, 3.672), (0.1777, 0.9322), (0.3553, -0.9702),
    (0.5344, -2.838), (0.7028, -4.978), (0.8577, -7.405), (1.0, -10.05),
)  # fmt: skip


@dataclass(frozen=True)
class DrawnSchedule(LogSNRSchedule):
    """A drawn schedule: λ(t) is the monotone cubic (PCHIP, Fritsch–Carlson) through the
    control points (t_i, λ_i), C¹, with its exact derivative. Outside the points:

    - t < t_1: λ = λ_1 − log(t/t_1) + m (t − t_1), m = λ′(t_1) + 1/t_1. Slope-continuous at
      t_1, strictly decreasing (λ′ = m − 1/t < 0), and λ ≈ −log t at 0 like every schedule
      with 0 < β(0) < ∞: β(0) = e^{m t_1 − λ_1}/t_1 (the pure −c log(t/t_1) extension gives
      β(0) = ∞ when c = −λ′(t_1) t_1 < 1).
    - t > t_n: linear with the end slope d_n; PCHIP may give d_n = 0 exactly, and then the tail
      is λ_n − ½ κ (t − t_n)², κ = |last secant| / (last gap), to stay strictly decreasing.

    Refused (ValueError, one line): what :func:`check_points` refuses, drawings whose λ falls
    by more than 1 within 0.001 of time (a step of a 1000-step run) in SIGNAL_BAND
    (−4 ≤ λ ≤ 8), for t ≥ 0.001, and drawings whose β exceeds BETA_LIMIT = 1e4 anywhere.
    """

    points: Points = DEFAULT_POINTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", check_points(self.points))
        self._check_steepness()

    @cached_property
    def _spline(self) -> dict[str, np.ndarray | float]:
        from scipy.interpolate import PchipInterpolator

        t, lam = (np.array(v, dtype=np.float64) for v in zip(*self.points, strict=True))
        spline = PchipInterpolator(t, lam)
        slope = spline.derivative()(t[[0, -1]])
        d_first, d_last = min(float(slope[0]), 0.0), min(float(slope[1]), 0.0)
        gap, secant = t[-1] - t[-2], (lam[-1] - lam[-2]) / (t[-1] - t[-2])
        return {
            "x": spline.x, "c": spline.c, "t1": float(t[0]), "l1": float(lam[0]),
            "m": d_first + 1.0 / t[0] if t[0] > 0 else 0.0, "tn": float(t[-1]),
            "ln": float(lam[-1]), "dn": d_last, "kappa": -secant / gap if d_last == 0 else 0.0,
        }  # fmt: skip

    def _tensors(self, like: Tensor) -> tuple[Tensor, Tensor]:
        cache = self.__dict__.setdefault("_tensor_cache", {})  # per dtype and device
        key = (like.dtype, like.device)
        if key not in cache:
            sp = self._spline
            cache[key] = tuple(
                torch.as_tensor(np.ascontiguousarray(v), dtype=like.dtype, device=like.device)
                for v in (sp["x"], sp["c"])
            )
        return cache[key]

    def _inside(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """λ and λ′ of the cubic pieces at t clamped into [t_1, t_n]."""
        x, c = self._tensors(t)
        tc = t.clamp(self._spline["t1"], self._spline["tn"])
        i = torch.searchsorted(x[1:-1].contiguous(), tc.reshape(-1).contiguous(), right=True)
        i = i.reshape(t.shape)
        s = tc - x[i]
        c0, c1, c2, c3 = c[0][i], c[1][i], c[2][i], c[3][i]
        return ((c0 * s + c1) * s + c2) * s + c3, (3.0 * c0 * s + 2.0 * c1) * s + c2

    def _lam(self, t: Tensor) -> Tensor:
        sp = self._spline
        lam, _ = self._inside(t)
        s = t - sp["tn"]
        lam = torch.where(t > sp["tn"], sp["ln"] + (sp["dn"] - 0.5 * sp["kappa"] * s) * s, lam)
        if sp["t1"] > 0:
            left = sp["l1"] - torch.log(t / sp["t1"]) + sp["m"] * (t - sp["t1"])
            lam = torch.where(t < sp["t1"], left, lam)
        return lam

    def _dlam(self, t: Tensor) -> Tensor:
        sp = self._spline
        _, dlam = self._inside(t)
        dlam = torch.where(t > sp["tn"], sp["dn"] - sp["kappa"] * (t - sp["tn"]), dlam)
        if sp["t1"] > 0:
            dlam = torch.where(t < sp["t1"], sp["m"] - 1.0 / t, dlam)
        return dlam

    def _beta(self, t: Tensor) -> Tensor:
        sp = self._spline
        beta = -self._dlam(t) * torch.sigmoid(-self._lam(t))
        if sp["t1"] > 0:
            # −λ′ sigmoid(−λ) with e^λ = t_1 e^{λ_1 + m (t − t_1)}/t: finite at t = 0
            t1, m = sp["t1"], sp["m"]
            left = (1.0 - m * t) / (t + t1 * torch.exp(sp["l1"] + m * (t - t1)))
            beta = torch.where(t < t1, left, beta)
        return beta

    def _check_steepness(self) -> None:
        """Refuse drawings too steep for a 1000-step run (see RATE_LIMIT and BETA_LIMIT), on
        4096 uniform cells of [0, 1] and 64 per segment between the points."""
        knots = torch.tensor([p[0] for p in self.points], dtype=torch.float64)
        frac = torch.linspace(0, 1, 65, dtype=torch.float64)
        within = knots[:-1, None] + knots.diff()[:, None] * frac[None]
        grid = torch.cat([torch.linspace(0, 1, 4097, dtype=torch.float64), within.reshape(-1)])
        # the fall of λ over one step [t, t + h], for steps that touch the band
        start = grid[(grid >= RATE_STEP) & (grid <= 1.0 - RATE_STEP)]
        before, after = self.log_snr(start), self.log_snr(start + RATE_STEP)
        lo, hi = SIGNAL_BAND
        drop = torch.where((before >= lo) & (after <= hi), before - after, 0.0)
        k = int(drop.argmax())
        if not float(drop[k]) <= RATE_LIMIT:
            raise ValueError(
                f"the drawn log-SNR falls too fast after t = {float(start[k]):.3g}: by "
                f"{float(drop[k]):.3g} within {RATE_STEP:g} of time where {lo:g} <= λ <= {hi:g},"
                f" at most {RATE_LIMIT:g} (a step of a 1000-step run); spread the points out in t"
            )
        beta = self.beta(grid)
        k = int(torch.nan_to_num(beta, nan=math.inf).argmax())
        if not float(beta[k]) <= BETA_LIMIT:
            raise ValueError(
                f"the drawn schedule's beta = -λ'·sigmoid(-λ) reaches {float(beta[k]):.3g} at "
                f"t = {float(grid[k]):.3g}, above {BETA_LIMIT:g} (10 per step of a 1000-step "
                "run); spread the points out in t"
            )


def sample_log_snr(
    schedule: Schedule,
    n: int = 16,
    spacing: str = "arc",
    t_first: float = SAMPLE_T_FIRST,
    digits: int = 6,
) -> Points:
    """n control points (t_i, λ_i) on a schedule's λ(t), for "reset the drawing to a schedule".

    Args:
        schedule: any schedule (λ from :meth:`Schedule.log_snr`).
        n: 2..64 points; the last is at t = 1, the first at t = 0 if λ(0) is finite, else at
            ``t_first`` (λ(0) = +∞ cannot be drawn).
        spacing: ``arc`` (equal steps along the curve in the plot's units, t ∈ [0, 1] against
            λ over its range: dense where λ bends, spread for dragging), ``lambda`` (equal steps
            in λ) or ``t`` (equal steps in t).
        digits: significant digits kept of each t and λ (a short URL); the points stay on the
            curve to that precision.
    """
    if not MIN_POINTS <= n <= MAX_POINTS:
        raise ValueError(f"n must be between {MIN_POINTS} and {MAX_POINTS}, got {n}")
    ends = schedule.log_snr(torch.tensor([0.0, 1.0], dtype=torch.float64))
    lo = 0.0 if math.isfinite(float(ends[0])) else t_first
    fine = torch.linspace(lo, 1.0, 20001, dtype=torch.float64)
    lam = schedule.log_snr(fine).clamp(-LAMBDA_LIMIT, LAMBDA_LIMIT)
    if spacing == "t":
        pos = fine
    elif spacing == "lambda":
        pos = lam[0] - lam
    elif spacing == "arc":
        span = float(lam[0] - lam[-1]) or 1.0
        steps = torch.sqrt(fine.diff() ** 2 + (lam.diff() / span) ** 2)
        pos = torch.cat([torch.zeros(1, dtype=torch.float64), steps.cumsum(0)])
    else:
        raise ValueError(f"unknown spacing {spacing!r}; choose from arc, lambda, t")
    targets = torch.linspace(float(pos[0]), float(pos[-1]), n, dtype=torch.float64)
    idx = torch.searchsorted(pos, targets).clamp(1, len(pos) - 1)
    w = ((targets - pos[idx - 1]) / (pos[idx] - pos[idx - 1]).clamp_min(1e-300)).clamp(0, 1)
    ts = (fine[idx - 1] + w * (fine[idx] - fine[idx - 1])).tolist()
    ts[0], ts[-1] = lo, 1.0
    ts = [float(f"{t:.{digits}g}") for t in ts]
    lams = schedule.log_snr(torch.tensor(ts, dtype=torch.float64)).clamp(-30, 30).tolist()
    return check_points([(t, float(f"{lam:.{digits}g}")) for t, lam in zip(ts, lams, strict=True)])

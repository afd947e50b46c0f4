"""Warnings about a finished run that is finite but not what the mathematics promises.

A run whose particles leave the view is almost always a step too large for the noise level:
an Euler–Maruyama step near the noisy end multiplies the state by about 1 − h η² g²/2 and adds
noise η g √h, both of which overshoot when h = 1/T is large (measured with the exact field:
T = 1-2 SDE steps send 60-90 % of the particles to |x| ≈ 30-40; T ≥ 5 keeps them in view).
"""

from __future__ import annotations

import numpy as np

MOST = 0.5  # "most particles": more than this share outside the view in some frame
FAR_OUTSIDE = 0.01  # warn when more than this fraction of user points lies outside the view


def left_view(
    trajectories: np.ndarray,
    times: np.ndarray,
    extent: tuple[float, float, float, float],
    kind: str,
    eta: float,
) -> str | None:
    """A one-line warning when most particles are outside ``extent`` in some frame, else None.

    Args:
        trajectories: positions (T+1, N, 2).
        times: t of each frame (T+1,).
        extent: (xmin, xmax, ymin, ymax) of the view.
        kind, eta: the trajectory kind and noise level, to say why.
    """
    x0, x1, y0, y1 = extent
    x, y = trajectories[..., 0], trajectories[..., 1]
    with np.errstate(invalid="ignore"):
        outside = ~((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))
    share = outside.mean(1)  # (T+1,)
    frame = int(np.argmax(share))
    if share[frame] <= MOST:
        return None
    steps = len(times) - 1
    far = float(np.nanmax(np.abs(trajectories[frame]))) if np.isfinite(
        trajectories[frame]).any() else float("inf")  # fmt: skip
    noisy = kind == "sde" and eta > 0
    why = (f"T = {steps} is too few steps for this noise level (η = {eta:g}): each "
           "Euler–Maruyama step overshoots near the noisy end" if noisy
           else f"T = {steps} is too few steps for this run")  # fmt: skip
    return (f"{share[frame]:.0%} of the particles left the view at t = {times[frame]:.2f} "
            f"(up to |x| = {far:.3g}): {why}. Try more steps.")  # fmt: skip


def outside_view(points: np.ndarray | None, extent: tuple[float, ...]) -> str | None:
    """A one-line warning when user points (M, 2) lie outside the view (their density frames
    come out empty), else None (also for no points)."""
    if points is None:
        return None
    x0, x1, y0, y1 = extent
    x, y = points[:, 0], points[:, 1]
    outside = int(((x < x0) | (x > x1) | (y < y0) | (y > y1)).sum())
    if outside <= FAR_OUTSIDE * len(points):
        return None
    return (f"{outside} of {len(points)} points lie outside the view [{x0:g}, {x1:g}] x "
            f"[{y0:g}, {y1:g}]: frames near the data show little or no density")  # fmt: skip

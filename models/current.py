"""The probability current of the Fokker–Planck equation, split into drift and diffusion
(docs/MATH.md §6.1).

The forward SDE dx = f(t) x dt + g(t) dW of a path carries its marginals p_t by
∂p/∂t + ∇·J = 0, with the current

    J = μ p − D ∇p = f x p − ½ g² p s = (f x − ½ g² s) p = v p,     μ = f x, D = ½ g², s = ∇log p:

the drift current f x p plus the diffusion current −½ g² p s (∇p = p s: no gradient of an
underflowed density), and J / p = v, the probability-flow velocity of docs/MATH.md §3.

**Direction.** Everything here is in forward time t (t = 0 data, t = 1 noise), whatever the
direction of the run that asks: J is the current of ∂p/∂t + ∇·J = 0. A reverse run plays the
forward process backwards, and in its running time τ = −t the same densities obey
∂p/∂τ + ∇·(−J) = 0; the arrow overlay (``models/overlay.py``) multiplies all three kinds by
sign(dt), as it does the velocity, so they show −f x p and +½ g² p s, which still add up to the
current the drawn density follows in the run's own time.

**Ends.** p = exp(log p) underflows to 0 far from the data, and every current with it (a finite
0). Where f or g² is infinite (t = 1 on ``fm``: f = −∞, g² = +∞) the two parts are infinite and
opposite; they are reported as 0 there, while J = v p stays finite: J is always computed as v p
from the field's own velocity, never as the sum of the parts (which cancel catastrophically near
that end), and the tests check that the sum equals it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from models.fields import ExactField
from models.paths import GaussianPath

CURRENT_KINDS = ("drift_current", "diffusion_current", "current")


def splits(field) -> bool:
    """Whether J splits into drift and diffusion for this field: its density must be the law
    of the path's forward SDE, a mixture noised toward N(0, I) (:class:`ExactField`). A flow
    from a data set as the source (docs/MATH.md §5.1) is no diffusion from the data: only its
    J = v p is defined."""
    return isinstance(field, ExactField)


def sde_coefficients(path: GaussianPath, times) -> tuple[list[float], list[float]]:
    """f(t) and g(t)² of the forward SDE at each of ``times`` (F,), as float64 lists (−∞ and
    +∞ at a singular end)."""
    c = path.coefficients(torch.as_tensor(times, dtype=torch.float64).reshape(-1))
    return c.drift.tolist(), c.diffusion2.tolist()


def split_current(
    f, g2, x: Tensor, density: Tensor, velocity: Tensor, score: Tensor | None
) -> dict[str, Tensor]:
    """The current at F times from values in hand, all frames in one batch.

    Args:
        f, g2: the forward SDE's drift coefficient and squared diffusion at each time, (F,)
            (±∞ allowed: see the module's docstring).
        x: positions, shape (P, 2).
        density: p_t(x) at each time, shape (F, P) (0 where it underflows).
        velocity: v(x, t), shape (F, P, 2).
        score: s(x, t), shape (F, P, 2); None: J only (see :func:`splits`).

    Returns:
        {'current': J = v p, and with a score 'drift_current' f x p, 'diffusion_current'
        −½ g² p s}, each (F, P, 2) in velocity's dtype and finite.
    """
    dtype = velocity.dtype
    rho = density.to(device=velocity.device, dtype=dtype)[..., None]  # (F, P, 1)
    out = {"current": velocity * rho}
    if score is not None:
        f, g2 = (torch.as_tensor(c, dtype=torch.float64).reshape(-1, 1, 1) for c in (f, g2))
        finite = torch.isfinite(f) & torch.isfinite(g2)  # else ∞ − ∞: parts reported as 0
        f, g2 = (torch.where(finite, c, 0.0).to(device=rho.device, dtype=dtype) for c in (f, g2))
        out["drift_current"] = f * x.to(dtype) * rho
        out["diffusion_current"] = -0.5 * g2 * score * rho
    return {k: torch.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0) for k, v in out.items()}


def current_at(field, path: GaussianPath, x: Tensor, t: float) -> dict[str, Tensor]:
    """:func:`split_current` of ``field`` (an :class:`ExactField`, or a field with a
    ``log_density``, then J only) at points x (P, 2) and one time t, in forward time:
    {kind: (P, 2)}."""
    with torch.no_grad():
        values = field(x, t, ("velocity", "score"))
        density = torch.exp(field.log_density(x, t))  # exactly 0 where it underflows
    f, g2 = sde_coefficients(path, [float(t)])
    score = values["score"][None] if splits(field) else None
    out = split_current(f, g2, x, density[None], values["velocity"][None], score)
    return {k: v[0] for k, v in out.items()}


def current_frames(field, path: GaussianPath, points: Tensor, times) -> dict[str, np.ndarray]:
    """:func:`current_at` for every time: {kind: (F, P, 2) float32}, in forward time (a reverse
    run's overlay multiplies them by sign(dt), ``models/overlay.py``)."""
    frames = [current_at(field, path, points, float(t)) for t in times]
    return {k: np.stack([fr[k].cpu().numpy() for fr in frames]).astype(np.float32)
            for k in frames[0]}  # fmt: skip


def grid_density(field, times, extent, n: int) -> Tensor:
    """p_t of ``field``'s mixture at the n² points of ``models.overlay.arrow_grid(extent, n)``
    (x fastest) for each time, shape (F, n²) float32.

    The cell centres of an n x n grid, so the separable products of ``models/density.py``
    apply: per frame an (n, M) @ (M, n) product instead of n²·M exponentials (the
    checkerboard's log-sum-exp at 289 points took 9 ms a frame, 70x the field itself). Each
    axis factor is floored at e⁻⁵⁰ of its peak there, which leaves far from the data a density
    below 10⁻²¹ of the peak instead of 0: nothing on the arrows' scale.
    """
    from models.density import Grid, mixture_density
    from models.source_flow import SourcePairField, pair_mixture_density

    grid = Grid(tuple(float(e) for e in extent), (n, n))
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if isinstance(field, SourcePairField):
        frames = pair_mixture_density(field.reference, field.source, field.path, times, grid)
    else:
        frames = mixture_density(field.reference, field.path, times, grid)
    return frames.reshape(len(times), -1)

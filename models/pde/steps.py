"""The PDE's exactly solved noise steps: pure diffusion, and diffusion with its linear drift.

Both act on cell averages (H, W) as one (H, H) and one (W, W) matrix product: the operators are
separable and x-independent in their coefficients (the heat step) or linear in x (the
Ornstein–Uhlenbeck step). Kernel mass that would land outside the box is the outflow.

- ``diffuse``: ∂ρ/∂τ = D Δρ over a step of variance 2∫D dτ; the discrete heat kernel
  e^{-s} I_n(s), the exact solution of the semi-discrete heat equation.
- ``relax``: ∂ρ/∂τ = D (Δρ + ∇·(x ρ) / c²), the Fokker–Planck equation of the
  Ornstein–Uhlenbeck process dX = −(D/c²) X dτ + √(2D) dW. It is the score part of the SDE's
  drift taken with its noise: near the noisy end the score is −x/c² plus a small remainder
  (exactly so for every mixture component; c² = a² σ² + b² their width), and that linear
  drift, explicit, set the sub-step count of SDE solves (D |x| / c² reaches 100 at the box's
  edge on flow matching at t = 0.99: 30-70 sub-steps per frame). Its transition is exact:
  X' = λ X + √V Z, λ = exp(−∫ κ dτ), V = ∫ 2D e^{−2∫_τ κ} dτ, κ = D/c².
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from scipy.integrate import cumulative_simpson
from scipy.special import ive

from models.density import Grid
from models.paths import GaussianPath

# Simpson panels for λ, V and the heat variance over a frame, to start with (``_converged``)
OU_PANELS = 16
MAX_PANELS = 4096
RTOL = 1e-8


def heat_matrix(size: int, var_cells: float) -> np.ndarray:
    """(size, size) matrix of the discrete heat kernel e^{-s} I_{i−j}(s), s = var_cells.

    Truncated where the kernel is below 1e-13 of its sum and renormalised; rows and columns
    near the border lose what falls outside (zero density beyond the box).
    """
    radius = math.ceil(8 * math.sqrt(var_cells)) + 4
    radius = min(radius, size - 1)
    k = ive(np.arange(radius + 1), var_cells)
    column = np.zeros(size)
    column[: radius + 1] = k / (k[0] + 2 * k[1:].sum())
    return column[_distances(size)]  # the symmetric Toeplitz matrix of that column


@functools.lru_cache(maxsize=4)
def _distances(size: int) -> np.ndarray:
    """|i − j| for i, j < size: one gather builds a Toeplitz matrix (scipy's toeplitz cost
    ~0.05 ms a call, and an SDE's PDE builds two per frame)."""
    i = np.arange(size)
    return np.abs(i[:, None] - i[None, :])


def _apply(rho: np.ndarray, ky: np.ndarray, kx: np.ndarray, grid: Grid) -> tuple[np.ndarray, float]:
    """ky @ ρ @ kxᵀ: (ρ', mass lost through the edges)."""
    dx, dy = grid.cell
    # torch's matmul: numpy's threaded BLAS was 10x slower for (128, 128) on a busy machine.
    out = (torch.from_numpy(ky) @ torch.from_numpy(rho) @ torch.from_numpy(kx).T).numpy()
    return out, float(rho.sum() - out.sum()) * dx * dy


def diffuse(rho: np.ndarray, var: float, grid: Grid) -> tuple[np.ndarray, float]:
    """Exact heat step of variance ``var`` (data units²): (ρ', mass lost through the edges)."""
    if var <= 0:
        return rho, 0.0
    dx, dy = grid.cell
    return _apply(rho, heat_matrix(grid.shape[0], var / dy**2),
                  heat_matrix(grid.shape[1], var / dx**2), grid)  # fmt: skip


def ou_transitions(path: GaussianPath, sigma: float, eta: float, t_a, t_b) -> tuple:
    """(λ, V) of the Ornstein–Uhlenbeck steps from t_a[k] to t_b[k] (either order: running
    time), each (K,) float64; the path is evaluated for all K steps at once.

    D = ½ η² g²(t), κ = D / c²(t), c² = a² σ² + b²; Simpson's rule for the inner integral
    ∫_τ κ (cumulative) and the outer one, on panels doubled until converged (``_converged``).
    """

    def simpson(t_a, t_b, panels):
        unit = np.linspace(0.0, 1.0, 2 * panels + 1)
        co = path.coefficients(torch.from_numpy(t_a[:, None] + (t_b - t_a)[:, None] * unit))
        d = 0.5 * eta**2 * co.diffusion2.clamp_min(0.0).numpy()  # (K, nodes)
        kappa = d / (co.a.numpy() ** 2 * sigma**2 + co.b.numpy() ** 2)
        length = np.abs(t_b - t_a)
        before = length[:, None] * cumulative_simpson(kappa, dx=unit[1], axis=1, initial=0.0)
        after = before[:, -1:] - before  # ∫ κ from each node to the end of its step
        return np.exp(-before[:, -1]), length * _simpson(2 * d * np.exp(-2 * after), unit[1])

    return _converged(simpson, t_a, t_b)


def noise_variances(path: GaussianPath, eta: float, t_a, t_b) -> np.ndarray:
    """2 ∫ D dt = η² ∫ g² dt over each step from t_a[k] to t_b[k], (K,): the heat step's
    variance; Simpson on panels doubled until converged (``_converged``)."""

    def simpson(t_a, t_b, panels):
        unit = np.linspace(0.0, 1.0, 2 * panels + 1)
        co = path.coefficients(torch.from_numpy(t_a[:, None] + (t_b - t_a)[:, None] * unit))
        g2 = co.diffusion2.clamp_min(0.0).numpy()
        return (eta**2 * np.abs(t_b - t_a) * _simpson(g2, unit[1]),)

    return _converged(simpson, t_a, t_b)[0]


def _simpson(values: np.ndarray, width: float) -> np.ndarray:
    """Simpson's rule along the last axis of (K, 2p + 1) values at spacing ``width``, (K,)."""
    return width / 3 * (values[:, 0:-1:2] + 4 * values[:, 1::2] + values[:, 2::2]).sum(1)


def _converged(simpson, t_a, t_b) -> tuple:
    """Estimates of ``simpson(t_a, t_b, panels) -> tuple of (K,)`` with the panels of each step
    doubled, from ``OU_PANELS``, until no estimate moves by more than ``RTOL`` (relative), up
    to ``MAX_PANELS``. A few steps need many: g² grows as 1/(1 − t) on flow matching, and a
    coarse run's last frame (t from 0.898 to 0.998 in 10 steps) spans a factor of 50 in it,
    where 16 even panels missed V by 32 %."""
    t_a = np.atleast_1d(np.asarray(t_a, np.float64))
    t_b = np.atleast_1d(np.asarray(t_b, np.float64))
    panels = OU_PANELS
    estimate = simpson(t_a, t_b, panels)
    todo = np.arange(len(t_a))
    while len(todo) and panels < MAX_PANELS:
        panels *= 2
        finer = simpson(t_a[todo], t_b[todo], panels)
        done = np.ones(len(todo), dtype=bool)
        for old, new in zip(estimate, finer, strict=True):
            done &= np.abs(new - old[todo]) <= RTOL * np.abs(new)
            old[todo] = new
        todo = todo[~done]
    return estimate


def ou_matrix(edges: np.ndarray, lam: float, std: float) -> np.ndarray:
    """(n, n) transition of one axis: column j is N(λ x_j, std²) integrated over each cell i
    (``edges`` (n + 1,), x_j the cell centres), the share of cell j's mass that lands in i."""
    centres = 0.5 * (edges[:-1] + edges[1:])
    z = torch.from_numpy((edges[:, None] - lam * centres[None, :]) / std)
    return torch.special.ndtr(z).diff(dim=0).numpy()  # torch's: 2x scipy's speed here


def ou_kernel_std2(lam: float, var: float, cell: float) -> float:
    """Variance of the Gaussian each cell centre is spread by, so that the centre moments of
    the cell averages move as the density's: V − λ² Δ²/12 (Sheppard: the centre variance of
    cell averages exceeds the density's by Δ²/12; cell integration adds it back)."""
    return var - lam**2 * cell**2 / 12


def relax(rho: np.ndarray, lam: float, var: float, grid: Grid) -> tuple[np.ndarray, float]:
    """The exact Ornstein–Uhlenbeck step X' = λX + √V Z on cell averages (H, W), float64:
    (ρ', mass lost through the edges). Needs V − λ²Δ²/12 ≥ Δ² on both axes (``relaxes``)."""
    if not relaxes(lam, var, grid):
        raise ValueError(f"relax needs a spread of at least a cell (lambda {lam}, V {var})")
    dx, dy = grid.cell
    ex, ey = grid.edges()
    kx = ou_matrix(ex, lam, math.sqrt(ou_kernel_std2(lam, var, dx)))
    same = ey.shape == ex.shape and np.array_equal(ey, ex) and dx == dy
    ky = kx if same else ou_matrix(ey, lam, math.sqrt(ou_kernel_std2(lam, var, dy)))
    return _apply(rho, ky, kx, grid)


def relaxes(lam: float, var: float, grid: Grid) -> bool:
    """Whether ``relax`` is accurate for (λ, V) on this grid: both finite, and the spread of
    each cell centre at least a cell, where the cell-integrated Gaussian has the centre
    moments it should (to ~e^{−2π²}). Below that the heat step and an explicit score drift
    serve."""
    if not (math.isfinite(lam) and math.isfinite(var)):
        return False
    return all(ou_kernel_std2(lam, var, c) >= c * c for c in grid.cell)

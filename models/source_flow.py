"""Flow matching from any source: the exact field between two Gaussian mixtures.

The source at t = 1 is a data set (a mixture Σ_j (1/K) N(y_j, σ_s² I)) instead of N(0, I); the
data at t = 0 is Σ_i (1/M) N(x_i, σ_d² I); x_t = a x0 + b x1 with x0 and x1 independent
(linear flow matching: a = 1 − t, b = t). Given the pair (i, j), x_t ~ N(a x_i + b y_j, c² I)
with c² = a² σ_d² + b² σ_s², the same for every pair, so p_t is a mixture of the M·K pairs and

    r_ij    = softmax_ij( −|x − a x_i − b y_j|² / 2c² )
    M_d     = Σ r_ij x_i,   M_s = Σ r_ij y_j,   e = x − a M_d − b M_s
    x̂       = E[x0 | x_t] = M_d + (a σ_d²/c²) e
    ŷ       = E[x1 | x_t] = M_s + (b σ_s²/c²) e          (``eps``: the source prediction)
    s       = ∇ log p_t   = −e / c²
    v       = ȧ M_d + ḃ M_s + ((a ȧ σ_d² + b ḃ σ_s²)/c²) e  =  ȧ x̂ + ḃ ŷ

and x = a x̂ + b ŷ identically. With K = 1, y = 0, σ_s = 1 this is :class:`ExactField`.
The mathematics: /tmp/math_source.md (to be merged into docs/MATH.md).

What applies (tests/test_source_flow.py runs each): ODE samplers on the velocity (Euler, Heun,
RK, Dopri5); deterministic DDIM and DPM-Solver++ (η = 0: they step on x̂ and ŷ, and
x = a x̂ + b ŷ holds); the η-family's Euler–Maruyama at η > 0 (its drift v ∓ ½ η² g² s uses the
exact score s = ∇ log p_t, and a drift D s with noise of matching diffusion D keeps the
marginals for any g); conditional paths (:func:`conditional_from_source`); the continuity
equation (:func:`solve_continuity`); the carried log-density (start: ``log_density`` at t = 1).
What does not: DDIM at η > 0 and the exact forward transitions (both draw from the Gaussian
x_t | x0 of an N(0, I) source; ŷ is not −b s here), the forward SDE, the Fokker–Planck PDE's
relaxation step (its c² is a² σ² + b²), ``path.prior`` (draw the source: :func:`sample_source`),
``mixture_density`` (use :func:`pair_mixture_density`), and a learned field's score (its
conversion assumes an N(0, I) source).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from models.datasets import Dataset, Reference, make_dataset
from models.fields import CHUNK_ELEMENTS, CHUNK_ROWS, denormals_flushed
from models.mixture_reduce import MAX_PAIRS, reduce_pair
from models.paths import GaussianPath

FRAME_CHUNK = 4  # density frames per batch: (4, P, 128) float32 factors
MAX_USER = 1152  # user points kept for a source field: as many as the largest built-in set


LOGIT_FLOOR = 60.0  # see _softmax_floored


def check_path(path: GaussianPath) -> None:
    """Refuse a path that does not join the two ends: a(0) = 1, b(0) = 0, a(1) = 0, b(1) = 1,
    with finite ḃ (VP has a(1) ≈ 0.006, so its t = 1 is no source, and ḃ(0) = ∞)."""
    c = path.coefficients(torch.tensor([0.0, 1.0], dtype=torch.float64))
    ends = torch.stack([c.a, c.b]).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    if not ends or not bool(torch.isfinite(c.db).all()):
        raise ValueError(f"a flow from a source needs a path from a = 1, b = 0 to a = 0, b = 1 "
                         f"with finite ḃ (fm or trig), not {path.name!r}")  # fmt: skip


class SourcePairField:
    """Exact x̂, ŷ (``eps``), score and velocity of the flow from a source mixture to the data.

    Args:
        path: a path joining the ends (``fm``; ``trig`` too), see :func:`check_path`.
        data_ref: the data mixture (t = 0), M components.
        source_ref: the source mixture (t = 1), K components; M·K ≤ ``MAX_PAIRS`` (reduce the
            two with :func:`models.mixture_reduce.reduce_pair`, or build with
            :func:`source_field`).
        device, dtype: where the pair tables live (evaluations follow the input's dtype).

    Attributes as :class:`models.fields.ExactField`'s: ``path``, ``reference`` (the data
    mixture), ``labels``, ``sigma`` (σ_d), ``grid`` (None), ``work_per_point`` (exponentials
    per point: M·K); also ``source`` (the source mixture) and ``n_pairs``.
    """

    def __init__(self, path: GaussianPath, data_ref: Reference, source_ref: Reference,
                 device=None, dtype=torch.float32):  # fmt: skip
        check_path(path)
        m, k = len(data_ref.points), len(source_ref.points)
        if m * k > MAX_PAIRS:
            raise ValueError(f"{m} x {k} = {m * k} pairs is more than {MAX_PAIRS}: reduce the "
                             "mixtures (models.mixture_reduce.reduce_pair)")  # fmt: skip
        if not (data_ref.sigma > 0 and source_ref.sigma > 0):
            raise ValueError("both mixtures need a component width σ > 0")
        self.path, self.reference, self.source = path, data_ref, source_ref
        self.sigma, self.source_sigma = float(data_ref.sigma), float(source_ref.sigma)
        self.labels = data_ref.labels
        self.grid = None  # no Cartesian blocks: callers sum point by point
        self.n_pairs = m * k
        self.work_per_point = float(m * k)
        # pair p = i·K + j: data component i, source component j
        xd = data_ref.points.to(torch.float64).repeat_interleave(k, 0)
        ys = source_ref.points.to(torch.float64).repeat(m, 1)
        self._table64 = torch.cat([xd, ys], 1)  # (P, 4): x_i, y_j
        self._tables = {(dtype, torch.device(device or "cpu")): self._table64.to(device, dtype)}
        self._pair_labels = data_ref.labels.repeat_interleave(k)
        self._db: dict[float, float] = {}

    def table(self, like: Tensor) -> Tensor:
        """(P, 4) [x_i, y_j] of every pair, on the device and in the dtype of ``like``."""
        key = (like.dtype, like.device)
        if key not in self._tables:
            self._tables[key] = self._table64.to(device=like.device, dtype=like.dtype)
        return self._tables[key]

    def points(self, like: Tensor) -> Tensor:
        """The data component means (M, 2) like ``like`` (as ``ExactField.points``)."""
        return self.reference.points.to(device=like.device, dtype=like.dtype)

    def _scalars(self, t) -> dict[str, float]:
        c = self.path.at(float(t))
        a, b, da = c["a"], c["b"], c["da"]
        db = self._db.get(float(t))
        if db is None:  # ḃ is not in path.at's memo (VP's ḃ(0) = ∞); fm and trig: finite
            db = float(self.path.coefficients(torch.tensor(float(t), dtype=torch.float64)).db)
            if len(self._db) > 100_000:  # a long-lived field asked for ever new times
                self._db.clear()
            self._db[float(t)] = db
        c2 = a * a * self.sigma**2 + b * b * self.source_sigma**2
        gain = (a * da * self.sigma**2 + c["b_db"] * self.source_sigma**2) / c2
        return {"a": a, "b": b, "da": da, "db": db, "c2": c2, "gain": gain}

    def _augmented(self, like: Tensor, a: float, b: float, c2: float) -> tuple[Tensor, Tensor]:
        """(pair means μ_p = a x_i + b y_j (P, 2), [μ_p, −|μ_p|²/2c²] (P, 3))."""
        tab = self.table(like)
        mu = a * tab[:, :2] + b * tab[:, 2:]
        return mu, torch.cat([mu, (-0.5 / c2) * (mu * mu).sum(1, keepdim=True)], 1)

    def _rows(self) -> int:
        return max(1, min(CHUNK_ROWS, CHUNK_ELEMENTS // self.n_pairs))

    def _logits(self, chunk: Tensor, aug: Tensor, c2: float) -> Tensor:
        """−|x − μ_p|²/2c² up to a per-point constant, (n, P): one matmul [x/c², 1]·augᵀ."""
        ones = torch.ones(len(chunk), 1, dtype=chunk.dtype, device=chunk.device)
        return torch.cat([chunk / c2, ones], 1) @ aug.T

    def _means(self, x: Tensor, a: float, b: float, c2: float) -> Tensor:
        """[M_d, M_s] (N, 4): the responsibility means of the data and source components."""
        _, aug = self._augmented(x, a, b, c2)
        tab = self.table(x)
        if not len(x):
            return x.new_zeros(0, 4)
        with denormals_flushed():
            return torch.cat([_softmax_floored(self._logits(chunk, aug, c2)) @ tab
                              for chunk in x.split(self._rows())])  # fmt: skip

    def __call__(self, x: Tensor, t, want=("velocity",)) -> dict[str, Tensor]:
        """Each kind of ``want`` (``x0``, ``eps`` = ŷ = E[x1 | x_t], ``score``, ``velocity``) at
        one time t for points x (N, 2): a dict of (N, 2) tensors."""
        k = self._scalars(t)
        return self._outputs(x, self._means(x, k["a"], k["b"], k["c2"]), k, want)

    def _outputs(self, x: Tensor, means: Tensor, k: dict, want) -> dict[str, Tensor]:
        a, b, c2 = k["a"], k["b"], k["c2"]
        md, ms = means[:, :2], means[:, 2:]
        e = x - a * md - b * ms
        out: dict[str, Tensor] = {}
        for kind in want:
            if kind == "x0":
                out[kind] = md + (a * self.sigma**2 / c2) * e
            elif kind == "eps":  # the source prediction; not −b·score (x1 is no Gaussian)
                out[kind] = ms + (b * self.source_sigma**2 / c2) * e
            elif kind == "score":
                out[kind] = -e / c2
            elif kind == "velocity":
                out[kind] = k["da"] * md + k["db"] * ms + k["gain"] * e
            else:
                raise ValueError(f"unknown field kind {kind!r}")
        return out

    def on_grid(self, xs: Tensor, ys: Tensor, t, want=("velocity",)) -> dict[str, Tensor]:
        """The field at the nodes of xs × ys, as ``self(points, t, want)`` for the nodes
        flattened with x fastest (``meshgrid(..., indexing="xy")``). Per-axis factors in float64:
        (ny, P) @ (P, nx) products instead of nx·ny·P exponentials; nodes where the factorised
        sum underflows are summed point by point (as ``ExactField.on_grid``)."""
        pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
        k = self._scalars(t)
        tab = self._table64
        mu = k["a"] * tab[:, :2] + k["b"] * tab[:, 2:]
        factors = []
        for u, axis in ((xs, 0), (ys, 1)):
            logit = (u.double()[:, None] - mu[:, axis]) ** 2 / (-2 * k["c2"])  # (n, P)
            factors.append(torch.exp(logit - logit.amax(1, keepdim=True)))
        fx, fy = factors
        total = fy @ fx.T  # (ny, nx)
        # Σ w·(x_i, y_j) per node: x components weight the x factor, y components the y factor
        sums = [fy @ (fx * tab[:, c]).T if c % 2 == 0 else (fy * tab[:, c]) @ fx.T
                for c in range(4)]  # fmt: skip
        means = (torch.stack(sums, -1) / total[..., None]).reshape(-1, 4)
        lost = ~(total.reshape(-1) > 1e-250)
        if lost.any():
            means[lost] = self._means(pts[lost].double(), k["a"], k["b"], k["c2"])
        return self._outputs(pts, means.to(pts.dtype), k, want)

    def nearest_label(self, x: Tensor, t) -> Tensor:
        """Label of the data component of the most responsible pair at (x, t), shape (N,)."""
        k = self._scalars(t)
        _, aug = self._augmented(x, k["a"], k["b"], k["c2"])
        idx = torch.cat([self._logits(c, aug, k["c2"]).argmax(1) for c in x.split(self._rows())]) \
            if len(x) else torch.zeros(0, dtype=torch.long, device=x.device)  # fmt: skip
        return self._pair_labels.to(idx.device)[idx]

    def log_density(self, x: Tensor, t) -> Tensor:
        """log p_t(x) of the pair mixture, shape (N,); differentiable in x."""
        k = self._scalars(t)
        mu, _ = self._augmented(x, k["a"], k["b"], k["c2"])
        const = math.log(2 * math.pi * k["c2"]) + math.log(self.n_pairs)
        rows = max(1, CHUNK_ELEMENTS // (2 * self.n_pairs))
        parts = [torch.logsumexp(((c[:, None, :] - mu[None]) ** 2).sum(-1) / (-2 * k["c2"]), 1)
                 for c in x.split(rows)]  # fmt: skip
        return (torch.cat(parts) if parts else x.new_zeros(0)) - const


def _softmax_floored(logits: Tensor) -> Tensor:
    """softmax along the pairs (n, P), each weight at least e^(−LOGIT_FLOOR) of the largest.

    Far from most pairs nearly every exp underflows to a denormal float, and torch's CPU
    arithmetic on denormals is ~50x slower (measured: 2.5 s instead of 45 ms for 2,000 points x
    7,168 pairs on two threads, where ``denormals_flushed`` cannot flush them). The floor
    changes the means by under P · e^(−60) ≈ 1e-22 relative.
    """
    w = (logits - logits.amax(1, keepdim=True)).clamp(min=-LOGIT_FLOOR).exp()
    return w / w.sum(1, keepdim=True)  # out of place: autograd takes the divergence through it


def source_field(path: GaussianPath, data: Dataset | Reference, source: Dataset | Reference | str,
                 device=None, dtype=torch.float32) -> SourcePairField:  # fmt: skip
    """The exact field from ``source`` to ``data`` (data sets, their names or mixtures), both
    reduced just enough that their pairs fit ``MAX_PAIRS`` (:func:`models.mixture_reduce.
    pair_sizes`)."""
    data_ref, source_ref = (_mixture(v) for v in (data, source))
    return SourcePairField(path, *reduce_pair(data_ref, source_ref), device=device, dtype=dtype)


def _mixture(v) -> Reference:
    """The mixture of a data set, its name or a mixture. User points (``Points``) keep at most
    ``MAX_USER`` of their points, a multiple of 16 (their ``reference(m)`` subsample): the
    reduction needs a count with divisors (built-in sets have them), and its assignments cost
    O(M³)."""
    if isinstance(v, Reference):
        return v
    data = make_dataset(v) if isinstance(v, str) else v
    ref = data.reference()
    m = min(len(ref.points), MAX_USER)
    m = m - m % 16 if m > 16 else m
    return ref if m == len(ref.points) else data.reference(m)


def sample_source(source: Dataset | str, n: int, generator: torch.Generator,
                  dtype=torch.float32, device=None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """What a reverse run draws at t = 1: n samples of the source data set itself (not of its
    reduced mixture), (points (n, 2), source labels (n,))."""
    data = make_dataset(source) if isinstance(source, str) else source
    return data.sample(n, generator, dtype=dtype, device=device)


def conditional_from_source(path: GaussianPath, x0: Tensor, x1: Tensor, times: Tensor) -> Tensor:
    """x_t = a(t) x0 + b(t) x1 per particle (fixed pairs, e.g. x1 from :func:`sample_source`),
    (T+1, N, 2): straight lines on ``fm``, crossing each other unlike the marginal ODE's."""
    c = path.coefficients(times.to(torch.float64))
    a = c.a.to(device=x0.device, dtype=x0.dtype)[:, None, None]
    b = c.b.to(device=x0.device, dtype=x0.dtype)[:, None, None]
    return a * x0[None] + b * x1.to(x0)[None]


def _factor(axis: Tensor, centres: Tensor, var: Tensor) -> Tensor:
    """N(axis; centres, var), (f, P, len(axis)); exponents clamped at −50 (0 in float32)."""
    g = (axis[None, None, :] - centres).square_().mul_(-0.5 / var).clamp_(min=-50.0).exp_()
    return g.mul_(1.0 / torch.sqrt(2 * math.pi * var))


def pair_mixture_density(data_ref: Reference, source_ref: Reference, path: GaussianPath,
                         times: Tensor, grid) -> Tensor:  # fmt: skip
    """Exact p_t of the pair mixture at the cell centres of ``grid`` (a
    :class:`models.density.Grid`) for each time, (T+1, H, W) float32:
    p_t(x, y) = (1/P) Σ_p N(x; μ_p1, c²) N(y; μ_p2, c²), one (H, P) @ (P, W) product a frame."""
    dtype = torch.float32
    coef = path.coefficients(times.to(torch.float64).reshape(-1))
    a, b = coef.a, coef.b
    c2 = (a**2 * data_ref.sigma**2 + b**2 * source_ref.sigma**2).to(dtype)
    k = len(source_ref.points)
    xd = data_ref.points.to(torch.float64).repeat_interleave(k, 0)
    ys = source_ref.points.to(torch.float64).repeat(len(data_ref.points), 1)
    cx, cy = grid.centres(dtype=dtype)
    out = []
    for sl in torch.arange(len(a)).split(FRAME_CHUNK):
        mu = (a[sl, None, None] * xd[None] + b[sl, None, None] * ys[None]).to(dtype)  # (f, P, 2)
        var = c2[sl, None, None]
        gx, gy = _factor(cx, mu[..., 0:1], var), _factor(cy, mu[..., 1:2], var)
        out.append(torch.bmm(gy.transpose(1, 2), gx) / len(xd))  # (f, H, W)
    return torch.cat(out)


def pair_start_density(data_ref: Reference, source_ref: Reference, path: GaussianPath,
                       t0: float, grid) -> np.ndarray:  # fmt: skip
    """Cell averages (H, W) float64 of p_t0 (the PDE's start, as ``models.pde.solver.
    start_density``): exact erf products of the pair mixture."""
    from models.pde.solver import cell_average_mixture  # loads numba: only for the PDE

    co = path.coefficients(torch.tensor(t0, dtype=torch.float64))
    a, b = float(co.a), float(co.b)
    k = len(source_ref.points)
    xd = data_ref.points.to(torch.float64).repeat_interleave(k, 0)
    ys = source_ref.points.to(torch.float64).repeat(len(data_ref.points), 1)
    std = math.sqrt(a * a * data_ref.sigma**2 + b * b * source_ref.sigma**2)
    return cell_average_mixture((a * xd + b * ys).numpy(), std, grid)


def solve_continuity(field: SourcePairField, times, grid, callback=None, poll=None):
    """The continuity equation (η = 0) for a run on ``field`` over ``times`` (T+1,), either
    direction, from the pair mixture at times[0] (:func:`pair_start_density`: the data's at
    t = 0, the source's at t = 1), as ``models.pde.solver.solve_run`` does for N(0, I). The
    field is evaluated at knots where log c², c² = a² σ_d² + b² σ_s², has moved by
    ``KNOT_STEP`` (``models.pde.work.field_knots`` with the source's width). Returns its
    ``PDEResult``. There is no Fokker–Planck (η > 0) counterpart: see the module docstring.
    """
    from models.pde.solver import solve  # loads numba: only for the PDE
    from models.pde.work import KNOT_GAP, KNOT_STEP

    ts = [float(t) for t in times]
    co = field.path.coefficients(torch.tensor(ts, dtype=torch.float64))
    logc2 = torch.log(co.a**2 * field.sigma**2 + co.b**2 * field.source_sigma**2).tolist()
    knots = [0]
    for i in range(1, len(ts) - 1):
        if abs(logc2[i] - logc2[knots[-1]]) >= KNOT_STEP or i - knots[-1] >= KNOT_GAP:
            knots.append(i)
    rho0 = pair_start_density(field.reference, field.source, field.path, ts[0], grid)
    return solve(field, field.path, ts, 0.0, grid, rho0, callback=callback,
                 knots=[*knots, len(ts) - 1], poll=poll)  # fmt: skip

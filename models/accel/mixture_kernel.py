"""The exact field's responsibility mean on the CPU in one compiled pass (numba).

    m(x) = Σ_i r_i(x) x_i,   r_i(x) = softmax_i(ℓ_i(x)),   ℓ_i(x) = x·p_i + r_i

with p_i = a x_i / c² and r_i = −½ a² |x_i|² / c² (``models/fields.py``). torch computes this
as three passes over an (N, M) block: the logits, the softmax, a matrix product. This kernel
keeps each particle's sums in registers and never writes the block: 2-3x faster for the
built-in data sets (spirals, N = 2000, M = 512: 0.44 against 1.15 ms per evaluation here),
which is most of a run's time.

- Particles are taken in blocks of ``BLOCK``. A reference component k of each is found
  first: the largest logit among every ``STRIDE``-th component, with the particles along the
  vector lanes (a max over components does not vectorise). Over all components, this pass
  took a quarter of the kernel's time.
- Then, per particle, one pass over the components sums e^(ℓ_i − ℓ_k) (1, x_i), vectorised
  along the components (``fastmath`` reassociation: the sums in 16 partial sums, not one).
  ℓ_i − ℓ_k is computed as x·(p_i − p_k) + (r_i − r_k): exactly 0 for k, and without the
  cancellation of two large logits. Computed as ℓ_i − max, with ℓ_i formed again (LLVM fuses
  multiply-adds differently in the two loops), it came out far above 0 for far points (an
  ulp of ℓ is 1024 at |ℓ| = 1e10), and their field was wrong or infinite.
- A component between the sampled ones can lie above k (ℓ_i − ℓ_k > 0: the next component
  along a curve, nearer the particle). The sum takes such terms up to ``REDO`` (e^40); a
  total at or above that (or NaN) means one may have been larger, and the particle is summed
  again against its largest logit over all components (found for its whole block,
  vectorised: a block costs at most one more pass of each kind). Either way the sum's terms
  are the same ratios, scaled by e^(ℓ_k − max): the same mean up to float32 rounding, and,
  for a particle summed again, the same bits as the full search. In runs of the built-in curves
  (moons to spirals, VP and FM, both directions, T = 100) at most one point-evaluation in
  10⁴ was summed again. Below ``STRIDED_FROM`` components the search is over all of them: 8
  gaussians' every 8th is one cluster of the eight.
- ``exp_bounded`` is e^d for d in [−87, 64] written out: numba has no vectorised ``exp``
  without Intel's SVML. Cody–Waite reduction d = k ln 2 + z, |z| ≤ ½ ln 2, a degree-7 Taylor
  polynomial (truncation 3e−9 relative), and 2^k put into the exponent bits: 2.5 float32
  ulps at worst, against torch's one, far below what a picture or a sampler step resolves.
  d is clamped at −87, so weights never become denormal (torch's path flushes them:
  ``models.fields.denormals_flushed``); a weight of e^−87 against the reference, 1, is
  nothing. ``exp_nonpositive`` is the same for d ≤ 0 (the grid kernel's exact maxima).

No ``nnan``/``ninf`` fast-math flags, and numpy's error model (no exception on a division by
0). Callers pass only inputs whose logits cannot overflow (``fits``: ``ExactField`` sends a
batch with a non-finite or astronomically far point to torch, which then says what it says).
Rows are independent and each row's arithmetic does not depend on its block, so a run split
in row blocks over threads (``models/accel/parallel.py``) gets the same numbers; the kernel
releases the GIL. Far points keep float32's precision, as in torch: both lose near-ties
between components beyond |x| ~ 1e5 (``tests/test_mixture_kernel.py``).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

BLOCK = 256  # particles per block: their positions and maxima stay in the L1 cache
FLOOR = np.float32(-87.0)  # e^-87 > float32's smallest normal number, 1.2e-38
LOG2E = np.float32(1.4426950408889634)
LN2_HI, LN2_LO = np.float32(0.693359375), np.float32(-2.12194440e-4)  # ln 2 = HI + LO
# fast-math without nnan/ninf: reassociate (sums in partial sums), contract (FMA), no signed 0
FAST = {"reassoc", "contract", "nsz"}
SAFE_LOGIT = 1e30  # |logit| bound below which nothing in the kernel overflows
STRIDE = 8  # the reference search looks at every 8th component (see the module's docstring)
STRIDED_FROM = 128  # components: fewer are searched in full (8 gaussians' 8 are 8 clusters)
CEIL = np.float32(64.0)  # exp_bounded's largest exponent: 2^92 fits float32's exponent field
REDO = np.float32(np.exp(40.0))  # a total this large may hold a clamped term: sum again


@intrinsic
def _as_float32(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits`` (numba has no scalar view)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy", inline="always")
def exp_nonpositive(d):
    """e^d for d ≤ 0 in float32, relative error below 3e−7 (2.5 ulps; measured in
    tests/test_mixture_kernel.py); d below −87 counts as −87, above 0 as 0, NaN stays NaN."""
    d = FLOOR if d < FLOOR else (np.float32(0.0) if d > 0 else d)
    k = np.float32(np.int32(d * LOG2E - np.float32(0.5)))  # round(d / ln 2) for d ≤ 0
    return _exp_reduced(d, k)


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy", inline="always")
def exp_bounded(d):
    """e^d in float32 for d in [−87, 64], relative error below 3e−7 (2.5 ulps; measured in
    tests/test_mixture_kernel.py); d below −87 counts as −87, above 64 as 64, NaN stays NaN."""
    d = FLOOR if d < FLOOR else (CEIL if d > CEIL else d)
    # round(d / ln 2): the truncation of a positive number is its floor. The subtraction in
    # int32: in float32, fast-math reassociates it into z's reduction (error 3e-6 at d = 0);
    # in numba's default int64, the conversion to float32 does not vectorise (30 % slower)
    k = np.float32(np.int32(np.int32(d * LOG2E + np.float32(126.5)) - np.int32(126)))
    return _exp_reduced(d, k)


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy", inline="always")
def _exp_reduced(d, k):
    """e^d = 2^k e^z, z = d − k ln 2 in [−½ ln 2, ½ ln 2] (k = round(d / ln 2) in [−126, 92])."""
    z = (d - k * LN2_HI) - k * LN2_LO
    e = np.float32(1 / 5040)
    e = e * z + np.float32(1 / 720)
    e = e * z + np.float32(1 / 120)
    e = e * z + np.float32(1 / 24)
    e = e * z + np.float32(1 / 6)
    e = e * z + np.float32(0.5)
    e = e * z + np.float32(1.0)
    e = e * z + np.float32(1.0)
    # 2^k for k in [-126, 92]: exponent field k + 127, mantissa 0
    return e * _as_float32(np.int32((k + np.float32(127.0)) * np.float32(8388608.0)))


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")
def _logit_terms(ref_x, ref_y, square, slope, offset):
    """p = slope ref_x, q = slope ref_y, r = offset |ref|² (float64 products, then float32):
    ℓ_i(x) = x·(p_i, q_i) + r_i with slope = a/c², offset = −½ a²/c²."""
    m = ref_x.shape[0]
    p = np.empty(m, np.float32)
    q = np.empty(m, np.float32)
    r = np.empty(m, np.float32)
    for j in range(m):
        p[j] = ref_x[j] * slope
        q[j] = ref_y[j] * slope
        r[j] = square[j] * offset
    return p, q, r


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")
def _largest_logits(x, start, b, p, q, r, u, v, big, best, stride):
    """For points x[start:start + b]: their coordinates into u, v, their largest logit among
    every ``stride``-th component into ``big`` and its component into ``best`` (the first, on
    ties), all (b,), points along the vector lanes (a max over the components does not
    vectorise)."""
    for i in range(b):  # local copies: indices known to be in range, so it vectorises
        u[i] = x[start + i, 0]
        v[i] = x[start + i, 1]
        big[i] = -np.inf
        best[i] = 0
    for j in range(0, p.shape[0], stride):
        pj, qj, rj = p[j], q[j], r[j]
        for i in range(b):
            logit = u[i] * pj + v[i] * qj + rj
            higher = logit > big[i]
            big[i] = logit if higher else big[i]
            best[i] = j if higher else best[i]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _block_scratch():
    """A block's coordinates u, v, largest logits and their components: (BLOCK,) each."""
    u = np.empty(BLOCK, np.float32)
    v = np.empty(BLOCK, np.float32)
    return u, v, np.empty(BLOCK, np.float32), np.empty(BLOCK, np.int64)


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")
def _mean(x, ref_x, ref_y, square, slope, offset, alpha, beta, out):
    """out (N, 2) = α m(x) + β x, m(x) = Σ_i softmax_i(ℓ_i(x)) ref_i, for x (N, 2) float32
    (``_logit_terms``); α, β float64 (``MixtureKernel.affine``)."""
    p, q, r = _logit_terms(ref_x, ref_y, square, slope, offset)
    cx, cy = ref_x.astype(np.float32), ref_y.astype(np.float32)
    u, v, big, best = _block_scratch()
    stride = STRIDE if p.shape[0] >= STRIDED_FROM else 1
    again = np.empty(BLOCK, np.int64)  # the block's points to sum again
    for start in range(0, x.shape[0], BLOCK):
        b = min(BLOCK, x.shape[0] - start)
        _largest_logits(x, start, b, p, q, r, u, v, big, best, stride)
        n_again = 0
        for i in range(b):
            total, sum_x, sum_y = _sums(u[i], v[i], best[i], p, q, r, cx, cy)
            if not total < REDO:  # a term may have been clamped (or NaN)
                again[n_again] = i
                n_again += 1
            _write(out, start + i, sum_x / total, sum_y / total, u[i], v[i], alpha, beta)
        if n_again:  # against the largest logit of all: at most one more pass of each kind
            _largest_logits(x, start, b, p, q, r, u, v, big, best, 1)
            for n in range(n_again):
                i = again[n]
                total, sum_x, sum_y = _sums(u[i], v[i], best[i], p, q, r, cx, cy)
                _write(out, start + i, sum_x / total, sum_y / total, u[i], v[i], alpha, beta)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _write(out, row, mx, my, ux, uy, alpha, beta):
    """out[row] = α (mx, my) + β (ux, uy) in float64, rounded once (α = 1, β = 0: the mean)."""
    out[row, 0] = np.float32(alpha * np.float64(mx) + beta * np.float64(ux))
    out[row, 1] = np.float32(alpha * np.float64(my) + beta * np.float64(uy))


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy", inline="always")
def _sums(ui, vi, k, p, q, r, cx, cy):
    """Σ_j e^(ℓ_j − ℓ_k) (1, cx_j, cy_j) at the point (ui, vi): three float32 scalars."""
    # ℓ_j − ℓ_k as one small expression: recomputed as ℓ_j − ℓ_k with each logit formed on its
    # own it can come out far from the truth for far points (ulps of ℓ: 1024 at |ℓ| = 1e10)
    pk, qk, rk = p[k], q[k], r[k]
    total = np.float32(0.0)
    sum_x = np.float32(0.0)
    sum_y = np.float32(0.0)
    for j in range(p.shape[0]):
        w = exp_bounded(ui * (p[j] - pk) + vi * (q[j] - qk) + (r[j] - rk))
        total += w
        sum_x += w * cx[j]
        sum_y += w * cy[j]
    return total, sum_x, sum_y


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")
def _nearest(x, ref_x, ref_y, square, slope, offset, out):
    """out (N,) int64: the component of the largest logit at each point of x (N, 2)."""
    p, q, r = _logit_terms(ref_x, ref_y, square, slope, offset)
    u, v, big, best = _block_scratch()
    for start in range(0, x.shape[0], BLOCK):
        b = min(BLOCK, x.shape[0] - start)
        _largest_logits(x, start, b, p, q, r, u, v, big, best, 1)
        out[start : start + b] = best[:b]


class MixtureKernel:
    """The responsibility mean of one set of components, at any (a, c²).

    Args:
        ref: the components, float64 (M, 2).
    """

    def __init__(self, ref: np.ndarray):
        ref = np.asarray(ref, np.float64)
        self.ref_x = np.ascontiguousarray(ref[:, 0])
        self.ref_y = np.ascontiguousarray(ref[:, 1])
        self.square = (ref * ref).sum(1)
        self.finite = bool(np.isfinite(self.square).all()) and len(ref) > 0
        self.reach = float(np.abs(self.ref_x).max(initial=0) + np.abs(self.ref_y).max(initial=0))
        self.largest_square = float(self.square.max(initial=0))

    def fits(self, largest_abs_x: float, a: float, c2: float) -> bool:
        """Whether points with max |coordinate| ``largest_abs_x`` are safe for the kernel at
        (a, c²): |ℓ| ≤ |x|∞ (|p|∞ + |q|∞) + |r|∞ stays below SAFE_LOGIT (False for NaN)."""
        slope, offset = abs(a / c2), abs(0.5 * a * a / c2)
        bound = largest_abs_x * slope * self.reach + offset * self.largest_square
        return self.finite and bound < SAFE_LOGIT

    def __call__(self, x: np.ndarray, a: float, c2: float) -> np.ndarray:
        """m(x) for x float32 (N, 2) → float32 (N, 2)."""
        return self.affine(x, a, c2, 1.0, 0.0)

    def affine(self, x: np.ndarray, a: float, c2: float, alpha: float, beta: float,
               out: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """α m(x) + β x for x float32 (N, 2) → float32 (N, 2), into ``out`` if given (C
        contiguous float32, not overlapping x): every output of the field, and a sampler's
        whole Euler step, is such a sum (``ExactField.euler_step``)."""
        out = _output(x, out)
        _mean(np.ascontiguousarray(x, np.float32), self.ref_x, self.ref_y, self.square,
              a / c2, -0.5 * a * a / c2, float(alpha), float(beta), out)  # fmt: skip
        return out

    def nearest(self, x: np.ndarray, a: float, c2: float) -> np.ndarray:
        """Index of the most responsible component at each point of x (N, 2): (N,) int64."""
        out = np.empty(len(x), np.int64)
        _nearest(np.ascontiguousarray(x, np.float32), self.ref_x, self.ref_y, self.square,
                 a / c2, -0.5 * a * a / c2, out)  # fmt: skip
        return out


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")
def _axis_terms(u, axes, a, inv_2c2, shift, total, mean, near):
    """Per axis group g of ``axes`` (G, k) and point i of ``u`` (b,): the largest of
    d_gj = −(u_i − a axes_gj)² / 2c² (``shift``), Σ_j e^(d_gj − shift) (``total``, in [1, k])
    and the softmax mean of axes_g (``mean``); outputs (G, b), points along the lanes.
    ``near`` (G, b) is scratch: the nearest centre a axes_gj of each group."""
    b = u.shape[0]
    for g in range(axes.shape[0]):
        for i in range(b):
            shift[g, i] = -np.inf
            near[g, i] = 0.0
        for j in range(axes.shape[1]):
            centre = a * axes[g, j]
            for i in range(b):
                d = (u[i] - centre) * (u[i] - centre) * inv_2c2
                higher = d > shift[g, i]
                shift[g, i] = d if higher else shift[g, i]
                near[g, i] = centre if higher else near[g, i]
        for i in range(b):
            total[g, i] = 0.0
            mean[g, i] = 0.0
        for j in range(axes.shape[1]):
            centre, coord = a * axes[g, j], axes[g, j]
            for i in range(b):
                # d_gj − shift as (c_b − c)(2u − c − c_b) / 2c²: small terms, 0 for the nearest
                # (recomputing d_gj − shift came out far above 0 for far points)
                nearest = near[g, i]
                w = exp_nonpositive(
                    inv_2c2 * (nearest - centre) * (np.float32(2.0) * u[i] - centre - nearest)
                )
                total[g, i] += w
                mean[g, i] += w * coord
        for i in range(b):
            mean[g, i] /= total[g, i]


@numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")
def _grid_mean(x, xs, ys, blocks, a, inv_2c2, alpha, beta, out):
    """out (N, 2) = α m(x) + β x, m the responsibility mean of Cartesian blocks
    (``models.datasets.GridBlocks``: xs (Gx, kx), ys (Gy, ky), blocks (B, 2) group pairs).
    Block b's weight is the product of its axis sums, e^(shift_x + shift_y − largest) total_x
    total_y ≤ k_x k_y: no logarithm."""
    n, n_blocks = x.shape[0], blocks.shape[0]
    u = np.empty(BLOCK, np.float32)
    v = np.empty(BLOCK, np.float32)
    terms_x = [np.empty((xs.shape[0], BLOCK), np.float32) for _ in range(3)]
    terms_y = [np.empty((ys.shape[0], BLOCK), np.float32) for _ in range(3)]
    near_x = np.empty((xs.shape[0], BLOCK), np.float32)
    near_y = np.empty((ys.shape[0], BLOCK), np.float32)
    top = np.empty(BLOCK, np.float32)
    total = np.empty(BLOCK, np.float32)
    sum_x = np.empty(BLOCK, np.float32)
    sum_y = np.empty(BLOCK, np.float32)
    for start in range(0, n, BLOCK):
        b = min(BLOCK, n - start)
        for i in range(b):
            u[i] = x[start + i, 0]
            v[i] = x[start + i, 1]
        shift_x, total_x, mean_x = terms_x
        shift_y, total_y, mean_y = terms_y
        _axis_terms(u[:b], xs, a, inv_2c2, shift_x, total_x, mean_x, near_x)
        _axis_terms(v[:b], ys, a, inv_2c2, shift_y, total_y, mean_y, near_y)
        for i in range(b):
            top[i] = -np.inf
            total[i] = 0.0
            sum_x[i] = 0.0
            sum_y[i] = 0.0
        for k in range(n_blocks):
            gx, gy = blocks[k, 0], blocks[k, 1]
            for i in range(b):
                s = shift_x[gx, i] + shift_y[gy, i]
                top[i] = s if s > top[i] else top[i]
        for k in range(n_blocks):
            gx, gy = blocks[k, 0], blocks[k, 1]
            for i in range(b):
                # the same stored shifts summed as for top: exactly 0 for the top block
                w = exp_nonpositive(shift_x[gx, i] + shift_y[gy, i] - top[i])
                w *= total_x[gx, i] * total_y[gy, i]
                total[i] += w
                sum_x[i] += w * mean_x[gx, i]
                sum_y[i] += w * mean_y[gy, i]
        for i in range(b):
            _write(out, start + i, sum_x[i] / total[i], sum_y[i] / total[i], u[i], v[i],
                   alpha, beta)  # fmt: skip


class GridKernel:
    """The responsibility mean of Cartesian blocks (``models.datasets.GridBlocks``) at any
    (a, c²): per axis sums, as ``ExactField._grid_mean`` computes them in torch."""

    def __init__(self, grid):
        self.xs = np.ascontiguousarray(grid.xs.numpy(), np.float32)
        self.ys = np.ascontiguousarray(grid.ys.numpy(), np.float32)
        self.blocks = np.ascontiguousarray(grid.blocks.numpy(), np.int64)
        self.reach = float(max(np.abs(self.xs).max(), np.abs(self.ys).max()))

    def fits(self, largest_abs_x: float, a: float, c2: float) -> bool:
        """Whether points with max |coordinate| ``largest_abs_x`` are safe for the kernel at
        (a, c²): (|x| + a |axes|)² / 2c² stays below SAFE_LOGIT (False for NaN)."""
        return (largest_abs_x + abs(a) * self.reach) ** 2 < 2 * c2 * SAFE_LOGIT

    def __call__(self, x: np.ndarray, a: float, c2: float) -> np.ndarray:
        """m(x) for x float32 (N, 2) → float32 (N, 2)."""
        return self.affine(x, a, c2, 1.0, 0.0)

    def affine(self, x: np.ndarray, a: float, c2: float, alpha: float, beta: float,
               out: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
        """α m(x) + β x, as ``MixtureKernel.affine``."""
        out = _output(x, out)
        _grid_mean(np.ascontiguousarray(x, np.float32), self.xs, self.ys, self.blocks,
                   np.float32(a), np.float32(-0.5 / c2), float(alpha), float(beta),
                   out)  # fmt: skip
        return out


def _output(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """Where a kernel writes its (N, 2) float32 result: ``out``, checked, or a new array."""
    if out is None:
        return np.empty((len(x), 2), np.float32)
    if out.shape != (len(x), 2) or out.dtype != np.float32 or not out.flags.c_contiguous \
            or not out.flags.writeable or np.may_share_memory(out, x):  # fmt: skip
        raise ValueError("out must be a writable C-contiguous float32 (N, 2) array apart from x")
    return out


def warm_up() -> None:
    """Compile the kernels (or load them from numba's cache: ~0.3 s, ~1.5 s cold), so that
    the first run does not wait for them."""
    x = np.zeros((3, 2), np.float32)
    kernel = MixtureKernel(np.array([[0.0, 1.0], [1.0, 0.0]]))
    kernel(x, 0.5, 0.5)
    kernel.nearest(x, 0.5, 0.5)
    from models.datasets import make_dataset  # a grid of blocks: the checkerboard's

    GridKernel(make_dataset("checkerboard").mixture.grid)(x, 0.5, 0.5)

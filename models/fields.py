"""The exact (ideal) field of a Gaussian-mixture data set on a Gaussian path (docs/MATH.md §5).

With reference points x_i (M of them), kernel width σ_d and c² = a² σ_d² + b²:

    r_i(x)  = softmax_i( −|x − a x_i|² / (2c²) )
    m(x)    = Σ_i r_i x_i
    x̂(x,t) = m + (a σ_d² / c²)(x − a m)
    s(x,t)  = (a m − x) / c²
    v(x,t)  = ȧ m + (c ċ / c²)(x − a m),      c ċ = a ȧ σ_d² + b ḃ

The velocity is the responsibility-weighted velocity of each Gaussian component, and every
expression is finite at both ends of the path (no division by b), so samplers need no special
case at t = 0. The logits are computed as x·(a x_i) − ½ a²|x_i|² (the |x|² term cancels in
the softmax) with one matmul, chunked over particles so that the (chunk, M) block stays in
cache; ``_logits`` and ``_responsibility_mean`` name the two measured CPU pitfalls they avoid.
Components that form Cartesian grids (the checkerboard) are summed per axis instead
(:class:`models.datasets.GridBlocks`): the same mixture, 12x fewer exponentials.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from models.datasets import Reference
from models.paths import GaussianPath

CHUNK_ROWS, CHUNK_ELEMENTS = 1024, 2**20  # measured: (2000, 512) blocks were 2x slower
LOGIT_RANGE = 50.0  # per-axis sums: weights below e⁻⁵⁰ of the largest are set to that floor
SHORT_M = 64  # fewer components than this: logits laid out (M, n), see _logits
_compiled_allowed = True  # False only inside ``torch_only``


@contextlib.contextmanager
def torch_only():
    """Within: exact fields evaluate with torch alone, never the compiled kernels, whose first
    use loads numba and its cache (~1 s). For ``flowscope serve``'s first picture, which
    cannot wait for that (app/splash.py): the two paths agree to float32 rounding (~1e-5
    after a default run of 100 steps). One thread at a time: it sets a module flag.
    """
    global _compiled_allowed
    _compiled_allowed = False
    try:
        yield
    finally:
        _compiled_allowed = True


def _chunk_rows(m: int) -> int:
    """Points per block of the logits: at most 2²⁰ entries (4 MiB), and 1024 points in the
    (points, M) layout."""
    return CHUNK_ELEMENTS // m if m < SHORT_M else max(64, min(CHUNK_ROWS, CHUNK_ELEMENTS // m))


@contextlib.contextmanager
def denormals_flushed():
    """Flush denormal floats to zero for a block, while torch computes on this thread alone.

    Near t = 0 most mixture weights underflow, and denormal results put ``exp`` and the
    matmuls on paths 100x slower (the flush takes ~20% off a run). Only single-threaded: worker
    threads that torch starts inside such a block inherit the flush and keep it, and later work
    split over them then differed in its denormals from run to run. A process-wide flush was
    no better: it also changes Python's own float arithmetic (``hypothesis`` refuses to run).
    The server computes on one thread where cores are few (``app/server.py``). On leaving, the
    flush is off (x86 FTZ/DAZ; a no-op elsewhere).
    """
    if torch.get_num_threads() != 1:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class ExactField:
    """Exact x̂, ε̂, score and velocity of a reference mixture under a path.

    Args:
        path: the Gaussian path.
        reference: mixture components (M, 2), labels and σ_d.
        device, dtype: where the reference points live (evaluations follow the input's dtype).
    """

    def __init__(self, path: GaussianPath, reference: Reference, device=None, dtype=torch.float32):
        self.path = path
        self.reference = reference
        self.sigma = float(reference.sigma)
        self.labels = reference.labels
        self._points = {dtype: reference.points.to(device=device, dtype=dtype)}
        self._points64 = reference.points.to(dtype=torch.float64)
        self.grid = reference.grid
        self._compiled = None  # see _kernel
        grid = self.grid
        # exponentials per point and evaluation: how models/accel/parallel.py sizes a run's work.
        # Not scaled down for the compiled CPU kernels (models/accel/mixture_kernel.py), though
        # they take a third of torch's time: each evaluation is one call that releases the GIL,
        # so row blocks gain from a smaller step than torch's many short operations do. Measured
        # (VP reverse, one thread against two blocks): N = 2000 spirals 66 -> 42 ms, circles
        # 52 -> 35, swiss roll 54 -> 35; at the threshold, spirals N = 1000 35 -> 33 and 2 moons
        # N = 2000 36 -> 31 (not split); the checkerboard, N = 2000, 21 -> 29 (not split).
        self.work_per_point = len(reference.points) if grid is None else \
            grid.xs.numel() + grid.ys.numel() + len(grid.blocks)  # fmt: skip
        if grid is not None:  # one label per block: that of its first component
            per_block = len(reference.points) // len(grid.blocks)
            self._block_labels = reference.labels[::per_block]

    def points(self, like: Tensor) -> Tensor:
        """Reference points on the device and in the dtype of ``like``, shape (M, 2)."""
        key = like.dtype
        if key not in self._points or self._points[key].device != like.device:
            self._points[key] = self._points64.to(device=like.device, dtype=like.dtype)
        return self._points[key]

    def scalars(self, t: float | Tensor) -> dict[str, float]:
        """a, b, ȧ, c² = a² σ_d² + b², c ċ and b ḃ (``b_db``) at one time, as floats."""
        c = self.path.at(float(t))
        a, b, da = c["a"], c["b"], c["da"]
        c2 = a * a * self.sigma**2 + b * b
        return {"a": a, "b": b, "da": da, "c2": c2, "cdc": a * da * self.sigma**2 + c["b_db"],
                "b_db": c["b_db"]}  # fmt: skip

    _scalars = scalars

    def responsibility_mean(self, x: Tensor, t: float | Tensor) -> Tensor:
        """m(x, t) = Σ_i r_i(x, t) x_i, (N, 2): the posterior mean of the component's centre."""
        k = self.scalars(t)
        return self._responsibility_mean(x, k["a"], k["c2"])

    def _logits(self, chunk: Tensor, ref_aug: Tensor, a: float, c2: float) -> tuple[Tensor, int]:
        """−|x − a x_i|² / (2c²) up to a per-point constant, and the axis of the components:
        shape (M, n), axis 0, if M is below ``SHORT_M``, else (n, M), axis 1. The softmax then
        runs along the longer axis (15x faster for M = 8).

        One augmented matmul [a x / c², 1] · [x_i, −½ a² |x_i|² / c²]ᵀ: 5x faster on the CPU than
        ``addmm`` with a broadcast bias.
        """
        ones = torch.ones(len(chunk), 1, dtype=chunk.dtype, device=chunk.device)
        scaled = torch.cat([chunk * (a / c2), ones], 1)
        if len(ref_aug) < SHORT_M:
            return ref_aug @ scaled.T, 0
        return scaled @ ref_aug.T, 1

    def _augmented(self, x: Tensor, a: float, c2: float) -> tuple[Tensor, Tensor]:
        ref = self.points(x)
        return ref, torch.cat([ref, (-0.5 * a * a / c2) * (ref * ref).sum(1, keepdim=True)], 1)

    def _axis_terms(self, u: Tensor, axes: Tensor, a: float, c2: float) -> tuple[Tensor, Tensor]:
        """Per axis group g: log Σ_j exp(−(u − a x_gj)² / 2c²) and the softmax mean of x_gj.

        Args: u (N,) one coordinate of the points; axes (G, k) the groups' coordinates.
        Returns: log-sums (G, N) and means (G, N). Points run along the last axis and sums along
        the first: torch's CPU reductions over a short inner axis are 5x slower.
        """
        axes = axes.T.to(device=u.device, dtype=u.dtype)[:, :, None]  # (k, G, 1)
        d = (u - a * axes) ** 2 / (-2 * c2)  # (k, G, N)
        shift = d.amax(0)
        weights = torch.exp((d - shift).clamp(min=-LOGIT_RANGE))  # see _responsibility_mean
        total = weights.sum(0)
        return shift + torch.log(total), (weights * axes).sum(0) / total

    def _grid_mean(self, x: Tensor, a: float, c2: float) -> Tensor:
        """m(x) for Cartesian blocks, shape (N, 2): block b's weight is the product of its
        axis sums, its mean the pair of its axis means (the Gaussian factorises)."""
        grid = self.grid
        gx, gy = grid.blocks[:, 0].to(x.device), grid.blocks[:, 1].to(x.device)
        log_x, mean_x = self._axis_terms(x[:, 0], grid.xs, a, c2)
        log_y, mean_y = self._axis_terms(x[:, 1], grid.ys, a, c2)
        log_w = log_x[gx] + log_y[gy]  # (B, N)
        weights = torch.exp(log_w - log_w.amax(0))
        total = weights.sum(0)
        return (
            torch.stack([(weights * mean_x[gx]).sum(0), (weights * mean_y[gy]).sum(0)], 1)
            / total[:, None]
        )

    def _kernel(self):
        """The compiled kernel of these components (:mod:`models.accel.mixture_kernel`), made once;
        numba is loaded on first use."""
        if self._compiled is None:
            from models.accel.mixture_kernel import GridKernel, MixtureKernel

            self._compiled = MixtureKernel(self._points64.numpy()) if self.grid is None else \
                GridKernel(self.grid)  # fmt: skip
        return self._compiled

    def _compiled_applies(self, x: Tensor, a: float, c2: float) -> bool:
        """Whether the compiled kernel may evaluate at x: on the CPU, in float32, without
        autograd, and not so far out that logits could overflow (torch's path then says
        what it says)."""
        if not _compiled_allowed or x.device.type != "cpu" or x.dtype != torch.float32 \
                or x.requires_grad:  # fmt: skip
            return False
        return self._kernel().fits(float(x.abs().max()) if len(x) else 0.0, a, c2)

    def _responsibility_mean(self, x: Tensor, a: float, c2: float) -> Tensor:
        """m(x) = Σ r_i x_i, shape (N, 2).

        On the CPU in float32, without autograd, the compiled kernels of
        :mod:`models.accel.mixture_kernel` (2-7x faster); else torch, as follows.
        ``torch.softmax`` fuses the row maximum, ``exp`` and normalisation in one pass, 2x
        faster on the CPU than the four separate passes with denormals flushed to zero
        (:func:`denormals_flushed`: weights below e⁻⁸⁷ of the largest are 0 to float32
        precision either way).
        """
        if self._compiled_applies(x, a, c2):
            return torch.from_numpy(self._kernel()(x.numpy(), a, c2))
        if self.grid is not None:
            return self._grid_mean(x, a, c2)
        ref, ref_aug = self._augmented(x, a, c2)
        ref_t = ref.T.contiguous()
        means = []
        with denormals_flushed():
            for chunk in x.split(_chunk_rows(len(ref))):
                logits, axis = self._logits(chunk, ref_aug, a, c2)
                weights = torch.softmax(logits, axis)
                # (2, M) @ (M, n) beats (n, M) @ (M, 2): the long axis is contiguous
                means.append((ref_t @ (weights if axis == 0 else weights.T)).T)
        return torch.cat(means)

    def __call__(self, x: Tensor, t: float | Tensor, want=("velocity",)) -> dict[str, Tensor]:
        """Evaluate the field at one time for a batch of points.

        Args:
            x: positions, shape (N, 2).
            t: a scalar time in [0, 1].
            want: any of ``x0``, ``eps``, ``score``, ``velocity``.

        Returns:
            a dict with one (N, 2) tensor per requested kind.
        """
        k = self._scalars(t)
        return self._outputs(x, self._responsibility_mean(x, k["a"], k["c2"]), k, want)

    def euler_step(self, x: Tensor, t: float, h: float, score_weight: float = 0.0,
                   out: Tensor | None = None) -> Tensor | None:  # fmt: skip
        """x + h (v + w s) at (x, t), (N, 2): an Euler step of the η-family (w = sign(h) ½ η²
        g², ``models.samplers.euler_step``) in one pass of the compiled kernel, written into
        ``out`` (C-contiguous float32 (N, 2), apart from x) when given. None where the kernel
        does not apply (``_compiled_applies``): the caller evaluates the field instead.

        v and s are affine in the responsibility mean (docs/MATH.md §4.9), so the step is too:
        v + w s = ȧ m + λ (x − a m) with λ = (cċ − w) / c², and the step is
        h (ȧ − λ a) m + (1 + h λ) x, with coefficients in float64 and one rounding per entry.
        It saves the step's torch operations, their tensors and their turns at the GIL: a
        default run of two row blocks took 12-45 % less time (docs/PERFORMANCE.md).
        """
        if type(self) is not ExactField:  # a subclass may change the field: it opts in itself
            return None
        k = self._scalars(t)
        a, c2 = k["a"], k["c2"]
        if not self._compiled_applies(x, a, c2):
            return None
        lift = (k["cdc"] - score_weight) / c2
        out = torch.empty(x.shape, dtype=x.dtype) if out is None else out
        self._kernel().affine(x.numpy(), a, c2, h * (k["da"] - lift * a), 1.0 + h * lift,
                              out.numpy())  # fmt: skip
        return out

    def _outputs(self, x: Tensor, m: Tensor, k: dict, want) -> dict[str, Tensor]:
        """Each kind in ``want`` from the responsibility mean m (N, 2) at the points x."""
        a, c2 = k["a"], k["c2"]
        resid = x - a * m
        out: dict[str, Tensor] = {}
        for kind in want:
            if kind == "x0":
                out[kind] = m + (a * self.sigma**2 / c2) * resid
            elif kind == "score":
                out[kind] = -resid / c2
            elif kind == "eps":
                out[kind] = k["b"] * resid / c2  # ε̂ = −b s
            elif kind == "velocity":
                out[kind] = k["da"] * m + (k["cdc"] / c2) * resid
            else:
                raise ValueError(f"unknown field kind {kind!r}")
        return out

    def on_grid(self, xs: Tensor, ys: Tensor, t: float, want=("velocity",)) -> dict[str, Tensor]:
        """The field at the nodes of the grid xs × ys: what ``self(points, t, want)`` gives for
        points = meshgrid(xs, ys, indexing="xy") flattened, (len(ys)·len(xs), 2), x fastest.

        The Gaussian factorises over the axes, so the responsibility sums over the nodes are
        three matrix products of per-axis factors, (ny, M) @ (M, nx): 2·(nx + ny)·M
        exponentials instead of nx·ny·M (the PDE evaluates the field on 129² corners).
        Computed in float64; nodes where the factorised sum underflows (far from every
        component at small c, where the best joint component is not the best per axis) are
        summed point by point instead.
        """
        pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
        if self.grid is not None:  # Cartesian blocks have their own per-axis sums
            return self(pts, t, want)
        k = self._scalars(t)
        a, c2 = k["a"], k["c2"]
        ref = self._points64  # (M, 2)
        factors = []
        for u, axis in ((xs, 0), (ys, 1)):
            logit = (u.double()[:, None] - a * ref[:, axis]) ** 2 / (-2 * c2)  # (n, M)
            factors.append(torch.exp(logit - logit.amax(1, keepdim=True)))
        fx, fy = factors
        total = fy @ fx.T  # (ny, nx)
        sums = torch.stack([fy @ (fx * ref[:, 0]).T, (fy * ref[:, 1]) @ fx.T], -1)
        mean = (sums / total[..., None]).reshape(-1, 2)
        lost = ~(total.reshape(-1) > 1e-250)  # underflowed (or NaN): sum point by point
        if lost.any():
            mean[lost] = self._responsibility_mean(pts[lost].double(), a, c2)
        return self._outputs(pts, mean.to(pts.dtype), k, want)

    def nearest_label(self, x: Tensor, t: float) -> Tensor:
        """Label of the most responsible component at (x, t), shape (N,)."""
        k = self._scalars(t)
        if self.grid is not None:  # the best component of each block: best x times best y
            grid, gx, gy = self.grid, self.grid.blocks[:, 0], self.grid.blocks[:, 1]
            best = [
                (-((u - k["a"] * axes.T.to(u)[:, :, None]) ** 2)).amax(0)
                for u, axes in ((x[:, 0], grid.xs), (x[:, 1], grid.ys))
            ]  # (G, N) per axis
            block = (best[0][gx.to(x.device)] + best[1][gy.to(x.device)]).argmax(0)
            return self._block_labels.to(x.device)[block]
        if self._compiled_applies(x, k["a"], k["c2"]):
            idx = torch.from_numpy(self._kernel().nearest(x.numpy(), k["a"], k["c2"]))
            return self.labels[idx]
        _, ref_aug = self._augmented(x, k["a"], k["c2"])
        idx = torch.cat([
            torch.argmax(*self._logits(c, ref_aug, k["a"], k["c2"]))
            for c in x.split(_chunk_rows(len(ref_aug)))
        ])  # fmt: skip
        return self.labels.to(idx.device)[idx]

    def log_density(self, x: Tensor, t: float | Tensor) -> Tensor:
        """log p_t(x) of the mixture, shape (N,); differentiable in x (for tests and overlays)."""
        k = self._scalars(t)
        ref = self.points(x)
        sq = ((x[:, None, :] - k["a"] * ref[None]) ** 2).sum(-1)  # (N, M)
        log_norm = torch.log(torch.tensor(2 * torch.pi * k["c2"], dtype=x.dtype))
        return (
            torch.logsumexp(-sq / (2 * k["c2"]), 1)
            - log_norm
            - torch.log(torch.tensor(float(len(ref)), dtype=x.dtype))
        )

"""Divergence guidance: steer a reverse run toward where the flow concentrates density.

Along a trajectory of dx/dt = v the log-density changes as d log p_t(x_t)/dt = −∇·v (docs/MATH.md
§8). The source of the method writes time s with the data at s = 1; there the generating flow is
dx/ds = v_src, log p changes as d log p/ds = −∇·v_src, and each generation step also moves along
g = ∇(−∇·v_src): toward where log p grows fastest, where the flow concentrates density.

**Sign, in this project's convention** (t = 0 data, t = 1 noise, reverse runs have h = dt < 0).
With s = 1 − t, v_src = dx/ds = −v, so −∇·v_src = ∇·v and the source's vector is g = ∇(∇·v) with
v our velocity, unchanged. Along a reverse run log p changes by −h ∇·v = |h| ∇·v per step: where
∇·v > 0 the reverse flow concentrates. Closed-form check, flow matching onto the single point 0
(σ_d = 0): x_t = t ε, v = x/t, ∇·v = 2/t > 0, and a reverse Euler step x ← x (1 + h/t) contracts,
log p rising by 2|h|/t. The guided velocity is v − λ g, so the reverse step

    x ← x + h (v − λ g) = x + h v + λ |h| g

moves λ|h| along g, toward concentration, as the source intends (a forward run would move
against g). λ ≥ 0 is a length² (g is 1/(length·time), λ g a velocity).

**What g does on a mixture** (docs/MATH.md §5). With the responsibilities r_i, ∂m/∂x =
(a/c²) Cov_r(x_i), so

    ∇·v = 2 c ċ / c² + (a b (ȧ b − a ḃ) / c⁴) tr Cov_r(x_i),

and ȧ b − a ḃ < 0 on every path (the signal-to-noise ratio falls). Inside one component the
divergence is the constant 2cċ/c² and g = 0: guidance does not shrink a lone Gaussian. Where
components compete, tr Cov_r > 0 lowers the divergence, so g points away from the borders
between components and into them: fewer samples between the modes.

**Measured** (exact field of 8gaussians, fm, 2000 particles, reverse Euler, 100 steps, the g of
the unguided run): mean |g| rises from 0.02 at t = 0.9 to 5 at t = 0.5 and 19 at t = 0.25, then
falls (median 10⁻⁸ at t = 0.1, where particles sit inside components); the largest |g| is 1.2e3
at t = 0.1, on particles still at a border: borders between components δ apart are about
c²/(a δ) wide, and the slope of tr Cov_r across them is multiplied by a b/c⁴. The shipped learned
8gaussians-fm field gives the same shape, smoother: largest |g| 150 at t = 0.2, mean 2.5 near
t = 0.01.

**λ.** Mean distance to the nearest component mean after the run (λ = 0: 0.184 on 8gaussians,
0.068 on moons): 8gaussians 0.167 / 0.150 / 0.139 / 0.126 at λ = 0.01 / 0.03 / 0.05 / 0.1, the
learned field 0.188 → 0.138 at λ = 0.03; moons 0.062 / 0.059 / 0.062 / 0.084. Past
λ ≈ 0.1 samples distort (8gaussians' components squeezed into arcs: tangential spread 0.146 →
0.039 at λ = 0.3; moons' mean distance 0.15 at λ = 0.3). Default λ = 0.03, useful range 0 to 0.1
(``USEFUL_LAMBDA``) for data of unit scale (λ ~ a few σ_d²): visibly tighter on both sets,
worse on neither. Larger λ stays bounded (the cap below) but only distorts.

**Stability.** An explicit step along g with |g| ~ 10³ throws particles far: without a cap,
λ = 0.1 with 10 steps put 8gaussians samples 10.8 from any mode (λ = 1: 107). So |λ g| is capped
per particle at ``clip`` · |v| (default 1): guidance never moves a particle further than the
flow itself does in the same step, and the same runs then end within 0.33 (0.37) of a mode. At
100 steps and λ ≤ 0.1 the cap changes the mean distance by < 2 %. Below ``t_off`` = 0.02 the
plain field is returned: there g is negligible on the exact field (mean 3·10⁻⁴ at t = 0.03) and
converting the guided velocity to x̂, ε̂ or the score divides by b, which is 0 at t = 0.

Costs per guided evaluation in 2D: one field evaluation with its graph and 3 backward passes
(exact: 2 vector-Jacobian products kept in the graph, 1 through them) or 2 (Hutchinson: one
probe u, ĝ = ∇(uᵀ (∂v/∂x) u), unbiased for g). One probe's ĝ is far from g particle by particle
(mean |ĝ − g| / mean |g| ≈ 0.7-0.9 at t = 0.5, benchmarks/bench_divergence.py) but unbiased, so
its pushes average out over a run's steps: 200 particles end 0.150 from a mode with it, 0.149
with the exact g. Fields must act point by point (particles do not interact), as the exact and
learned fields do: the gradients below use column sums over rows.
"""

from __future__ import annotations

import math
import threading

import torch
from torch import Tensor

from models.paths import FIELD_KINDS

PROBES = ("rademacher", "gaussian")


def _velocity(field, x: Tensor, t: float) -> Tensor:
    return field(x, t, ("velocity",))["velocity"]


def _grad(out: Tensor, x: Tensor, grad_outputs=None, keep: bool = False) -> Tensor:
    """∂(out · grad_outputs)/∂x, shape like x; zeros where out does not depend on x (a field
    affine in x has a constant divergence, whose graph ends before x). ``keep``: build the
    graph of the result (for a further derivative) and keep out's graph."""
    if not out.requires_grad:
        return torch.zeros_like(x)
    (grad,) = torch.autograd.grad(out, x, grad_outputs=grad_outputs, create_graph=keep,
                                  retain_graph=True, allow_unused=True)  # fmt: skip
    return torch.zeros_like(x) if grad is None else grad


def _exact_trace(v: Tensor, x: Tensor, keep: bool) -> Tensor:
    """Σ_i ∂v_i/∂x_i, shape (N,): one vector-Jacobian product per coordinate. Rows of v depend
    on their own row of x only (particles do not interact), so the gradient of the column sum
    Σ_n v_ni holds ∂v_ni/∂x_n in row n."""
    div = torch.zeros(len(x), dtype=x.dtype, device=x.device)
    for i in range(x.shape[1]):
        div = div + _grad(v[:, i].sum(), x, keep=keep)[:, i]
    return div


def _probe(x: Tensor, generator: torch.Generator | None, kind: str) -> Tensor:
    """One probe vector per row, shape like x: E[u uᵀ] = I. Drawn on the generator's device
    (a CPU generator cannot draw on CUDA), then moved."""
    device = generator.device if generator is not None else x.device
    if kind == "rademacher":
        u = torch.randint(0, 2, x.shape, generator=generator, device=device).to(x.dtype) * 2 - 1
    elif kind == "gaussian":
        u = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    else:
        raise ValueError(f"probe kind must be one of {PROBES}, got {kind!r}")
    return u.to(x.device)


def _hutchinson_trace(v: Tensor, x: Tensor, u: Tensor, keep: bool) -> Tensor:
    """uᵀ (∂v/∂x) u per row, shape (N,): one vector-Jacobian product (uᵀJ), dotted with u."""
    return (_grad(v, x, u, keep) * u).sum(1)


def divergence(field, x: Tensor, t: float) -> Tensor:
    """Exact ∇·v(x, t), shape (N,), detached; x (N, 2) is not modified."""
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        return _exact_trace(_velocity(field, xg, t), xg, False).detach()


def hutchinson_divergence(field, x: Tensor, t: float, generator: torch.Generator | None = None,
                          probes: int = 1, kind: str = "rademacher") -> Tensor:  # fmt: skip
    """Hutchinson's unbiased estimate of ∇·v(x, t), shape (N,), detached: the mean over
    ``probes`` independent probes u (``rademacher`` ±1 or ``gaussian``) of uᵀ (∂v/∂x) u.
    One field evaluation and ``probes`` vector-Jacobian products."""
    if probes < 1:
        raise ValueError(f"probes must be at least 1, got {probes}")
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        v = _velocity(field, xg, t)
        total = sum(_hutchinson_trace(v, xg, _probe(x, generator, kind), False)
                    for _ in range(probes))  # fmt: skip
    return (total / probes).detach()


def _gradient_graph(field, x: Tensor, t: float, hutchinson: bool, generator, kind: str):
    """(v, g, div), each detached: g = ∇(∇·v), exact or from one probe (see
    :func:`divergence_gradient`). Needs grad mode on."""
    xg = x.detach().requires_grad_(True)
    v = _velocity(field, xg, t)
    if hutchinson:
        div = _hutchinson_trace(v, xg, _probe(x, generator, kind), True)
    else:
        div = _exact_trace(v, xg, True)
    g = _grad(div.sum(), xg)
    return v.detach(), g.detach(), div.detach()


def divergence_gradient(field, x: Tensor, t: float, hutchinson: bool = False,
                        generator: torch.Generator | None = None,
                        kind: str = "rademacher") -> tuple[Tensor, Tensor]:  # fmt: skip
    """g = ∇(∇·v) at (x, t), shape (N, 2), and the divergence it differentiates, (N,).

    Exact: the divergence's two vector-Jacobian products keep their graph, and one more
    backward pass differentiates their sum (3 backward passes in 2D). Hutchinson: one probe u
    (fresh per call, from ``generator``), ĝ = ∇(uᵀ (∂v/∂x) u) with u held fixed, which is
    unbiased for g because the expectation over u commutes with ∇ (2 backward passes); the
    divergence returned is then that same one-probe estimate. Both detached.
    """
    with torch.enable_grad():
        _, g, div = _gradient_graph(field, x, t, hutchinson, generator, kind)
    return g, div


DEFAULT_LAMBDA = 0.03  # length²; the measurements behind it are in the module docstring
USEFUL_LAMBDA = (0.0, 0.1)  # beyond 0.1 samples distort (module docstring, λ)
T_OFF = 0.02  # guidance is off below this time (module docstring, Stability)
CLIP = 1.0  # |λ g| ≤ CLIP · |v| per particle (module docstring, Stability)


class DivergenceGuidedField:
    """``field`` with its velocity guided along g = ∇(∇·v): v − λ g (see the module docstring).

    Args:
        field: ``field(x, t, want) -> dict``, differentiable in x, with a ``path``.
        lam: λ ≥ 0, a length² (0 gives the plain field, bit for bit).
        hutchinson: estimate g from one probe per evaluation instead of exactly.
        generator: the probes' source (Hutchinson only); None: torch's global one.
        clip: |λ g| is capped at ``clip`` · |v| per particle (None: no cap).
        t_off: below this time the plain field is returned.
        probe: ``rademacher`` or ``gaussian`` (Hutchinson only).

    Attributes:
        backward_passes: backward passes spent on guidance so far (3 per guided evaluation in
            2D exactly, 2 with Hutchinson), for cost accounting.
    """

    def __init__(self, field, lam: float = DEFAULT_LAMBDA, hutchinson: bool = False,
                 generator: torch.Generator | None = None, clip: float | None = CLIP,
                 t_off: float = T_OFF, probe: str = "rademacher"):  # fmt: skip
        lam = float(lam)
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"guidance strength λ must be finite and ≥ 0, got {lam}")
        if clip is not None and not (math.isfinite(clip) and clip > 0):
            raise ValueError(f"clip must be finite and > 0 (or None), got {clip}")
        if probe not in PROBES:
            raise ValueError(f"probe kind must be one of {PROBES}, got {probe!r}")
        self.field, self.lam, self.hutchinson = field, lam, bool(hutchinson)
        self.generator, self.clip, self.t_off, self.probe = generator, clip, float(t_off), probe
        self.backward_passes = 0
        self._lock = threading.Lock()

    def __call__(self, x: Tensor, t: float | Tensor, want=("velocity",)) -> dict[str, Tensor]:
        """The guided field at one time: one (N, 2) tensor per kind of ``want``, detached."""
        for kind in want:
            if kind not in FIELD_KINDS:
                raise ValueError(f"unknown field kind {kind!r}")
        t = float(t)
        if self.lam == 0 or t < self.t_off:
            return {k: value.detach() for k, value in self.field(x, t, want).items()}
        with torch.enable_grad():
            v, g, _ = _gradient_graph(self.field, x, t, self.hutchinson, self.generator,
                                      self.probe)  # fmt: skip
        push = self.lam * g
        if self.clip is not None:
            push = _shrink(push, self.clip * v.norm(dim=1, keepdim=True))
        with self._lock:
            self.backward_passes += 2 if self.hutchinson else x.shape[1] + 1
        guided = v - push
        t64, x = torch.tensor(t, dtype=torch.float64), x.detach()  # a caller's graph stays out
        return {k: self.field.path.convert(guided, x, t64, "velocity", k) for k in want}

    @property
    def work_per_point(self) -> float:
        """The field's own (models/accel/parallel.py splits big runs into row blocks on
        threads by it), except 0 with Hutchinson: blocks drawing probes from one generator in
        whatever order their threads reach it would make a run irreproducible."""
        return 0 if self.hutchinson else getattr(self.field, "work_per_point", 0)

    def __getattr__(self, name):
        # path, reference, labels, nearest_label, n_classes, ...: the field's own. Looked
        # up in __dict__ so that a half-built object (copy, pickle) cannot recurse here.
        field = self.__dict__.get("field")
        if field is None:
            raise AttributeError(name)
        return getattr(field, name)


def _shrink(push: Tensor, cap: Tensor) -> Tensor:
    """The push (N, 2) with each row shortened to at most ``cap`` (N, 1); 0 where it is not
    finite (a factor of 0 would make an infinite entry NaN)."""
    norm = push.norm(dim=1, keepdim=True)
    factor = torch.where(norm > cap, cap / norm.clamp_min(torch.finfo(norm.dtype).tiny), 1.0)
    return torch.where(torch.isfinite(norm), push * factor, 0.0)

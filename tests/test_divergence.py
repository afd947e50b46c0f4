"""Divergence guidance (models/divergence.py) against independent truth: closed forms of the
mixture's divergence, central finite differences, a hand-made field with a non-symmetric
Jacobian, Hutchinson's mean over many probes, and what a reverse run ends with."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch

from models.datasets import Reference, make_dataset
from models.divergence import (
    DEFAULT_LAMBDA,
    DivergenceGuidedField,
    divergence,
    divergence_gradient,
    hutchinson_divergence,
)
from models.fields import ExactField
from models.learned.checkpoint import load, pretrained_path
from models.paths import FIELD_KINDS, make_path
from models.schedules import make_schedule

F64 = torch.float64
LINEAR = make_schedule("linear", 0.1, 20)
FM = make_path("fm", LINEAR)
EIGHT = make_dataset("8gaussians")


@pytest.fixture(scope="module")
def eight():
    return ExactField(FM, EIGHT.reference())


@pytest.fixture(scope="module")
def learned():
    field, _, _ = load(pretrained_path("8gaussians", "fm"))
    return field


def border_points() -> torch.Tensor:
    """(12, 2) float64: between neighbouring modes, on them, at the centre and outside, where
    the divergence varies most and least."""
    angles = torch.arange(6, dtype=F64) * (math.pi / 4) + math.pi / 8
    ring = torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    inner = torch.tensor([[0.0, 0.0], [0.3, -0.2], [3.0, 1.0]], dtype=F64)
    return torch.cat([1.1 * ring, 2.0 * ring[:3] * 0.97, inner])


def coefficients(path, t: float) -> dict[str, float]:
    c = path.coefficients(torch.tensor(t, dtype=F64))
    return {k: float(getattr(c, k)) for k in ("a", "b", "da", "db")}


def log_c_rate(path, sigma: float, t: float, h: float = 1e-6) -> float:
    """d log c / dt = c ċ / c², c² = a² σ² + b², by a central difference in t (independent of
    the field's own c ċ)."""

    def log_c(s):
        k = coefficients(path, s)
        return 0.5 * math.log(k["a"] ** 2 * sigma**2 + k["b"] ** 2)

    return (log_c(t + h) - log_c(t - h)) / (2 * h)


def velocity_fd_divergence(field, x: torch.Tensor, t: float, h: float = 1e-5) -> torch.Tensor:
    """Σ_i (v_i(x + h e_i) − v_i(x − h e_i)) / 2h, (N,)."""
    total = torch.zeros(len(x), dtype=x.dtype)
    for i in range(2):
        e = torch.zeros_like(x)
        e[:, i] = h
        total += (field(x + e, t)["velocity"][:, i] - field(x - e, t)["velocity"][:, i]) / (2 * h)
    return total


@pytest.mark.parametrize("process", ["fm", "vp", "trig"])
@pytest.mark.parametrize("t", [0.05, 0.4, 0.9])
def test_single_component_divergence_is_twice_the_rate_of_log_c(process, t):
    # one component: m = x_1, so v = ȧ x_1 + (cċ/c²)(x − a x_1) is affine and ∇·v = 2 cċ/c²
    path = make_path(process, LINEAR)
    ref = Reference(torch.tensor([[0.7, -0.4]], dtype=F64), torch.zeros(1, dtype=torch.long), 0.3)
    field = ExactField(path, ref)
    x = torch.randn(7, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    want = torch.full((7,), 2 * log_c_rate(path, 0.3, t), dtype=F64)
    torch.testing.assert_close(divergence(field, x, t), want, rtol=1e-6, atol=1e-8)
    g, _ = divergence_gradient(field, x, t)
    assert g.abs().max() < 1e-9  # a constant divergence has no gradient


@pytest.mark.parametrize("t", [0.1, 0.3, 0.6, 0.95])
def test_mixture_divergence_closed_form_and_finite_differences(eight, t):
    # ∂m/∂x = (a/c²) Cov_r(x_i), hence ∇·v = 2cċ/c² + (a b (ȧ b − a ḃ)/c⁴) tr Cov_r
    x = border_points()
    k, sigma = coefficients(FM, t), 0.15
    c2 = k["a"] ** 2 * sigma**2 + k["b"] ** 2
    means = EIGHT.means()
    r = torch.softmax(-((x[:, None] - k["a"] * means[None]) ** 2).sum(-1) / (2 * c2), 1)
    m = r @ means
    tr_cov = (r * (means**2).sum(1)).sum(1) - (m**2).sum(1)
    slope = k["a"] * k["b"] * (k["da"] * k["b"] - k["a"] * k["db"]) / c2**2
    closed = 2 * log_c_rate(FM, sigma, t) + slope * tr_cov
    div = divergence(eight, x, t)
    torch.testing.assert_close(div, closed, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(div, velocity_fd_divergence(eight, x, t), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("t", [0.2, 0.5, 0.8])
def test_gradient_matches_finite_differences_of_the_divergence(eight, t):
    x = border_points()
    g, div = divergence_gradient(eight, x, t)
    h = 1e-5
    fd = torch.stack([
        (divergence(eight, x + h * e, t) - divergence(eight, x - h * e, t)) / (2 * h)
        for e in torch.eye(2, dtype=F64)
    ], 1)  # fmt: skip
    assert g.abs().max() > 0.1  # the borders are where it is not flat
    torch.testing.assert_close(g, fd, rtol=1e-5, atol=1e-5 * float(fd.abs().max()))
    torch.testing.assert_close(div, divergence(eight, x, t))


def swirl(x, t, want=("velocity",)):
    """A field with a non-symmetric Jacobian (Rademacher probes then have variance):
    v = (sin(x₁ x₂) + t x₂², x₁³ − cos x₂)."""
    x1, x2 = x[:, 0], x[:, 1]
    return {"velocity": torch.stack([torch.sin(x1 * x2) + t * x2**2, x1**3 - torch.cos(x2)], 1)}


def swirl_truth(x):
    """∇·v = x₂ cos(x₁ x₂) + sin x₂ and its gradient, by hand."""
    x1, x2 = x[:, 0], x[:, 1]
    div = x2 * torch.cos(x1 * x2) + torch.sin(x2)
    d1 = -(x2**2) * torch.sin(x1 * x2)
    d2 = torch.cos(x1 * x2) - x1 * x2 * torch.sin(x1 * x2) + torch.cos(x2)
    g = torch.stack([d1, d2], 1)
    return div, g


def test_closed_form_field_divergence_and_gradient():
    x = torch.randn(20, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    div, g = swirl_truth(x)
    torch.testing.assert_close(divergence(swirl, x, 0.5), div)
    g_exact, _ = divergence_gradient(swirl, x, 0.5)
    torch.testing.assert_close(g_exact, g)


def assert_unbiased(samples: torch.Tensor, truth: torch.Tensor) -> None:
    """samples (P, ...): their mean within 4 standard errors (plus rounding) of truth."""
    se = samples.std(0) / math.sqrt(len(samples))
    assert bool((samples.mean(0) - truth).abs().le(4 * se + 1e-9).all()), (samples.mean(0), truth)


@pytest.mark.parametrize("kind", ["rademacher", "gaussian"])
@pytest.mark.parametrize("which", ["swirl", "eight", "learned"])
def test_hutchinson_is_unbiased(kind, which, eight, learned, one_thread):
    field = {"swirl": swirl, "eight": eight, "learned": learned}[which]
    probes, t = 4000, 0.4
    x = border_points()[:4]
    many = x.repeat(probes, 1)  # each row draws its own probe
    gen = torch.Generator().manual_seed(7)
    est = hutchinson_divergence(field, many, t, gen, kind=kind).reshape(probes, len(x))
    assert est.std(0).max() > 0  # a real estimate, not the trace in disguise
    assert_unbiased(est, divergence(field, x, t))
    g_hat, _ = divergence_gradient(field, many, t, hutchinson=True, generator=gen, kind=kind)
    g, _ = divergence_gradient(field, x, t)
    assert_unbiased(g_hat.reshape(probes, len(x), 2), g)


def test_hutchinson_probes_average_and_validate(eight):
    x = border_points()
    one = hutchinson_divergence(swirl, x, 0.3, torch.Generator().manual_seed(0), probes=1)
    many = hutchinson_divergence(swirl, x, 0.3, torch.Generator().manual_seed(0), probes=400)
    truth = divergence(swirl, x, 0.3)
    assert (many - truth).abs().mean() < 0.3 * (one - truth).abs().mean()
    with pytest.raises(ValueError):
        hutchinson_divergence(eight, x, 0.3, None, kind="uniform")
    with pytest.raises(ValueError):
        hutchinson_divergence(eight, x, 0.3, None, probes=0)


def test_lambda_zero_is_the_plain_field_and_kinds_follow_the_path(eight):
    x = border_points()
    plain = eight(x, 0.5, FIELD_KINDS)
    same = DivergenceGuidedField(eight, 0.0)(x, 0.5, FIELD_KINDS)
    for kind in FIELD_KINDS:
        assert torch.equal(same[kind], plain[kind])
    lam = 0.05
    guided = DivergenceGuidedField(eight, lam, clip=None)(x, 0.5, FIELD_KINDS)
    g, _ = divergence_gradient(eight, x, 0.5)
    torch.testing.assert_close(guided["velocity"], plain["velocity"] - lam * g)
    t64 = torch.tensor(0.5, dtype=F64)
    for kind in ("x0", "eps", "score"):
        want = FM.convert(guided["velocity"], x, t64, "velocity", kind)
        torch.testing.assert_close(guided[kind], want)
    # a reverse step (h < 0) moves +λ|h| g beyond the plain step
    h = -0.01
    step = x + h * guided["velocity"] - (x + h * plain["velocity"])
    torch.testing.assert_close(step, lam * abs(h) * g)


def test_clip_caps_the_push_and_t_off_returns_the_plain_field(eight):
    x = border_points()
    plain = eight(x, 0.3)["velocity"]
    guided = DivergenceGuidedField(eight, 100.0, clip=1.0)(x, 0.3)["velocity"]
    push = (guided - plain).norm(dim=1)
    assert bool((push <= plain.norm(dim=1) * (1 + 1e-12)).all()) and push.max() > 0
    early = DivergenceGuidedField(eight, 0.05, t_off=0.02)
    assert torch.equal(early(x, 0.01, FIELD_KINDS)["score"], eight(x, 0.01, ("score",))["score"])
    assert early.backward_passes == 0


def reverse_run(field, x, steps=100):
    times = torch.linspace(1.0, 0.0, steps + 1, dtype=F64).tolist()
    for t, t_next in itertools.pairwise(times):
        x = x + (t_next - t) * field(x, t)["velocity"]
    return x


def nearest_mean_distance(x):
    return torch.cdist(x.double(), EIGHT.means()).min(1).values.mean().item()


def test_reverse_runs_end_tighter_with_guidance(eight, one_thread):
    start = FM.prior(200, 1.0, torch.Generator().manual_seed(0), dtype=F64)
    plain = nearest_mean_distance(reverse_run(eight, start))
    exact = reverse_run(DivergenceGuidedField(eight, DEFAULT_LAMBDA), start)
    gen = torch.Generator().manual_seed(1)
    hutch = reverse_run(DivergenceGuidedField(eight, DEFAULT_LAMBDA, True, gen), start)
    assert torch.isfinite(exact).all() and torch.isfinite(hutch).all()
    assert nearest_mean_distance(exact) < 0.9 * plain
    assert nearest_mean_distance(hutch) < 0.9 * plain


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("hutchinson", [False, True])
def test_learned_field_under_no_grad(learned, dtype, hutchinson, one_thread):
    guided = DivergenceGuidedField(learned, 0.05, hutchinson, torch.Generator().manual_seed(0))
    x = torch.randn(64, 2, dtype=dtype, generator=torch.Generator().manual_seed(2))
    before = x.clone()
    with torch.no_grad():
        out = guided(x, 0.3, FIELD_KINDS)
    assert torch.equal(x, before)
    for value in out.values():
        assert value.shape == (64, 2) and value.dtype == dtype and not value.requires_grad
        assert torch.isfinite(value).all()
    assert not torch.equal(out["velocity"], learned(x, 0.3)["velocity"])
    assert guided.backward_passes == (2 if hutchinson else 3)
    with_graph = guided(x.clone().requires_grad_(True), 0.3, FIELD_KINDS)
    assert not any(value.requires_grad for value in with_graph.values())


def test_attributes_pass_through_and_lambda_is_checked(eight):
    guided = DivergenceGuidedField(eight)
    assert guided.path is FM and guided.reference is eight.reference
    assert guided.work_per_point == eight.work_per_point
    assert DivergenceGuidedField(eight, hutchinson=True).work_per_point == 0  # never split
    x = border_points()
    assert torch.equal(guided.nearest_label(x, 0.0), eight.nearest_label(x, 0.0))
    assert copy.copy(guided).lam == DEFAULT_LAMBDA
    with pytest.raises(AttributeError):
        _ = guided.no_such_attribute
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            DivergenceGuidedField(eight, bad)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda(eight, learned):
    x = border_points().cuda()
    for field in (eight, learned):
        out = DivergenceGuidedField(field, 0.05, True, torch.Generator().manual_seed(0))(
            x, 0.4, FIELD_KINDS
        )
        assert all(v.is_cuda and torch.isfinite(v).all() for v in out.values())
    torch.testing.assert_close(divergence(eight, x, 0.4).cpu(), divergence(eight, x.cpu(), 0.4))


def test_a_push_that_is_not_finite_is_dropped_not_made_nan():
    from models.divergence import _shrink

    push = torch.tensor([[float("inf"), 0.0], [3.0, 4.0], [0.3, 0.4]])
    out = _shrink(push, torch.ones(3, 1))
    assert torch.equal(out[0], torch.zeros(2))
    assert torch.allclose(out[1], torch.tensor([0.6, 0.8])) and torch.equal(out[2], push[2])

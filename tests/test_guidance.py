"""Guidance against closed forms written here: class mixtures, Bayes' rule, CFG and classifier
guidance, the tilted target (docs/MATH.md §12)."""

from __future__ import annotations

import math

import pytest
import torch

from models import class_maps as CM
from models import guidance as G
from models.datasets import make_dataset
from models.density import Grid
from models.fields import ExactField
from models.paths import make_path
from models.schedules import make_schedule

KINDS = ("velocity", "score", "eps", "x0")


def _path(process="fm"):
    return make_path(process, make_schedule("linear", 0.1, 20.0))


def _log_class_density(x, points, sigma, a, b):
    """log p_t(x | c) of equal-weight components ``points`` (M, 2), written out: the mean of
    N(x; a x_i, c² I), c² = a² σ² + b²."""
    c2 = a * a * sigma**2 + b * b
    sq = ((x[:, None, :] - a * points[None]) ** 2).sum(-1)
    return torch.logsumexp(-sq / (2 * c2), 1) - math.log(2 * math.pi * c2) - math.log(len(points))


def _coefficients(path, t):
    c = path.at(t)
    return c["a"], c["b"], c["da"], c["b_db"]


@pytest.mark.parametrize("name", ["8gaussians", "moons", "checkerboard", "swissroll"])
def test_class_reference_holds_the_components_of_its_label(name):
    ref = make_dataset(name).reference()
    for label in range(int(ref.labels.max()) + 1):
        sub = G.class_reference(ref, label)
        assert torch.equal(sub.points, ref.points[ref.labels == label])
        if sub.grid is not None:  # the kept blocks are the same components
            assert torch.allclose(sub.grid.points(), sub.points)


def test_a_class_the_data_set_lacks_is_refused_in_one_line():
    with pytest.raises(ValueError, match="no class 9"):
        G.class_reference(make_dataset("moons").reference(), 9)


@pytest.mark.parametrize("process", ["fm", "vp"])
@pytest.mark.parametrize("name", ["8gaussians", "moons", "checkerboard"])
@pytest.mark.parametrize("t", [0.05, 0.5, 0.9])
def test_class_field_is_the_score_of_the_class_mixture(name, process, t):
    """The conditional field's score is ∇ log p_t(x | c) of the class's components, by
    autograd of the density written out here; its velocity the path's conversion of it."""
    path, data = _path(process), make_dataset(name)
    ref = data.reference()
    exact = ExactField(path, ref, dtype=torch.float64)
    label = 1
    points = ref.points[ref.labels == label].double()
    a, b, da, b_db = _coefficients(path, t)
    x = (torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
         * 2).requires_grad_(True)  # fmt: skip
    log_p = _log_class_density(x, points, ref.sigma, a, b)
    score = torch.autograd.grad(log_p.sum(), x)[0]
    out = G.class_field(exact, label)(x.detach(), t, KINDS)
    assert torch.allclose(out["score"], score, rtol=1e-8, atol=1e-9)
    # v = (ȧ/a) x + (ȧ b²/a − b ḃ) s on any Gaussian path (docs/MATH.md §3)
    v = (da / a) * x.detach() + (da * b * b / a - b_db) * score
    assert torch.allclose(out["velocity"], v, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", ["8gaussians", "moons", "spirals"])
def test_posterior_is_bayes_rule_on_the_class_densities(name):
    path, data = _path("vp"), make_dataset(name)
    ref = data.reference()
    exact = ExactField(path, ref, dtype=torch.float64)
    x = torch.randn(200, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 2
    for t in (0.0, 0.02, 0.3, 1.0):
        a, b, _, _ = _coefficients(path, t)
        post = G.posterior(exact, x, t, data.n_labels)
        assert torch.allclose(post.sum(1), torch.ones(len(x), dtype=torch.float64))
        joint = torch.stack([
            _log_class_density(x, ref.points[ref.labels == c].double(), ref.sigma, a, b)
            + math.log(float((ref.labels == c).double().mean())) for c in range(data.n_labels)
        ], 1)  # fmt: skip
        assert torch.allclose(post, torch.softmax(joint, 1), atol=1e-10)


@pytest.mark.parametrize("process", ["fm", "vp", "ve"])
def test_cfg_at_w_0_and_1_is_the_unconditional_and_the_conditional_field(process):
    path, ref = _path(process), make_dataset("moons").reference()
    exact = ExactField(path, ref, dtype=torch.float64)
    cond = G.class_field(exact, 0)
    x = torch.randn(100, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for t in (0.0, 0.3, 1.0):
        plain, conditional = exact(x, t, KINDS), cond(x, t, KINDS)
        at0 = G.GuidedField(exact, cond, 0.0, 0)(x, t, KINDS)
        at1 = G.GuidedField(exact, cond, 1.0, 0)(x, t, KINDS)
        mixed = G.GuidedField(exact, cond, 2.5, 0)(x, t, KINDS)
        for kind in KINDS:
            assert torch.equal(at0[kind], plain[kind])
            assert torch.allclose(at1[kind], conditional[kind])
            expected = plain[kind] + 2.5 * (conditional[kind] - plain[kind])
            assert torch.allclose(mixed[kind], expected, atol=1e-12)


@pytest.mark.parametrize("process", ["fm", "vp"])
@pytest.mark.parametrize("name", ["8gaussians", "moons", "checkerboard"])
def test_classifier_guidance_is_the_score_plus_w_grad_log_classifier(name, process):
    """Δs = w ∇ log p(c | x_t), by autograd of Bayes' rule written here; at w = 1 the score is
    the conditional one; with the exact field every kind equals CFG's (Bayes' rule)."""
    path, data = _path(process), make_dataset(name)
    ref = data.reference()
    exact = ExactField(path, ref, dtype=torch.float64)
    label, w = 1, 3.0
    guided = G.ClassifierGuided(exact, exact, w, label)
    cfg = G.GuidedField(exact, G.class_field(exact, label), w, label)
    for t in (0.0, 0.1, 0.6, 1.0):
        a, b, _, _ = _coefficients(path, t)
        x = (torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
             * 2).requires_grad_(True)  # fmt: skip
        logs = [_log_class_density(x, ref.points[ref.labels == c].double(), ref.sigma, a, b)
                for c in range(data.n_labels)]  # fmt: skip
        log_post = logs[label] - torch.logsumexp(torch.stack(logs, 1), 1)  # equal π per class
        grad = torch.autograd.grad(log_post.sum(), x)[0]
        x = x.detach()
        out, plain = guided(x, t, KINDS), exact(x, t, KINDS)
        assert torch.allclose(out["score"], plain["score"] + w * grad, rtol=1e-7, atol=1e-8)
        at1 = G.ClassifierGuided(exact, exact, 1.0, label)(x, t, KINDS)
        cond = G.class_field(exact, label)(x, t, KINDS)
        mixed = cfg(x, t, KINDS)
        for kind in KINDS:
            assert torch.allclose(at1[kind], cond[kind], rtol=1e-7, atol=1e-8)
            assert torch.allclose(out[kind], mixed[kind], rtol=1e-7, atol=1e-8)


def test_tilted_density_is_p_c_to_the_w_times_p_to_the_one_minus_w():
    """Against the pointwise product of the densities, normalised on the grid (float64)."""
    path, data = _path("vp"), make_dataset("moons")
    ref = data.reference()
    grid = Grid((-3.0, 3.0, -3.0, 3.0), (40, 40))
    xs, ys = grid.centres()
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    cell = grid.cell[0] * grid.cell[1]
    for t in (0.0, 0.4):
        a, b, _, _ = _coefficients(path, t)
        log_c = _log_class_density(pts, ref.points[ref.labels == 0].double(), ref.sigma, a, b)
        log_p = _log_class_density(pts, ref.points.double(), ref.sigma, a, b)
        for w in (0.0, 1.0, 2.0, 4.0):
            expected = torch.exp(w * log_c + (1 - w) * log_p).reshape(40, 40)
            expected = expected / (expected.sum() * cell)
            made = CM.tilted_density(ref, path, torch.tensor([t], dtype=torch.float64), grid, 0,
                                    w)[0].double()  # fmt: skip
            assert float(made.sum() * cell) == pytest.approx(1.0, abs=1e-5)
            assert torch.allclose(made, expected, atol=2e-4 * float(expected.max()))


def test_grid_samples_follow_the_density():
    grid = Grid((-2.0, 2.0, -1.0, 3.0), (50, 50))
    xs, ys = grid.centres()
    dens = torch.exp(-((xs[None] - 0.5) ** 2 + (ys[:, None] - 1.0) ** 2) / (2 * 0.3**2))
    x = CM.sample_grid(dens, grid, 20000, torch.Generator().manual_seed(0)).double()
    assert x.mean(0).tolist() == pytest.approx([0.5, 1.0], abs=0.01)
    assert x.std(0).tolist() == pytest.approx([0.3, 0.3], abs=0.01)
    assert float(x[:, 0].min()) >= -2 and float(x[:, 1].max()) <= 3


def test_every_built_in_data_set_names_each_of_its_classes():
    from models.datasets import DATASETS

    for name in DATASETS:
        data = make_dataset(name)
        names = G.class_names(data)
        assert len(names) == data.n_labels == int(data.reference().labels.max()) + 1
        assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", ["moons", "swissroll", "checkerboard"])
def test_the_posterior_map_is_bayes_rule_at_every_cell(name):
    """Against the point-by-point posterior, also where the per-axis sums underflow (t = 0,
    far from the data, σ_d = 0.04 on the swiss roll)."""
    path, data = _path("fm"), make_dataset(name)
    ref = data.reference()
    grid = Grid((-4.0, 4.0, -4.0, 4.0), (24, 24))
    times = torch.tensor([0.0, 0.05, 0.5, 1.0], dtype=torch.float64)
    maps = CM.posterior_frames(ref, path, times, grid, 1)
    xs, ys = grid.centres()
    cells = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    for frame, t in zip(maps, times.tolist(), strict=True):
        a, b, _, _ = _coefficients(path, t)
        logs = torch.stack([_log_class_density(cells, ref.points[ref.labels == c].double(),
                                               ref.sigma, a, b) +
                            math.log(float((ref.labels == c).double().mean()))
                            for c in range(data.n_labels)], 1)  # fmt: skip
        expected = torch.softmax(logs, 1)[:, 1].reshape(24, 24)
        assert torch.allclose(frame.double(), expected, atol=1e-5)
    # at the noise end (a = 0) every point is as likely from each class as the class's weight
    prior = float((ref.labels == 1).double().mean())
    assert maps[-1].double().allclose(torch.full((24, 24), prior, dtype=torch.float64))

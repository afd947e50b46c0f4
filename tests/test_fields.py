"""The exact field of docs/MATH.md §5 against independent computations."""

import math

import pytest
import torch

from models.datasets import EightGaussians, Moons, Reference
from models.fields import ExactField
from models.paths import LinearFMPath, VPPath
from models.schedules import make_schedule

PATHS = [VPPath(make_schedule("linear")), VPPath(make_schedule("cosine")), LinearFMPath()]
IDS = ["vp-linear", "vp-cosine", "fm"]


def moons_field(path):
    ref = Moons().reference(300)
    return ExactField(path, Reference(ref.points, ref.labels, 0.1), dtype=torch.float64)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
@pytest.mark.parametrize("t", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_score_is_gradient_of_log_density(path, t, gen):
    field = moons_field(path)
    x = (2 * torch.randn(50, 2, generator=gen, dtype=torch.float64)).requires_grad_(True)
    (grad,) = torch.autograd.grad(field.log_density(x, t).sum(), x)
    torch.testing.assert_close(
        field(x.detach(), t, ("score",))["score"], grad, rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize("path", PATHS, ids=IDS)
@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_field_kinds_are_consistent_with_path_conversions(path, t, gen):
    """x̂, ε̂, s and v returned by the field obey the conversions of docs/MATH.md §3."""
    field = moons_field(path)
    x = 2 * torch.randn(50, 2, generator=gen, dtype=torch.float64)
    out = field(x, t, ("x0", "eps", "score", "velocity"))
    for kind in ("eps", "score", "velocity"):
        torch.testing.assert_close(
            path.from_x0(out["x0"], x, t, kind), out[kind], rtol=1e-7, atol=1e-9
        )


def test_velocity_satisfies_continuity_equation(gen):
    """∂p/∂t + ∇·(v p) = 0, checked with autograd and a time finite difference."""
    path = LinearFMPath()
    field = moons_field(path)
    x = (1.5 * torch.randn(40, 2, generator=gen, dtype=torch.float64)).requires_grad_(True)
    t, h = 0.4, 1e-5
    dp_dt = (field.log_density(x, t + h).exp() - field.log_density(x, t - h).exp()) / (2 * h)
    flux = field(x, t, ("velocity",))["velocity"] * field.log_density(x, t).exp()[:, None]
    div = sum(
        torch.autograd.grad(flux[:, i].sum(), x, retain_graph=True)[0][:, i] for i in range(2)
    )
    torch.testing.assert_close(dp_dt.detach(), -div.detach(), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("dataset", [EightGaussians(), Moons()])  # (M, n) and (n, M) layouts
def test_field_is_finite_at_both_ends_and_chunks_agree(dataset, gen):
    import models.fields as fields

    field = ExactField(LinearFMPath(), dataset.reference())
    x = 3 * torch.randn(5000, 2, generator=gen)
    for t in (0.0, 1.0):
        out = field(x, t, ("x0", "score", "velocity"))
        assert all(torch.isfinite(v).all() for v in out.values())
    whole = field(x, 0.3)["velocity"]
    old = fields.CHUNK_ROWS, fields.CHUNK_ELEMENTS
    fields.CHUNK_ROWS, fields.CHUNK_ELEMENTS = 777, 777 * 5
    try:
        torch.testing.assert_close(field(x, 0.3)["velocity"], whole)
    finally:
        fields.CHUNK_ROWS, fields.CHUNK_ELEMENTS = old


@pytest.mark.parametrize("dataset", [EightGaussians(), Moons()])
def test_responsibility_mean_is_the_plain_weighted_sum(dataset, gen):
    """The fused softmax (with denormals flushed) against the textbook sum in float64."""
    path = VPPath(make_schedule("linear"))
    field = ExactField(path, dataset.reference())
    x = 2 * torch.randn(3000, 2, generator=gen)
    ref = dataset.reference().points.double()
    for t in (0.0, 0.01, 0.3, 1.0):
        k = field._scalars(t)
        sq = ((x.double()[:, None, :] - k["a"] * ref[None]) ** 2).sum(-1)
        w = torch.softmax(-sq / (2 * k["c2"]), 1)
        want = w @ ref
        got = field._responsibility_mean(x, k["a"], k["c2"])
        # float32 logits of size |x|²/c² round at 1e-7 of that: ~2e-5 here, as before the fusion
        torch.testing.assert_close(got.double(), want, atol=5e-5, rtol=0)


def test_denormals_are_flushed_only_inside_and_only_single_threaded():
    """Worker threads started inside a flushing block would keep flushing: the flush is on only
    while torch computes on the calling thread alone, and off again after the block."""
    from models.fields import denormals_flushed

    def tiny() -> float:
        return float(torch.tensor([1e-39]) * 1.0)

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        with denormals_flushed():
            inside = tiny()
        assert tiny() > 0  # off again
        if torch.set_flush_denormal(False):  # False where the CPU has no FTZ
            assert inside == 0.0
        torch.set_num_threads(2)
        with denormals_flushed():
            assert tiny() > 0
    finally:
        torch.set_num_threads(threads)


def _linear_vp_closed_form(t: float, beta_min: float = 0.1, beta_max: float = 20.0) -> dict:
    """a, b, ȧ, b ḃ and g² of VP with the linear schedule, written out by hand (docs/MATH.md
    §2): B = β_min t + ½ (β_max − β_min) t², a = e^(−B/2), b² = 1 − a², ȧ = −½ β a,
    b ḃ = −a ȧ, g² = β."""
    beta = beta_min + t * (beta_max - beta_min)
    a = math.exp(-0.5 * (beta_min * t + 0.5 * (beta_max - beta_min) * t * t))
    da = -0.5 * beta * a
    return {"a": a, "b": math.sqrt(1 - a * a), "da": da, "b_db": -a * da, "g2": beta}


def _cosine_vp_closed_form(t: float, s: float = 0.008) -> dict:
    """The same for the cosine schedule before its clip: ᾱ = f(t)/f(0), f = cos²(π/2 (t+s)/(1+s)),
    a = √ᾱ, β = π/(1+s) tan(π/2 (t+s)/(1+s))."""
    phase = lambda u: 0.5 * math.pi * (u + s) / (1 + s)  # noqa: E731
    a = math.cos(phase(t)) / math.cos(phase(0.0))
    beta = math.pi / (1 + s) * math.tan(phase(t))
    da = -0.5 * beta * a
    return {"a": a, "b": math.sqrt(1 - a * a), "da": da, "b_db": -a * da, "g2": beta}


@pytest.mark.parametrize("schedule, closed_form, last", [
    ("linear", _linear_vp_closed_form, 1.0),
    ("cosine", _cosine_vp_closed_form, 0.98),  # β is clipped near t = 1 (at 100)
])  # fmt: skip
def test_path_memo_matches_the_closed_form(schedule, closed_form, last):
    """``at(t)``, memoised or filled one by one, against the closed forms written out here."""
    path = VPPath(make_schedule(schedule))
    times = torch.linspace(0, last, 37, dtype=torch.float64)
    path.remember(times[:10])  # the rest are filled one by one
    for t in times.tolist():
        got, want = path.at(t), closed_form(t)
        for key in ("a", "b", "da", "b_db", "g2"):
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), (key, t)


def test_denoiser_memorizes_reference_points_at_low_noise():
    """Near a·x_i at small t the ideal denoiser returns x_i itself: it memorizes (§5)."""
    ref = Reference(
        torch.tensor([[1.0, 0.0], [-1.0, 0.5]], dtype=torch.float64), torch.arange(2), 1e-3
    )
    path = VPPath(make_schedule("linear"))
    field = ExactField(path, ref, dtype=torch.float64)
    a = float(path.coefficients(torch.tensor(0.02, dtype=torch.float64)).a)
    x = a * ref.points + torch.tensor([[0.05, -0.03], [-0.04, 0.02]], dtype=torch.float64)
    torch.testing.assert_close(field(x, 0.02, ("x0",))["x0"], ref.points, atol=1e-4, rtol=0)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_grid_blocks_sum_the_same_mixture_as_the_flat_sum(path, gen):
    """The checkerboard's per-axis evaluation against the plain sum over its 1152 components,
    at the ends, one ulp inside them and between; labels and autograd too."""
    import dataclasses

    from models.datasets import Checkerboard

    ref = Checkerboard().mixture
    assert ref.grid is not None
    torch.testing.assert_close(ref.grid.points(), ref.points, rtol=0, atol=0)
    grid = ExactField(path, ref, dtype=torch.float64)
    flat = ExactField(path, dataclasses.replace(ref, grid=None), dtype=torch.float64)
    x = 5 * torch.rand(400, 2, generator=gen, dtype=torch.float64) - 2.5
    one = torch.tensor(1.0, dtype=torch.float64)
    ulp_in = [float(torch.nextafter(torch.tensor(0.0, dtype=torch.float64), one)),
              float(torch.nextafter(one, torch.tensor(0.0, dtype=torch.float64)))]  # fmt: skip
    kinds = ("x0", "eps", "score", "velocity")
    for t in [0.0, 1.0, *ulp_in, 0.003, 0.05, 0.3, 0.7]:
        got, want = grid(x, t, kinds), flat(x, t, kinds)
        for kind in kinds:
            torch.testing.assert_close(got[kind], want[kind], rtol=1e-9, atol=1e-9)
        if t < 0.9:  # near the noise end, labels are ties decided by rounding
            assert (grid.nearest_label(x, t) == flat.nearest_label(x, t)).all()
    xg = x[:20].clone().requires_grad_(True)  # the divergence (log-density) differentiates it
    (dg,) = torch.autograd.grad(grid(xg, 0.4)["velocity"].sum(), xg)
    xf = x[:20].clone().requires_grad_(True)
    (df,) = torch.autograd.grad(flat(xf, 0.4)["velocity"].sum(), xf)
    torch.testing.assert_close(dg, df, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("name", ["8gaussians", "moons", "spirals", "checkerboard"])
@pytest.mark.parametrize("process", ["fm", "vp"])
@pytest.mark.parametrize("t", [0.0, 1e-3, 0.05, 0.5, 1.0])
def test_grid_evaluation_is_the_pointwise_field(name, process, t):
    """The per-axis factorised sums on a grid against the softmax at each node, in float64;
    the grid reaches far beyond the data, where the factorised sums underflow at small t and
    the nodes are summed point by point."""
    from models.datasets import DATASETS

    path = LinearFMPath() if process == "fm" else VPPath(make_schedule("linear"))
    field = ExactField(path, DATASETS[name]().reference(), dtype=torch.float64)
    xs = torch.linspace(-7.0, 5.0, 33, dtype=torch.float64)
    ys = torch.linspace(-4.0, 9.0, 29, dtype=torch.float64)  # not square: a swapped axis shows
    want = ("velocity", "score")
    got = field.on_grid(xs, ys, t, want)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    expected = field(pts, t, want)
    for kind in want:
        scale = expected[kind].abs().max()
        torch.testing.assert_close(got[kind], expected[kind], rtol=1e-9, atol=1e-11 * scale)

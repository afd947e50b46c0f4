"""The compiled responsibility mean (models/accel/mixture_kernel.py) against float64 truth."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.accel.mixture_kernel import (
    CEIL,
    FLOOR,
    STRIDE,
    STRIDED_FROM,
    GridKernel,
    MixtureKernel,
    exp_bounded,
    exp_nonpositive,
)
from models.fields import ExactField
from models.run.config import RunConfig
from models.run.simulate import build

F32 = np.float32


def exp_reference(d) -> np.ndarray:
    return np.exp(np.maximum(np.asarray(d, np.float64), float(FLOOR)))


def relative_error(d) -> float:
    got = np.array([exp_nonpositive(F32(v)) for v in np.asarray(d, np.float32)], np.float64)
    want = exp_reference(np.asarray(d, np.float32))
    return float(np.max(np.abs(got - want) / want))


def test_exp_at_the_edges_and_one_ulp_either_side():
    zero, floor = F32(0.0), FLOOR
    edges = [zero, -zero, np.nextafter(zero, F32(-1)), np.nextafter(zero, F32(1)),
             floor, np.nextafter(floor, F32(0)), np.nextafter(floor, F32(-100)),
             F32(-0.5 * np.log(2)), F32(-np.log(2)), F32(-1e-30), F32(-1e-7),
             F32(1e-7)]  # fmt: skip
    assert exp_nonpositive(zero) == 1.0 and exp_nonpositive(-zero) == 1.0
    assert relative_error(edges) < 4e-7  # 3 float32 ulps
    # below the floor it is e^-87, a normal float32 (never denormal, never 0)
    for d in (F32(-88.0), F32(-1e4), F32(-np.inf)):
        assert exp_nonpositive(d) == exp_nonpositive(floor) > np.finfo(np.float32).tiny


def test_exp_on_a_dense_grid():
    d = np.linspace(-87.0, 0.0, 200_001, dtype=np.float32)
    assert relative_error(d) < 4e-7


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-200.0, max_value=0.0, width=32))
def test_exp_anywhere_below_zero(d):
    assert relative_error([d]) < 4e-7


def bounded_error(d) -> float:
    d = np.asarray(d, np.float32)
    got = np.array([exp_bounded(v) for v in d], np.float64)
    want = np.exp(np.clip(d.astype(np.float64), float(FLOOR), float(CEIL)))
    return float(np.max(np.abs(got - want) / want))


def test_bounded_exp_at_the_edges_and_one_ulp_either_side():
    zero = F32(0.0)
    edges = [zero, -zero, FLOOR, CEIL, F32(0.5 * np.log(2)), F32(np.log(2)), F32(1e-7),
             F32(-1e-7), F32(40.0)]  # fmt: skip
    for edge in (zero, FLOOR, CEIL, F32(40.0)):
        edges += [np.nextafter(edge, F32(-1e3)), np.nextafter(edge, F32(1e3))]
    assert exp_bounded(zero) == 1.0
    assert bounded_error(edges) < 4e-7  # 3 float32 ulps
    # outside [-87, 64] it is e^-87 or e^64: normal floats, never 0 or infinite
    for d, edge in ((F32(-88.0), FLOOR), (F32(-np.inf), FLOOR), (F32(65.0), CEIL),
                    (F32(np.inf), CEIL)):  # fmt: skip
        assert exp_bounded(d) == exp_bounded(edge)
    assert np.isfinite(exp_bounded(CEIL)) and exp_bounded(FLOOR) > np.finfo(np.float32).tiny
    assert np.isnan(exp_bounded(F32(np.nan)))


def test_bounded_exp_on_a_dense_grid():
    assert bounded_error(np.linspace(-87.0, 64.0, 300_001, dtype=np.float32)) < 4e-7


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-200.0, max_value=200.0, width=32))
def test_bounded_exp_anywhere(d):
    assert bounded_error([d]) < 4e-7


LINE = np.stack([np.arange(STRIDED_FROM * 2) * 0.01, np.zeros(STRIDED_FROM * 2)], 1)
BETWEEN = [j for j in range(len(LINE)) if j % STRIDE]  # the components the search skips


@pytest.mark.parametrize("c2", [1e-6, 1e-4, 1e-3, 0.1])
def test_a_nearest_component_between_the_sampled_ones(c2):
    """The reference search samples every STRIDE-th component (256 on a line, spacing 0.01).
    Points over the others, at a small width, have terms far above the sampled best (e^800
    and more at c² = 1e-6): summed again against the best of all, they match float64; at
    larger widths the sum takes terms above the reference (up to e^40) as they are."""
    kernel = MixtureKernel(LINE)
    x = np.concatenate([LINE[BETWEEN] + [0.001, 0.02], LINE[BETWEEN] + [-0.002, -0.3]])
    x = x.astype(np.float32)
    got = kernel(x, 1.0, c2)
    logits = (x.astype(np.float64) @ LINE.T - 0.5 * (LINE * LINE).sum(1)) / c2
    want = torch.softmax(torch.from_numpy(logits), 1).numpy() @ LINE
    assert np.isfinite(got).all()
    assert np.abs(got - want).max() < 1e-5


def test_rows_summed_again_do_not_depend_on_their_batch():
    """A row summed again (its block's full search) gives the same bits alone or beside rows
    that are not: whether a row is summed again depends on that row only."""
    kernel = MixtureKernel(LINE)
    steep = (LINE[BETWEEN[:40]] + [0.001, 0.02]).astype(np.float32)  # summed again at 1e-6
    mild = np.random.default_rng(2).normal(scale=3.0, size=(300, 2)).astype(np.float32)
    x = np.concatenate([mild[:150], steep, mild[150:]])
    whole = kernel(x, 1.0, 1e-6)
    for lo, hi in ((150, 151), (140, 200), (0, 190), (189, 490)):
        np.testing.assert_array_equal(kernel(x[lo:hi], 1.0, 1e-6), whole[lo:hi])


@pytest.mark.parametrize("dataset", ["8gaussians", "moons", "spirals"])
@pytest.mark.parametrize("t", [0.0, 0.003, 0.05, 0.4, 1.0])
def test_the_mean_matches_float64_torch(dataset, t):
    path, data, field = build(RunConfig(process="vp", dataset=dataset))
    exact64 = ExactField(path, field.reference, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    a = field._scalars(t)["a"]
    # points near the data (scaled by a) and out in the noise, where one component dominates
    x = torch.cat([a * data.sample(600, g)[0], 3 * torch.randn(300, 2, generator=g)]).float()
    k = field._scalars(t)
    got = MixtureKernel(field._points64.numpy())(x.numpy(), k["a"], k["c2"])
    want = exact64._responsibility_mean(x.double(), k["a"], k["c2"]).numpy()
    assert np.abs(got - want).max() < 2e-5  # float32 logits of size |x|·a/c² carry ~1e-7·|logit|


def test_rows_do_not_depend_on_their_batch():
    """A row gives the same bits alone, at any place in a block of 256, or in the remainder:
    a run split in row blocks over threads equals the serial run."""
    field = build(RunConfig(dataset="spirals"))[2]
    k = field._scalars(0.3)
    kernel = MixtureKernel(field._points64.numpy())
    x = np.random.default_rng(0).normal(size=(700, 2)).astype(np.float32)
    ak = (k["a"], k["c2"])
    whole = kernel(x, *ak)
    for lo, hi in ((0, 1), (255, 257), (300, 700), (513, 515), (699, 700)):
        np.testing.assert_array_equal(kernel(x[lo:hi], *ak), whole[lo:hi])


def test_the_exact_field_uses_the_kernel_only_where_it_applies():
    field = build(RunConfig(dataset="moons"))[2]
    x = torch.randn(100, 2)
    k = field._scalars(0.5)
    kernel = MixtureKernel(field._points64.numpy())
    assert torch.equal(field._responsibility_mean(x, k["a"], k["c2"]),
                       torch.from_numpy(kernel(x.numpy(), k["a"], k["c2"])))  # fmt: skip
    # autograd and float64 take torch's path, and agree with the kernel
    grad_x, ak = x.clone().requires_grad_(True), (k["a"], k["c2"])
    assert field._compiled_applies(x, *ak) and not field._compiled_applies(grad_x, *ak)
    with_grad = field._responsibility_mean(grad_x, k["a"], k["c2"])
    assert with_grad.requires_grad  # the graph runs through torch's means, not only x
    torch.testing.assert_close(with_grad.detach(), field._responsibility_mean(x, *ak),
                               atol=1e-5, rtol=0)  # fmt: skip
    double = field._responsibility_mean(x.double(), k["a"], k["c2"])
    assert double.dtype == torch.float64  # the kernel computes in float32 only
    torch.testing.assert_close(double.float(), field._responsibility_mean(x, k["a"], k["c2"]),
                               atol=1e-5, rtol=0)  # fmt: skip


def test_inputs_whose_logits_could_overflow_go_to_torch():
    field = build(RunConfig(dataset="moons"))[2]
    k = field._scalars(0.5)
    kernel = MixtureKernel(field._points64.numpy())
    ak = (k["a"], k["c2"])
    assert kernel.fits(100.0, *ak) and not kernel.fits(1e35, *ak)
    assert not kernel.fits(float("nan"), *ak)
    x = torch.tensor([[1e35, 0.0], [0.5, 0.5]])
    m = field._responsibility_mean(x, k["a"], k["c2"])  # torch's path: as before the kernel
    assert torch.isfinite(m[1]).all()
    huge = MixtureKernel(np.array([[1e30, 0.0], [0.0, 1.0]]))
    assert not huge.fits(0.0, *ak)  # components whose own logits overflow: never the kernel


def test_a_nan_position_gives_a_nan_field_as_in_torch():
    field = build(RunConfig(dataset="moons"))[2]
    x = torch.tensor([[float("nan"), 0.0], [0.5, 0.5]])
    v = field(x, 0.5)["velocity"]
    assert torch.isnan(v[0]).all() and torch.isfinite(v[1]).all()


@pytest.mark.parametrize("t", [0.0, 0.003, 0.05, 0.4, 1.0])
def test_the_grid_kernel_matches_the_full_sum_in_float64(t):
    """The checkerboard's per-axis sums against all 1152 components summed one by one."""
    path, data, field = build(RunConfig(process="fm", dataset="checkerboard"))
    full = ExactField(path, dataclasses.replace(field.reference, grid=None), dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    k = field._scalars(t)
    x = torch.cat([k["a"] * data.sample(600, g)[0], 3 * torch.randn(300, 2, generator=g)]).float()
    got = GridKernel(field.grid)(x.numpy(), k["a"], k["c2"])
    want = full._responsibility_mean(x.double(), k["a"], k["c2"]).numpy()
    assert np.abs(got - want).max() < 2e-5
    assert torch.equal(field._responsibility_mean(x, k["a"], k["c2"]), torch.from_numpy(got))


def test_grid_rows_do_not_depend_on_their_batch():
    field = build(RunConfig(dataset="checkerboard"))[2]
    k = field._scalars(0.2)
    kernel = GridKernel(field.grid)
    x = np.random.default_rng(1).normal(size=(600, 2)).astype(np.float32)
    ak = (k["a"], k["c2"])
    whole = kernel(x, *ak)
    for lo, hi in ((0, 1), (255, 257), (300, 600), (599, 600)):
        np.testing.assert_array_equal(kernel(x[lo:hi], *ak), whole[lo:hi])


def test_far_points_on_the_grid_go_to_torch():
    field = build(RunConfig(dataset="checkerboard"))[2]
    k = field._scalars(0.5)
    kernel = GridKernel(field.grid)
    ak = (k["a"], k["c2"])
    assert kernel.fits(1e3, *ak) and not kernel.fits(1e20, *ak)
    assert not kernel.fits(float("nan"), *ak)
    x = torch.tensor([[1e20, 0.0], [0.5, 0.5], [float("nan"), 0.0]])
    v = field(x, 0.5)["velocity"]
    assert torch.isfinite(v[1]).all() and torch.isnan(v[2]).all()


@pytest.mark.parametrize("t", [0.0, 0.1, 0.7])
def test_the_nearest_component_is_the_closest_one_in_float64(t):
    field = build(RunConfig(process="fm", dataset="moons"))[2]
    k = field._scalars(t)
    x = torch.randn(2000, 2, generator=torch.Generator().manual_seed(5))
    got = MixtureKernel(field._points64.numpy()).nearest(x.numpy(), k["a"], k["c2"])
    dist = torch.cdist(x.double(), k["a"] * field._points64)  # (N, M)
    closest = dist.argmin(1).numpy()
    logits = (-(dist**2) / (2 * k["c2"])).sort(1, descending=True).values
    # two components equally near to float32 precision of the logits (~1e-5): either will do
    clear = (logits[:, 0] - logits[:, 1]).numpy() > 1e-3
    assert clear.sum() > 500  # enough points to test (at t = 0.7 many are near ties)
    np.testing.assert_array_equal(got[clear], closest[clear])
    labels = field.nearest_label(x, t)  # through the field: the components' labels
    np.testing.assert_array_equal(labels.numpy()[clear], field.labels.numpy()[closest[clear]])


@pytest.mark.parametrize("c2", [1e-2, 1e-6])
def test_far_points_keep_the_nearest_component(c2):
    """One component: the softmax is that component exactly, however far the point. Many: as
    float64 says, far out where one component dominates (the kernel once recomputed ℓ − max
    above 0 there and returned infinities or the plain average)."""
    one = MixtureKernel(np.array([[3.0, -2.0]]))
    x = (np.random.default_rng(6).normal(size=(500, 2)) * 1e4).astype(np.float32)
    assert one.fits(float(np.abs(x).max()), 1.0, c2)
    np.testing.assert_array_equal(one(x, 1.0, c2), np.tile(np.float32([3.0, -2.0]), (500, 1)))
    ref = np.random.default_rng(7).uniform(-4, 4, size=(512, 2))
    many = MixtureKernel(ref)
    for scale in (1.0, 100.0, 1e4):
        x = (np.random.default_rng(8).normal(size=(1000, 2)) * scale).astype(np.float32)
        got = many(x, 1.0, c2)
        logits = (x.astype(np.float64) @ ref.T - 0.5 * (ref * ref).sum(1)) / c2
        want = torch.softmax(torch.from_numpy(logits), 1).numpy() @ ref
        assert np.isfinite(got).all()
        assert np.abs(got - want).max() < 1e-3, scale


def test_far_points_on_the_grid_as_in_float64():
    field = build(RunConfig(dataset="checkerboard"))[2]
    full = ExactField(field.path, dataclasses.replace(field.reference, grid=None),
                      dtype=torch.float64)  # fmt: skip
    x = torch.from_numpy((np.random.default_rng(9).normal(size=(1000, 2)) * 1e4).astype("f4"))
    for c2 in (0.0064, 1e-6):
        got = GridKernel(field.grid)(x.numpy(), 1.0, c2)
        want = full._responsibility_mean(x.double(), 1.0, c2).numpy()
        assert np.isfinite(got).all() and np.abs(got - want).max() < 1e-3


def test_torch_only_keeps_the_kernel_out_and_agrees_with_it(monkeypatch):
    """``torch_only`` (the start-up picture's run): no compiled call inside, the same means
    to float32 rounding, and the kernel back after it, even after an exception."""
    from models import fields

    field = build(RunConfig(dataset="moons"))[2]
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(3))
    compiled = field(x, 0.4)
    k = field._scalars(0.4)
    assert field._compiled_applies(x, k["a"], k["c2"])  # outside, the kernel computed it
    calls = []
    monkeypatch.setattr(MixtureKernel, "__call__", lambda *a: calls.append(a))
    with fields.torch_only():
        alone = field(x, 0.4)
        assert not field._compiled_applies(x, k["a"], k["c2"])
    assert calls == []
    torch.testing.assert_close(alone, compiled, atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError), fields.torch_only():
        raise RuntimeError
    monkeypatch.undo()
    assert fields._compiled_allowed

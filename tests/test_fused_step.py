"""The exact field's fused Euler step (``ExactField.euler_step``, the kernels' ``affine``)
against the step computed from the field in float64 torch, and where it must not be taken."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.accel.mixture_kernel import MixtureKernel
from models.fields import ExactField, torch_only
from models.guidance import GuidedField
from models.run.config import RunConfig
from models.run.simulate import build, run_times, start_points
from models.samplers import euler_step, fused_step, sample_euler
from models.solvers.counting import CountingField, PolledField


def fields(dataset: str, process: str):
    """(path, data, float32 field, float64 field): spirals has the mixture kernel, the
    checkerboard the grid kernel."""
    path, data, field = build(RunConfig(process=process, dataset=dataset))
    return path, data, field, ExactField(path, field.reference, dtype=torch.float64)


def points(data, a: float, n: int = 400) -> torch.Tensor:
    """Points near the data scaled by a, and out in the noise, (2n, 2) float32."""
    g = torch.Generator().manual_seed(5)
    return torch.cat([a * data.sample(n, g)[0], 3 * torch.randn(n, 2, generator=g)]).float()


@pytest.mark.parametrize("dataset", ["spirals", "checkerboard"])
@pytest.mark.parametrize("process", ["vp", "fm"])
@pytest.mark.parametrize("t", [0.0, 0.02, 0.5, 1.0])
@pytest.mark.parametrize(("h", "eta"), [(-0.01, 0.0), (0.01, 0.0), (-0.01, 1.0), (0.01, 0.7)])
def test_the_fused_step_is_the_float64_step(dataset, process, t, h, eta):
    """x + h (v + sign(h) ½ η² g² s), with v and s of torch's float64 field: the step the
    samplers took before, to float32 rounding of its result."""
    path, data, field, exact64 = fields(dataset, process)
    if eta and t == 1.0:  # g² is infinite at fm's noise end: SDE runs start below it
        t = 0.99
    x = points(data, field.scalars(t)["a"])
    w = math.copysign(0.5 * eta**2 * path.at(t)["g2"], h) if eta else 0.0
    out = torch.empty_like(x)
    got = field.euler_step(x, t, h, w, out)
    assert got is out and got.dtype == torch.float32
    x64 = x.double()
    kinds = exact64(x64, t, ("velocity", "score"))
    want = x64 + h * (kinds["velocity"] + w * kinds["score"])
    # float32 logits of size |x| a / c² carry ~1e-7 of it into the mean (as the kernel's tests)
    torch.testing.assert_close(got.double(), want, atol=2e-5 * max(1.0, abs(h) * 100), rtol=1e-6)


def test_an_affine_map_is_alpha_m_plus_beta_x_rounded_once():
    field = build(RunConfig(dataset="spirals"))[2]
    kernel = MixtureKernel(field._points64.numpy())
    x = np.random.default_rng(1).normal(size=(300, 2)).astype(np.float32)
    k = field.scalars(0.3)
    mean = kernel(x, k["a"], k["c2"])
    # α m + β x, rounded once from float64
    got = kernel.affine(x, k["a"], k["c2"], -0.37, 1.25)
    want = -0.37 * mean.astype(np.float64) + 1.25 * x.astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7)


def test_the_kernels_refuse_an_output_that_overlaps_the_input_or_is_not_float32():
    field = build(RunConfig(dataset="spirals"))[2]
    kernel = MixtureKernel(field._points64.numpy())
    x = np.zeros((4, 2), np.float32)
    for bad in (x, np.zeros((4, 2)), np.zeros((3, 2), np.float32), np.zeros((2, 4), np.float32).T):
        with pytest.raises(ValueError, match="out must be"):
            kernel.affine(x, 0.5, 0.5, 1.0, 0.0, bad)


@pytest.mark.parametrize("dataset", ["moons", "checkerboard"])
@pytest.mark.parametrize(
    ("process", "eta", "direction"),
    [("fm", 0.0, "reverse"), ("vp", 1.0, "reverse"), ("vp", 0.6, "forward")],
)
def test_a_fused_run_follows_the_float64_run(dataset, process, eta, direction, monkeypatch):
    """A whole run of fused steps (the field itself is never called) against the same run
    in float64 torch, the same noise: float32 rounding, as small as torch's float32 path's,
    not a different flow. Forward runs step with h > 0 (the score's sign in the drift)."""
    config = RunConfig(process=process, dataset=dataset, kind="sde" if eta else "ode",
                       eta=eta or None, steps=50, particles=500, direction=direction)  # fmt: skip
    path, data, field = build(config)
    times = run_times(config, path)
    g = torch.Generator().manual_seed(0)
    x1 = data.sample(500, g)[0] if direction == "forward" else \
        start_points(config, path, float(times[0]), g)  # fmt: skip
    zs = torch.randn(len(times), *x1.shape, generator=g)

    class Noise:  # the same standard normals for both runs, in each run's dtype
        step = 0

        def draw(self, x):
            self.step += 1
            return zs[self.step - 1].to(x.dtype)

    exact64 = ExactField(path, field.reference, dtype=torch.float64)
    want = sample_euler(exact64, path, x1.double(), times, eta, Noise())
    with torch_only():  # torch's float32 path: the error the fused run is held to
        torch32 = (sample_euler(field, path, x1, times, eta, Noise()).double() - want).abs()
    monkeypatch.setattr(ExactField, "__call__", lambda *a: pytest.fail("the field was called"))
    got = sample_euler(field, path, x1, times, eta, Noise())
    error = (got.double() - want).abs()
    assert error.mean() < 1.5 * torch32.mean() + 1e-8, (error.mean(), torch32.mean())
    assert error.max() < 3 * torch32.max() + 1e-6, (error.max(), torch32.max())


def test_wrappers_that_change_the_field_never_hand_over_its_step():
    """``GuidedField`` and ``PolledField`` forward unknown attributes to the field they wrap:
    its step would skip the guidance or the poll. The step is looked up on the class."""
    path, data, field, _ = fields("moons", "vp")
    x = points(data, 0.5, 50)
    out = torch.empty_like(x)
    guided = GuidedField(field, field, 2.0, 0)
    assert hasattr(guided, "euler_step")  # through __getattr__: the reason for the rule
    assert fused_step(guided, x, 0.5, -0.01, 0.0, out) is None
    polls = []
    polled = PolledField(field, lambda: polls.append(1))
    assert fused_step(polled, x, 0.5, -0.01, 0.0, out) is None
    # the sampler's step then goes through the wrapper itself: it polls
    stepped = euler_step(polled, path, x, 0.5, -0.01, 0.0, out)
    assert polls == [1] and stepped is not out
    counted = CountingField(CountingField(field, particles=100), particles=100)
    assert fused_step(counted, x, 0.5, -0.01, 0.0, out) is out
    assert counted.nfe == 1 and counted.field.nfe == 1
    uncounted = CountingField(polled, particles=100)
    assert fused_step(uncounted, x, 0.5, -0.01, 0.0, out) is None and uncounted.calls == 0


def test_no_fused_step_where_the_kernel_does_not_apply():
    _, data, field, _ = fields("moons", "vp")
    x = points(data, 0.5, 50)
    out = torch.empty_like(x)
    assert field.euler_step(x.double(), 0.5, -0.01) is None
    assert field.euler_step(x.clone().requires_grad_(True), 0.5, -0.01) is None
    assert field.euler_step(torch.full((3, 2), 1e35), 0.5, -0.01) is None
    assert field.euler_step(torch.tensor([[math.nan, 0.0]]), 0.5, -0.01) is None
    with torch_only():
        assert field.euler_step(x, 0.5, -0.01, 0.0, out) is None
    assert field.euler_step(x, 0.5, -0.01, 0.0, out) is out

    class Tilted(ExactField):  # a subclass that changes the field must not inherit its step
        def _outputs(self, x, m, k, want):
            return {kind: 2 * v for kind, v in super()._outputs(x, m, k, want).items()}

    tilted = Tilted(field.path, field.reference)
    assert fused_step(tilted, x, 0.5, -0.01, 0.0, out) is None

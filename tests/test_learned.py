"""The learned field: the exact field's shapes and conversions, finite at both ends."""

import pytest
import torch

from models.datasets import make_dataset
from models.fields import ExactField
from models.learned.network import NATIVE, Architecture, LearnedField, build_network
from models.paths import FIELD_KINDS, make_path
from models.samplers import sample_heun, time_grid
from models.schedules import make_schedule

KINDS = FIELD_KINDS


def _setup(process):
    path = make_path(process, make_schedule("linear"))
    data = make_dataset("8gaussians")
    return path, ExactField(path, data.mixture, dtype=torch.float64)


def _stub(exact, kind):
    """A "network" that returns the exact field's ``kind``: net(x, t (N,)) -> (N, 2)."""
    return lambda x, t: exact(x.double(), float(t[0]), (kind,))[kind]


@pytest.mark.parametrize("process", ["vp", "fm", "trig"])
@pytest.mark.parametrize("predicts", KINDS)
@pytest.mark.parametrize("t", [0.05, 0.3, 0.7, 0.98])
def test_a_network_that_predicts_the_exact_field_gives_back_every_exact_kind(process, predicts, t):
    path, exact = _setup(process)
    learned = LearnedField(_stub(exact, predicts), path, predicts)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2
    want = exact(x, t, KINDS)
    got = learned(x, t, KINDS)
    for kind in KINDS:
        assert got[kind].shape == (64, 2) and got[kind].dtype == torch.float64
        # the stub runs through float32 (the network's dtype); compare at that precision
        scale = want[kind].abs().max().item() + 1.0
        torch.testing.assert_close(got[kind], want[kind], atol=2e-5 * scale, rtol=1e-4)


@pytest.mark.parametrize("process", ["vp", "fm", "trig"])
def test_random_network_is_finite_at_both_ends_and_in_every_kind(process):
    arch = Architecture(predicts=NATIVE[process], process=process, width=16, depth=2)
    field = LearnedField.from_network(build_network(arch, seed=0), arch)
    x = torch.randn(100, 2)
    for t in (0.0, 1e-9, arch.t_min, 0.5, 1.0 - 1e-9, 1.0):
        out = field(x, t, KINDS)
        for kind in KINDS:
            assert out[kind].shape == (100, 2) and out[kind].dtype == torch.float32
            assert torch.isfinite(out[kind]).all(), (t, kind)


def test_times_below_t_min_give_the_field_at_t_min():
    arch = Architecture(predicts="eps", process="vp", width=16, depth=2)
    field = LearnedField.from_network(build_network(arch, seed=0), arch)
    x = torch.randn(10, 2)
    at_zero, at_min = field(x, 0.0, ("score",)), field(x, arch.t_min, ("score",))
    assert torch.equal(at_zero["score"], at_min["score"])


def test_heun_reverse_run_with_a_learned_field_lands_finite_at_t0():
    """Heun evaluates at t = 0 on its last step (the exact field is finite there; so is this)."""
    arch = Architecture(predicts="eps", process="vp", width=16, depth=2)
    field = LearnedField.from_network(build_network(arch, seed=0), arch)
    x1 = torch.randn(50, 2)
    traj = sample_heun(field, arch.path(), x1, time_grid(1.0, 0.0, 10))
    assert traj.shape == (11, 50, 2) and torch.isfinite(traj).all()


def test_unknown_kind_refused():
    arch = Architecture(width=8, depth=1)
    field = LearnedField.from_network(build_network(arch), arch)
    with pytest.raises(ValueError, match="unknown field kind"):
        field(torch.zeros(3, 2), 0.5, ("divergence",))


def test_labels_come_from_the_labeler_or_are_zero():
    _, exact = _setup("fm")
    arch = Architecture(width=8, depth=1)
    net = build_network(arch)
    x = exact.reference.points[:8].float()
    assert LearnedField.from_network(net, arch).nearest_label(x, 0.0).tolist() == [0] * 8
    labelled = LearnedField.from_network(net, arch, labeler=exact).nearest_label(x, 0.0)
    assert labelled.tolist() == list(range(8))


def test_gradients_flow_when_x_requires_grad():
    arch = Architecture(width=8, depth=1)
    field = LearnedField.from_network(build_network(arch, seed=0), arch)
    x = torch.randn(5, 2, requires_grad=True)
    field(x, 0.5)["velocity"].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()

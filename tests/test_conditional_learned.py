"""Class-conditional learned fields: the network's class input and null token, its checkpoints
(old unconditional files still load), label validation, and training with label dropout.

The truth a conditional field is judged against is independent of the network: the label of
the data set's mixture component nearest a sample at t = 0 (``ExactField.nearest_label``).
"""

import json

import pytest
import torch
from safetensors import safe_open

from models.datasets import DATASETS, Points, make_dataset
from models.fields import ExactField
from models.learned.checkpoint import CheckpointError, load, pretrained_path, save, to_bytes
from models.learned.conditional import class_shares
from models.learned.network import Architecture, FieldMLP, LearnedField, build_network
from models.learned.training import TrainConfig, Trainer
from models.paths import make_path
from models.samplers import time_grid
from models.schedules import make_schedule
from models.solvers import sampler_of

COND = Architecture(width=16, depth=2, n_freq=4, n_classes=3)
PLAIN = Architecture(width=16, depth=2, n_freq=4)


def _net(arch=COND, seed=0) -> FieldMLP:
    """A network whose class embedding is not zero (a fresh one starts at zero: every class
    would give the same output and the tests would prove nothing)."""
    net = build_network(arch, seed=seed)
    if arch.n_classes:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            net.label_embed.weight.normal_()
    return net.requires_grad_(False).eval()


def _xt(n=32):
    gen = torch.Generator().manual_seed(5)
    return torch.randn(n, 2, generator=gen), torch.rand(n, generator=gen)


def test_forward_shape_and_the_null_token():
    net = _net()
    x, t = _xt()
    null = net(x, t)
    assert null.shape == (32, 2)
    assert torch.equal(null, net(x, t, torch.full((32,), 3)))  # None: the null token, row 3
    outs = [net(x, t, torch.full((32,), c)) for c in range(3)]
    assert all(not torch.allclose(a, b) for a, b in zip(outs, [*outs[1:], null], strict=True))
    mixed = net(x, t, torch.arange(32) % 4)  # each row its own class
    for c in range(4):
        want = null if c == 3 else outs[c]
        torch.testing.assert_close(mixed[c::4], want[c::4])
    assert net.label_embed.weight.shape == (4, 16)


def test_an_unconditional_network_is_unchanged_and_takes_no_label():
    net = _net(PLAIN)
    assert not hasattr(net, "label_embed")
    assert {k.split(".")[0] for k in net.state_dict()} == {"net"}
    x, t = _xt()
    with pytest.raises(ValueError, match="unconditional"):
        net(x, t, torch.zeros(32, dtype=torch.long))
    # the same seed gives the same layers with or without classes (the embedding comes last)
    cond = build_network(COND, seed=0)
    for name, value in net.state_dict().items():
        assert torch.equal(cond.state_dict()[name], value), name


def test_fresh_class_embeddings_start_at_zero_so_every_class_starts_as_the_shared_field():
    net = build_network(COND, seed=0)
    x, t = _xt()
    assert torch.equal(net(x, t, torch.zeros(32, dtype=torch.long)), net(x, t))


@pytest.mark.parametrize("n", [-1, 65, 2.0, True, "3"])
def test_architecture_refuses_bad_class_counts(n):
    with pytest.raises(ValueError, match="n_classes"):
        Architecture(n_classes=n)


def test_architecture_dicts_old_and_new():
    old = PLAIN.to_dict()
    assert "n_classes" not in old  # an unconditional file is what it was before classes
    assert Architecture.from_dict(old).n_classes == 0
    assert Architecture.from_dict(COND.to_dict()) == COND
    with pytest.raises(ValueError, match="differ"):
        Architecture.from_dict({**old, "colour": 1})  # unknown keys are still refused
    missing = dict(old)
    del missing["width"]
    with pytest.raises(ValueError, match="differ"):
        Architecture.from_dict(missing)


@pytest.mark.parametrize("name", sorted(DATASETS))
@pytest.mark.parametrize("process", ["fm", "vp"])
def test_the_shipped_unconditional_checkpoints_still_load(name, process):
    field, arch, _ = load(pretrained_path(name, process))
    assert arch.n_classes == 0 and field.n_classes == 0 and field.label is None
    with safe_open(pretrained_path(name, process), "pt") as f:
        assert "n_classes" not in json.loads(f.metadata()["architecture"])


def test_a_conditional_checkpoint_round_trips_its_classes_and_outputs(tmp_path):
    net = _net()
    path = tmp_path / "cond"
    save(path, net, COND, {"dataset": "moons"})
    field, arch, _ = load(path)
    assert arch == COND and arch.n_classes == 3 and field.n_classes == 3
    x, _ = _xt()
    for label in (None, 0, 1, 2):
        want = LearnedField.from_network(net, COND, label=label)(x, 0.4)["velocity"]
        torch.testing.assert_close(field.with_label(label)(x, 0.4)["velocity"], want)
    for name, value in net.state_dict().items():
        assert torch.equal(field.net.state_dict()[name], value), name


def test_classes_in_the_architecture_without_their_embedding_are_refused(tmp_path):
    path = tmp_path / "lying"
    path.write_bytes(to_bytes(_net(PLAIN), COND))  # it claims classes the weights lack
    with pytest.raises(CheckpointError, match="do not match their architecture"):
        load(path)


def test_learned_field_labels_are_validated_in_one_line():
    path = make_path("fm", make_schedule("linear"))
    cond = LearnedField.from_network(_net(), COND)
    plain = LearnedField.from_network(_net(PLAIN), PLAIN)
    stub = LearnedField(lambda x, t: x, path, "velocity")
    assert (cond.n_classes, plain.n_classes, stub.n_classes) == (3, 0, 0)
    for field in (plain, stub):
        with pytest.raises(ValueError, match="unconditional") as exc:
            field.with_label(0)
        assert "\n" not in str(exc.value)
    for bad in (-1, 3, 1.0, True, "1"):
        with pytest.raises(ValueError, match=r"0\.\.2") as exc:
            LearnedField.from_network(_net(), COND, label=bad)
        assert "\n" not in str(exc.value)
    other = cond.with_label(2)
    assert other.label == 2 and other.net is cond.net and cond.label is None
    assert cond.with_label(torch.tensor(1)).label == 1  # any integer type


def test_label_dropout_is_validated():
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="label-dropout"):
            TrainConfig(conditional=True, label_dropout=bad).validate()
    assert TrainConfig(dataset="swissroll", conditional=True).architecture().n_classes == 4
    assert TrainConfig(dataset="swissroll").architecture().n_classes == 0


SMALL = dict(width=32, depth=2, batch=256, device="cpu")


def test_labels_follow_their_points_and_drop_to_the_null_token():
    trainer = Trainer(TrainConfig(dataset="8gaussians", conditional=True, label_dropout=0.3,
                                  steps=1, ot=True, **SMALL))  # fmt: skip
    exact = ExactField(trainer.path, make_dataset("8gaussians").reference())
    labels, kept_right = [], []
    for _ in range(20):
        _, _, _, x0, label = trainer.labelled_batch()
        kept = label < 8
        kept_right.append((exact.nearest_label(x0, 0.0)[kept] == label[kept]).float().mean())
        labels.append(label)
    labels = torch.cat(labels)
    assert min(kept_right) > 0.99  # a label is its point's mode (σ 0.15 at radius 2)
    assert abs((labels == 8).float().mean() - 0.3) < 0.03  # 5120 coin flips: σ = 0.0064
    assert labels.min() == 0 and labels.max() == 8


def test_user_points_give_their_labels():
    points = Points([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]], labels=[0, 2, 1])
    trainer = Trainer(TrainConfig(dataset="points", conditional=True, steps=2, **SMALL), points)
    assert trainer.arch.n_classes == 3
    trainer.run()
    assert trainer.snapshot().label_embed.weight.shape == (4, 32)
    with pytest.raises(ValueError, match="negative"):
        Trainer(TrainConfig(dataset="points", conditional=True, **SMALL),
                Points([[0.0, 0.0]], labels=[-1]))  # fmt: skip


@pytest.mark.parametrize(("process", "steps"), [("fm", 800), ("vp", 800), ("trig", 400)])
def test_a_short_conditional_training_keeps_to_the_asked_class(process, steps, one_thread):
    config = TrainConfig(process=process, dataset="8gaussians", steps=steps, conditional=True,
                         batch=256, device="cpu")  # fmt: skip
    trainer = Trainer(config)
    trainer.run()
    field = trainer.field()
    data = make_dataset("8gaussians")
    shares = class_shares(field, data, n_per_class=100, steps=20)
    assert min(shares) > 0.5 and sum(shares) / 8 > 0.9, shares  # chance: 1/8
    # the null token learned the unconditional field: its samples cover every mode
    x = torch.randn(800, 2, generator=torch.Generator().manual_seed(0))
    out = sampler_of("heun")(field, field.path, x, time_grid(1.0, 0.0, 20))[-1]
    exact = ExactField(field.path, data.reference())
    counts = torch.bincount(exact.nearest_label(out.float(), 0.0), minlength=8)
    assert counts.min() > 40, counts  # 100 each if even

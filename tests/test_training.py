"""Training: the loss falls, a seed reproduces the weights, stops keep good weights, OT pairs."""

import itertools
import math

import pytest
import torch

from models.fields import ExactField
from models.learned.training import OT_BLOCK, TrainConfig, Trainer, ot_pairing, train

SMALL = dict(width=32, depth=2, n_freq=4, batch=128, device="cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small matmuls gain nothing from a second thread, and lose 50x when cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _held_out_loss(trainer, net, batches=10):
    """Mean loss of ``net(x_t (B, 2), t (B,))`` over fixed batches that training never saw."""
    gen, trainer.gen = trainer.gen, torch.Generator().manual_seed(999)
    try:
        total = 0.0
        with torch.no_grad():
            for _ in range(batches):
                xt, t, target, _ = trainer.loss_batch()
                total += float((net(xt, t) - target).pow(2).sum(1).mean())
        return total / batches
    finally:
        trainer.gen = gen


def _exact_net(trainer):
    """The exact field's prediction of the trained kind, row by row: the lowest possible loss."""
    exact = ExactField(trainer.path, trainer.data.mixture, dtype=torch.float64)
    kind = trainer.arch.predicts

    def net(xt, t):
        rows = [exact(xt[i : i + 1].double(), float(t[i]), (kind,))[kind] for i in range(len(t))]
        return torch.cat(rows).float()

    return net


@pytest.mark.parametrize("process", ["fm", "vp", "trig"])
def test_a_short_run_lowers_the_loss(process):
    config = TrainConfig(process=process, dataset="8gaussians", steps=300, lr=1e-2, **SMALL)
    trainer = Trainer(config)
    floor = _held_out_loss(trainer, _exact_net(trainer))
    before = _held_out_loss(trainer, trainer.ema_net)
    trainer.run()
    after = _held_out_loss(trainer, trainer.ema_net)
    assert trainer.step == 300 and len(trainer.losses) == 300
    # the CFM / DSM loss has an irreducible part (the exact field's loss): the excess must halve
    assert floor < after < floor + 0.5 * (before - floor), (floor, before, after)


def test_fixed_seed_reproduces_weights_bit_for_bit():
    config = dict(process="vp", dataset="moons", steps=40, ot=True, train_size=500, **SMALL)
    a, b = train(TrainConfig(**config)), train(TrainConfig(**config))
    c = train(TrainConfig(**{**config, "seed": 1}))
    b_weights = b.ema_net.state_dict()
    for name, x in a.ema_net.state_dict().items():
        assert torch.equal(x, b_weights[name]), name
    assert a.losses == b.losses
    assert not torch.equal(a.ema_net.net[0].weight, c.ema_net.net[0].weight)


def test_progress_callback_and_clean_stop_keep_the_weights():
    seen = []
    trainer = Trainer(TrainConfig(steps=1000, **SMALL))
    trainer.run(callback=seen.append, should_stop=lambda: trainer.step >= 120, every=50)
    assert trainer.step == 120 and trainer.stopped_reason == "stopped"
    assert [p.step for p in seen] == [50, 100, 120]
    last = seen[-1]
    assert last.loss == trainer.losses[-1] and math.isfinite(last.ema_loss)
    assert last.elapsed > 0 and all(p.elapsed <= q.elapsed for p, q in itertools.pairwise(seen))
    field = trainer.field()
    assert torch.isfinite(field(torch.randn(10, 2), 0.5)["velocity"]).all()
    # a stopped run continues where it stopped
    trainer.run()
    assert trainer.step == 1000


def test_non_finite_loss_stops_without_touching_the_weights():
    trainer = Trainer(TrainConfig(steps=50, **SMALL))
    trainer.run(should_stop=lambda: trainer.step >= 10)
    before = {k: v.clone() for k, v in trainer.ema_net.state_dict().items()}
    trainer.loss_batch = lambda: (torch.full((4, 2), math.nan), torch.rand(4), torch.zeros(4, 2), 0)
    trainer.stopped_reason = None
    trainer.run()
    assert trainer.stopped_reason == "non-finite loss at step 11" and trainer.step == 10
    for k, v in trainer.ema_net.state_dict().items():
        assert torch.equal(v, before[k])


def test_finite_training_set_draws_only_its_points():
    trainer = Trainer(TrainConfig(train_size=7, steps=1, **SMALL))
    assert trainer.train_points.shape == (7, 2)
    batch = trainer._batch()
    assert all((trainer.train_points == p).all(1).any() for p in batch)


def test_ot_pairing_is_the_minimum_cost_permutation():
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 2, generator=gen), torch.randn(6, 2, generator=gen)
    paired = ot_pairing(x0, eps)
    assert sorted(map(tuple, paired.tolist())) == sorted(map(tuple, eps.tolist()))
    best = min(float(((x0 - eps[list(p)]) ** 2).sum()) for p in itertools.permutations(range(6)))
    assert float(((x0 - paired) ** 2).sum()) == pytest.approx(best, rel=1e-9)


def test_ot_pairing_of_a_large_batch_solves_blocks_of_at_most_ot_block(monkeypatch):
    """Batch 4096: 16 exact assignments of 256 pairs (one of 4096 took 36 s), each the
    minimum-cost pairing of its block, checked against scipy on that block alone."""
    import scipy.optimize
    from scipy.optimize import linear_sum_assignment

    sizes = []

    def recording(cost):
        sizes.append(cost.shape)
        return linear_sum_assignment(cost)

    # ot_pairing imports it when called (not at start-up): the module's attribute is the one
    monkeypatch.setattr(scipy.optimize, "linear_sum_assignment", recording)
    gen = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(4096 + 100, 2, generator=gen), torch.randn(4096 + 100, 2, generator=gen)
    paired = ot_pairing(x0, eps)
    assert sizes == [(OT_BLOCK, OT_BLOCK)] * 16 + [(100, 100)]
    for start in range(0, len(x0), OT_BLOCK):
        block = slice(start, start + OT_BLOCK)
        a, b, p = x0[block].double(), eps[block].double(), paired[block].double()
        assert sorted(map(tuple, p.tolist())) == sorted(map(tuple, b.tolist())), "mixed blocks"
        rows, cols = linear_sum_assignment(torch.cdist(a, b).pow(2).numpy())
        best = float(((a[rows] - b[cols]) ** 2).sum())
        assert float(((a - p) ** 2).sum()) == pytest.approx(best, rel=1e-12)


def test_ot_pairing_straightens_flow_matching_targets():
    """With OT pairs, conditional velocities u = ε − x0 in one batch are shorter on average."""
    base = Trainer(TrainConfig(**{**SMALL, "batch": 256}))
    ot = Trainer(TrainConfig(ot=True, **{**SMALL, "batch": 256}))
    _, _, u_base, _ = base.loss_batch()
    _, _, u_ot, _ = ot.loss_batch()
    assert u_ot.pow(2).sum(1).mean() < 0.7 * u_base.pow(2).sum(1).mean()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"steps": 0}, "steps"),
        ({"batch": 1}, "batch"),
        ({"lr": float("nan")}, "lr"),
        ({"train_size": 0}, "train-size"),
        ({"process": "ve"}, "process"),
        ({"dataset": "nope"}, "dataset"),
        ({"width": 0}, "architecture"),
    ],
)
def test_bad_settings_refused_in_one_line(change, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{**SMALL, **change}).validate()


def test_cuda_refused_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="cuda"):
        TrainConfig(device="cuda").validate()
    assert TrainConfig(device="auto").resolved_device() == "cpu"

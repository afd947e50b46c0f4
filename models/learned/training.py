"""Training a :class:`models.learned.network.FieldMLP`: denoising score matching and flow matching.

One step draws data x0 (fresh samples, or a batch of a fixed training set of M points), noise ε
and times t, forms x_t = a x0 + b ε and regresses the network on the path's target
(docs/MATH.md §9): ε for VP (denoising score matching, ε-prediction), u = ȧ x0 + ḃ ε for
flow matching (conditional flow matching). With ``ot`` the batch's noise is re-paired to its
data by an exact minimum-cost assignment (minibatch optimal transport, Tong et al. 2023;
Pooladian et al. 2023), which
straightens the learned paths. The assignment is solved in blocks of at most ``OT_BLOCK`` pairs:
its cost grows as B³ (one batch of 4096 took 36 s on a 2-core machine, and a server's other
users waited for it), while blocks of 256 take ~9 ms each. Minibatch OT is an approximation at
any batch size; the blocks are random (the batch is drawn i.i.d.), so a batch of 4096 pairs as
16 minibatches of 256 would.
With ``source`` the t = 1 end x1 is a sample of another data set instead of ε ~ N(0, I) (flow
matching between two data sets, independent or OT-coupled; :mod:`models.source_flow` has its
exact field); the target is still u = ȧ x0 + ḃ x1.
With ``conditional`` the network also sees each x0's class (the data set's component label),
replaced by the null token with probability ``label_dropout`` (classifier-free guidance, Ho &
Salimans 2022): one network learns the class-conditional fields and, on the null token, the
unconditional one. The target is unchanged; only the input gains the label.

Adam with a cosine-decayed learning rate, gradient clipping, and an exponential moving average
(EMA) of the weights, which is what samples. Seeded: on the CPU the same config gives the same
weights bit for bit. :class:`Trainer` runs step by step (the app drives it from a thread and
reads the EMA weights while it runs); :func:`train` runs it to the end.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from models.datasets import DATASETS, Dataset, make_dataset
from models.learned.network import (
    MAX_CLASSES,
    NATIVE,
    Architecture,
    FieldMLP,
    LearnedField,
    build_network,
)

MAX_STEPS = 1_000_000
MAX_BATCH = 65_536
MAX_TRAIN_SIZE = 1_000_000


@dataclass
class TrainConfig:
    """Every setting of one training run (the defaults are ``flowscope train``'s).

    Attributes:
        process: ``fm`` or ``trig`` (conditional flow matching: velocity) or ``vp``
            (ε-prediction).
        dataset: a built-in data set name (or ``points`` with a data set passed in).
        steps, batch, lr: optimisation length, batch size and peak learning rate.
        train_size: M, the size of a fixed training set; None draws fresh samples every step.
        ot: pair data and noise in each batch by exact minibatch optimal transport (the
            ``coupling`` "ot"; False: "independent").
        source: a built-in data set drawn as x1 instead of N(0, I) (flow matching from a
            source, ``fm`` with a velocity, x0 or ε = x1 target); None: N(0, I).
        seed: seeds the weights, data, noise and times.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when available).
        ema: EMA decay of the sampling weights.
        width, depth, n_freq: the MLP (see :class:`models.learned.network.Architecture`).
        predicts: the trained field kind; None means ε for VP, velocity for FM.
        schedule, beta_min, beta_max: the VP schedule.
        conditional: train a class-conditional network on the data set's labels (its
            ``n_labels`` classes, at most 64), for classifier-free guidance.
        label_dropout: the probability, in [0, 1), that a training label is replaced by the
            null token (which trains the unconditional field); ignored when not conditional.
    """

    process: str = "fm"
    dataset: str = "moons"
    steps: int = 4000
    batch: int = 512
    lr: float = 3e-3
    train_size: int | None = None
    ot: bool = False
    seed: int = 0
    device: str = "auto"
    ema: float = 0.998
    width: int = 128
    depth: int = 3
    n_freq: int = 8
    predicts: str | None = None
    schedule: str = "linear"
    beta_min: float = 0.1
    beta_max: float = 20.0
    source: str | None = None
    conditional: bool = False
    label_dropout: float = 0.2

    @property
    def coupling(self) -> str:
        """How x0 and x1 are paired in a batch: ``independent`` or ``ot``."""
        return "ot" if self.ot else "independent"

    def validate(self, data: Dataset | None = None) -> None:
        """Raise ValueError with a one-line message for any bad setting (``data``: the user's
        data set that overrides ``dataset``, whose labels a conditional network learns)."""
        checks = [
            (self.process in NATIVE, f"process must be one of {tuple(NATIVE)}"),
            (
                self.dataset in DATASETS or self.dataset == "points",
                f"unknown dataset {self.dataset!r}; choose from {', '.join(DATASETS)}",
            ),
            (1 <= self.steps <= MAX_STEPS, f"steps must be in 1..{MAX_STEPS}, got {self.steps}"),
            (2 <= self.batch <= MAX_BATCH, f"batch must be in 2..{MAX_BATCH}, got {self.batch}"),
            (math.isfinite(self.lr) and 0 < self.lr <= 1, f"lr must be in (0, 1], got {self.lr}"),
            (
                self.train_size is None or 1 <= self.train_size <= MAX_TRAIN_SIZE,
                f"train-size must be in 1..{MAX_TRAIN_SIZE}, got {self.train_size}",
            ),
            (0 <= self.ema < 1, f"ema must be in [0, 1), got {self.ema}"),
            (self.device in ("cpu", "cuda", "auto"), "device must be cpu, cuda or auto"),
            (
                self.source is None or self.source in DATASETS,
                f"unknown source {self.source!r}; choose from {', '.join(DATASETS)}",
            ),
            (
                self.source is None or (self.process == "fm" and self.predicts != "score"),
                "a data source trains fm on the velocity, x0 or x1 (no score: x1 is no Gaussian)",
            ),
            (
                math.isfinite(self.label_dropout) and 0 <= self.label_dropout < 1,
                f"label-dropout must be in [0, 1), got {self.label_dropout}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        self.architecture(data)  # range checks of the network (and of the classes)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device cuda asked for, but no CUDA device is available")

    def architecture(self, data: Dataset | None = None) -> Architecture:
        """The network's architecture; a conditional one has the data's ``n_labels`` classes
        (``data``, else the built-in data set's)."""
        return Architecture(
            width=self.width, depth=self.depth, n_freq=self.n_freq,
            predicts=self.predicts or NATIVE[self.process], process=self.process,
            schedule=self.schedule, beta_min=self.beta_min, beta_max=self.beta_max,
            n_classes=self.n_classes(data),
        )  # fmt: skip

    def n_classes(self, data: Dataset | None = None) -> int:
        """Classes of the network: 0 unless conditional, else the data's ``n_labels``."""
        if not self.conditional:
            return 0
        if data is None:
            if self.dataset not in DATASETS:
                raise ValueError("a conditional network on your points needs the points")
            data = DATASETS[self.dataset]
        n = int(data.n_labels)
        labels = getattr(data, "labels", None)  # user points carry theirs; embeddings index them
        if labels is not None and len(labels) and int(labels.min()) < 0:
            raise ValueError("a conditional network needs labels 0, 1, ...; got a negative one")
        if not 1 <= n <= MAX_CLASSES:
            raise ValueError(f"a conditional network takes 1..{MAX_CLASSES} classes; the data "
                             f"have {n} labels")  # fmt: skip
        return n

    def resolved_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


OT_BLOCK = 256  # pairs assigned exactly together (see the module docstring)


@dataclass(frozen=True)
class Progress:
    """What the callback receives: step (1-based), loss of that step, its EMA, seconds so far."""

    step: int
    loss: float
    ema_loss: float
    elapsed: float


def ot_pairing(x0: Tensor, eps: Tensor, block: int | None = None) -> Tensor:
    """Re-order ``eps`` (B, 2) so that, within each run of ``block`` consecutive pairs (default
    ``OT_BLOCK``), Σ |x0_i − eps_i|² is minimal over all pairings of that run.

    Exact assignments (scipy's ``linear_sum_assignment``, O(block³), ~9 ms at 256); a batch of
    at most ``block`` pairs is paired exactly as a whole.
    """
    from scipy.optimize import linear_sum_assignment  # ~0.35 s to import: on first use

    block = OT_BLOCK if block is None else block
    order = []
    for start in range(0, len(x0), block):
        stop = min(start + block, len(x0))
        cost = torch.cdist(x0[start:stop].double(), eps[start:stop].double()).pow(2)
        _, cols = linear_sum_assignment(cost.cpu().numpy())
        order.append(torch.from_numpy(np.asarray(cols, dtype=np.int64)) + start)
    return eps[torch.cat(order).to(eps.device)]


COUPLINGS = ("independent", "ot")


def couple(x0: Tensor, x1: Tensor, coupling: str = "independent") -> Tensor:
    """x1 (B, 2) paired to x0 (B, 2): as drawn (``independent``), or re-ordered by
    :func:`ot_pairing` (``ot``: minibatch optimal transport on squared distances)."""
    if coupling not in COUPLINGS:
        raise ValueError(f"coupling must be one of {COUPLINGS}, got {coupling!r}")
    return ot_pairing(x0, x1) if coupling == "ot" else x1


class Trainer:
    """Step-by-step training of one config; ``ema_net`` holds the sampling weights.

    Args:
        config: the settings.
        data: overrides ``config.dataset`` (user points).
    """

    def __init__(self, config: TrainConfig, data: Dataset | None = None):
        config.validate(data)
        self.config, self.arch = config, config.architecture(data)
        self.device = torch.device(config.resolved_device())
        self.path = self.arch.path()
        self.data = data if data is not None else make_dataset(config.dataset)
        self.source = None if config.source is None else make_dataset(config.source)
        self.net = build_network(self.arch, config.seed).to(self.device)
        self.ema_net = copy.deepcopy(self.net).requires_grad_(False)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        # All randomness from one generator on the CPU: the same stream on every device.
        self.gen = torch.Generator().manual_seed(config.seed)
        self.train_points = self.train_labels = None
        if config.train_size is not None:
            self.train_points, self.train_labels = self.data.sample(config.train_size, self.gen)
        self.step, self.ema_loss, self.losses, self.elapsed = 0, math.nan, [], 0.0
        self.stopped_reason: str | None = None

    def _batch(self) -> Tensor:
        """Data for one step, shape (B, 2), on the CPU."""
        return self._labelled_data()[0]

    def _labelled_data(self) -> tuple[Tensor, Tensor]:
        """Data for one step and its labels, shapes (B, 2) and (B,), on the CPU."""
        b = self.config.batch
        if self.train_points is None:
            return self.data.sample(b, self.gen)
        idx = torch.randint(0, len(self.train_points), (b,), generator=self.gen)
        return self.train_points[idx], self.train_labels[idx]

    def _lr(self) -> float:
        """Cosine decay from ``lr`` to 2 % of it, after a 1 % linear warm-up."""
        c, k = self.config, self.step
        warm = max(1, c.steps // 100)
        if k < warm:
            return c.lr * (k + 1) / warm
        frac = (k - warm) / max(1, c.steps - warm)
        return c.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))

    def loss_batch(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One training batch (x_t, t, target, x0), each (B, 2) but t (B,), on the device."""
        return self.labelled_batch()[:4]

    def labelled_batch(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """(x_t, t, target, x0, label): :meth:`loss_batch` and, for a conditional network, the
        label of each x0 (B,) int64, ``n_classes`` (the null token) where dropped; else None.

        The dropout's coin flips are drawn after everything else, and only when conditional,
        so an unconditional run draws exactly the stream it always did."""
        x0, label = self._labelled_data()
        if self.source is None:
            eps = torch.randn(x0.shape, generator=self.gen)
        else:  # x1 from the source data set (``eps`` names the t = 1 end either way)
            eps = self.source.sample(len(x0), self.gen)[0]
        eps = couple(x0, eps, self.config.coupling)
        t_lo = self.arch.t_min if self.arch.process == "vp" else 0.0
        t = t_lo + (1 - t_lo) * torch.rand(len(x0), generator=self.gen)
        x0, eps, t = (v.to(self.device) for v in (x0, eps, t))
        t64 = t.double()
        c = self.path.coefficients(t64)
        a, b = c.a.float()[:, None], c.b.float()[:, None]
        xt = a * x0 + b * eps
        target = self.path.target(x0.double(), eps.double(), t64, self.arch.predicts).float()
        if not self.arch.n_classes:
            return xt, t, target, x0, None
        # labels stay with their x0: OT re-pairs the noise, never the data
        dropped = torch.rand(len(label), generator=self.gen) < self.config.label_dropout
        label = torch.where(dropped, self.arch.n_classes, label.long())
        return xt, t, target, x0, label.to(self.device)

    def train_step(self) -> float:
        """One optimiser step; returns the loss. Non-finite loss: no update, returns it."""
        for group in self.opt.param_groups:
            group["lr"] = self._lr()
        if self.arch.n_classes:
            xt, t, target, _, label = self.labelled_batch()
            pred = self.net(xt, t, label)
        else:
            xt, t, target, _ = self.loss_batch()
            pred = self.net(xt, t)
        loss = (pred - target).pow(2).sum(1).mean()
        value = loss.item()
        if not math.isfinite(value):
            return value
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()
        self._update_ema()
        self.step += 1
        self.ema_loss = value if self.step == 1 else 0.98 * self.ema_loss + 0.02 * value
        self.losses.append(value)
        return value

    @torch.no_grad()
    def _update_ema(self) -> None:
        # warm-up of the decay: early weights are forgotten fast (the EMA of step 1 is the net)
        decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
        ema, live = list(self.ema_net.parameters()), list(self.net.parameters())
        torch._foreach_lerp_(ema, live, 1 - decay)

    def run(
        self,
        callback: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        every: int = 50,
    ) -> None:
        """Step until ``config.steps`` or until ``should_stop()`` (polled every step).

        ``callback`` gets a :class:`Progress` every ``every`` steps and at the end. A non-finite
        loss stops the run with ``stopped_reason`` set; the EMA weights of the last good step stay.
        """
        start = time.perf_counter() - self.elapsed
        while self.step < self.config.steps:
            if should_stop is not None and should_stop():
                self.stopped_reason = "stopped"
                break
            value = self.train_step()
            if not math.isfinite(value):
                self.stopped_reason = f"non-finite loss at step {self.step + 1}"
                break
            self.elapsed = time.perf_counter() - start
            if callback is not None and (self.step % every == 0 or self.step == self.config.steps):
                callback(self.progress())
        self.elapsed = time.perf_counter() - start
        if callback is not None and self.step % every != 0 and self.step != self.config.steps:
            callback(self.progress())

    def progress(self) -> Progress:
        last = self.losses[-1] if self.losses else math.nan
        return Progress(self.step, last, self.ema_loss, self.elapsed)

    def field(self, labeler=None) -> LearnedField:
        """The learned field of the EMA weights (a snapshot, on the CPU, safe to use while the
        training goes on)."""
        return LearnedField.from_network(self.snapshot(), self.arch, labeler)

    def snapshot(self) -> FieldMLP:
        """A CPU copy of the EMA network."""
        net = FieldMLP(self.arch)
        net.load_state_dict({k: v.detach().cpu() for k, v in self.ema_net.state_dict().items()})
        return net.requires_grad_(False).eval()

    def manifest(self) -> dict:
        """What was trained, for a checkpoint: the config, steps done, final losses, time."""
        return {
            "config": asdict(self.config),
            "device": str(self.device),
            "steps_done": self.step,
            "final_loss": self.losses[-1] if self.losses else None,
            "final_ema_loss": None if math.isnan(self.ema_loss) else self.ema_loss,
            "wall_seconds": round(self.elapsed, 3),
            "stopped": self.stopped_reason,
        }


def train(config: TrainConfig, data: Dataset | None = None, callback=None, should_stop=None):
    """Train to the end (or a stop); returns the :class:`Trainer` (EMA weights, losses)."""
    trainer = Trainer(config, data)
    trainer.run(callback, should_stop)
    return trainer

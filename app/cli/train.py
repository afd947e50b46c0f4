"""``flowscope train``: a small MLP field trained and written as safetensors."""

from __future__ import annotations

import sys
import time

from app.cli.options import add_points_options, data_of, finite, seed_number

MAX_THREADS = 256


def add_train(sub) -> None:
    """The ``train`` subcommand's arguments (defaults: ``TrainConfig``'s)."""
    from models.datasets import DATASETS
    from models.learned.training import TrainConfig
    from models.schedules import SCHEDULES

    d = TrainConfig()
    p = sub.add_parser("train", help="train a small MLP field and write it as safetensors")
    p.add_argument("--process", choices=("vp", "fm", "trig"), default=d.process)
    p.add_argument("--dataset", choices=tuple(DATASETS), default=None,
                   help=f"a built-in data set (default {d.dataset})")  # fmt: skip
    add_points_options(p)
    p.add_argument(
        "--schedule",
        choices=tuple(SCHEDULES),
        default=d.schedule,
        help="β(t) schedule of VP diffusion (the weights work with this one only)",
    )
    p.add_argument("--beta-min", type=finite, default=d.beta_min)
    p.add_argument("--beta-max", type=finite, default=d.beta_max)
    p.add_argument(
        "--train-size", type=int, default=None, metavar="M",
        help="a fixed training set of M points (default: fresh samples every step)",
    )  # fmt: skip
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--lr", type=finite, default=d.lr, help="peak learning rate (cosine decay)")
    p.add_argument("--ot", action="store_true", help="minibatch optimal-transport pairing")
    p.add_argument("--source", choices=tuple(DATASETS), default=None, metavar="NAME",
                   help="fm: train the flow from this data set at t = 1 instead of N(0, I) "
                   "(independent pairs, or --ot)")  # fmt: skip
    p.add_argument("--conditional", action="store_true",
                   help="a class-conditional network on the data set's labels (for "
                   "classifier-free guidance; user points: their labels)")  # fmt: skip
    p.add_argument("--label-dropout", type=finite, default=d.label_dropout, metavar="P",
                   help="with --conditional: the probability that a training label is replaced "
                   f"by the null token, which trains the unconditional field (default "
                   f"{d.label_dropout:g})")  # fmt: skip
    p.add_argument("--seed", type=seed_number, default=d.seed)
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=d.device)
    p.add_argument(
        "--threads", type=int, default=1,
        help="torch CPU threads (default 1: a small MLP gains little from more, and loses much "
        "when the cores are shared)",
    )  # fmt: skip
    p.add_argument("--out", required=True, metavar="FILE", help="weights file (any name)")


class _Bar:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.last = total, label, 0.0

    def __call__(self, p, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self.last < 0.1:
            return
        self.last = now
        done = int(30 * p.step / self.total)
        sys.stderr.write(
            f"\r{self.label} [{'#' * done}{'.' * (30 - done)}] {p.step}/{self.total} "
            f"loss {p.loss:.4f} ema {p.ema_loss:.4f} {p.elapsed:.1f} s"
        )
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run_train(args) -> int:
    import torch

    from app.output import atomic_output, check_output
    from models.learned.checkpoint import to_bytes
    from models.learned.training import TrainConfig, Trainer

    check_output(args.out)  # before training: a bad path fails in a second, not after the run
    if args.threads is not None:
        if not 1 <= args.threads <= MAX_THREADS:  # torch crashes far past the cores
            raise ValueError(f"--threads must be in 1..{MAX_THREADS}, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.label_dropout != TrainConfig.label_dropout and not args.conditional:
        raise ValueError("--label-dropout needs --conditional")
    name, data = data_of(args)
    config = TrainConfig(
        process=args.process, dataset=name, steps=args.steps, batch=args.batch, lr=args.lr,
        train_size=args.train_size, ot=args.ot, seed=args.seed, device=args.device,
        source=args.source, conditional=args.conditional, label_dropout=args.label_dropout,
        schedule=args.schedule, beta_min=args.beta_min, beta_max=args.beta_max,
    )  # fmt: skip
    trainer = Trainer(config, data)
    if trainer.device.type == "cpu" and args.device != "cpu":
        print("flowscope: notice: no CUDA device, training on the CPU", file=sys.stderr)
    kind = f" conditional ({trainer.arch.n_classes} classes)" if config.conditional else ""
    bar = _Bar(config.steps, f"train {config.process} {name}{kind} ({trainer.device.type})")
    try:
        trainer.run(callback=bar)
    except KeyboardInterrupt:
        trainer.stopped_reason = "interrupted"
    if trainer.step == 0:
        raise ValueError("training stopped before its first step; nothing written")
    bar(trainer.progress(), final=True)
    manifest = {**trainer.manifest(), "dataset": name}
    if args.points:
        manifest["points_file"] = args.points
    with atomic_output(args.out) as tmp:
        tmp.write_bytes(to_bytes(trainer.snapshot(), trainer.arch, manifest))
    stopped = f" (stopped: {trainer.stopped_reason})" if trainer.stopped_reason else ""
    print(f"wrote {args.out}: {trainer.step} steps in {trainer.elapsed:.1f} s{stopped}")
    return 0

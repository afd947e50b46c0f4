"""Training speed of ``flowscope train``'s defaults, and the pretrained models' table.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_train.py [--process fm] [--dataset moons]
        [--every 500] [--threads 1] [--device cpu]

Trains with the default ``TrainConfig`` (models/learned/training.py; what ``flowscope train
--process
fm --dataset moons --out w`` runs) and prints the sliced W2 of the EMA field against the noise
floor every ``--every`` steps (``sw2_ratio`` of models/evaluation: 10k reverse-ODE samples, Heun,
T = 100, 5 draws each against 4 fresh data samples, floor over 20 pairs; the clock stops while
it measures), then the table of assets/weights/manifest.json.
Timings on a shared 2-core machine are noisy: re-run on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from models.evaluation.quality import noise_floor, sw2_ratio
from models.learned.checkpoint import WEIGHTS_DIR
from models.learned.training import TrainConfig, Trainer


def curve(process: str, dataset: str, every: int, device: str) -> None:
    config = TrainConfig(process=process, dataset=dataset, device=device)
    trainer = Trainer(config)
    floor = noise_floor(trainer.data, 10_000)
    print(
        f"{process} {dataset}: {config.steps} steps, batch {config.batch}, lr {config.lr}, "
        f"device {trainer.device}, {torch.get_num_threads()} thread(s); floor {floor:.4f}"
    )
    print(f"{'step':>6} {'seconds':>8} {'ema loss':>9} {'SW2/floor':>9}")
    elapsed, first = 0.0, None
    while trainer.step < config.steps:
        start = time.perf_counter()
        target = min(config.steps, trainer.step + every)
        while trainer.step < target:
            trainer.train_step()
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - start
        sw2, floor = sw2_ratio(trainer.field(), trainer.path, trainer.data)
        ratio = sw2 / floor
        if first is None and ratio <= 1.5:
            first = elapsed
        print(
            f"{trainer.step:>6} {elapsed:>8.1f} {trainer.ema_loss:>9.4f} {ratio:>9.3f}", flush=True
        )
    print(f"first at or below 1.5x the floor: {'never' if first is None else f'{first:.1f} s'}")


def table() -> None:
    path = os.path.join(WEIGHTS_DIR, "manifest.json")
    if not os.path.exists(path):
        print("no assets/weights/manifest.json: run benchmarks/train_pretrained.py")
        return
    with open(path) as f:
        manifest = json.load(f)
    print(f"\n{'model':<20} {'SW2/floor':>9} {'bytes':>8} {'train s':>8} {'steps':>6}")
    for key, e in manifest.items():
        print(
            f"{key:<20} {e['sw2_ratio']:>9.3f} {e['bytes']:>8} {e['wall_seconds']:>8.1f} "
            f"{e['steps']:>6}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--process", default="fm", choices=["fm", "vp"])
    parser.add_argument("--dataset", default="moons")
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    curve(args.process, args.dataset, args.every, args.device)
    table()


if __name__ == "__main__":
    main()

"""Throughput of the reverse sampler with the exact field, against the bare field cost.

Prints a table: particle-steps per second of the Euler ODE sampler (N = 2k and 10k particles,
M = 2k reference points, T = 100 steps) next to the time of the same field evaluations
replayed alone,
the sampler's overhead above the field, and the time of one 100-frame density stack.

Then, per data set, the cost of the app's run (N = 2000, T = 100, Euler ODE, flow matching)
with the data set's own mixture (M components, docs/MATH.md §5), in the compiled kernels of
``models/accel/mixture_kernel.py`` (the CPU's path) and in torch (the path of float64, autograd and
the GPU), with the largest difference of their trajectories, and the exact density stack on
the app's 96 x 96 grid. Run it on a worker thread, as the app computes: glibc's allocator on
the main thread made torch's path 2-3x slower here at times (it returns large blocks to the
system and faults them in again).

    python benchmarks/bench_core.py [--device cpu|cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import torch

from models.datasets import DATASETS, Moons, Reference, make_dataset
from models.density import Grid, histogram_density, mixture_density
from models.fields import ExactField
from models.paths import LinearFMPath
from models.samplers import sample_euler, sample_heun, time_grid


def timed(fn, repeats: int, device: str) -> float:
    """Median wall time of fn() in seconds (one warm-up call first)."""
    fn()
    out = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--reference", type=int, default=2000)
    args = parser.parse_args()
    dev, steps = args.device, args.steps
    path = LinearFMPath()
    points, labels = Moons().sample(args.reference, torch.Generator().manual_seed(0), torch.float64)
    ref = Reference(points, labels, 0.08)
    field = ExactField(path, ref, device=dev)
    times = time_grid(1.0, 0.0, steps)
    print(
        f"device {dev}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"M = {args.reference} reference points, T = {steps}"
    )
    print(
        f"{'sampler':8} {'N':>6} {'sampler ms':>11} {'field ms':>9} {'overhead':>9} "
        f"{'Mpart-steps/s':>14}"
    )
    for n in (2000, 10_000):
        gen = torch.Generator(device=dev).manual_seed(0)
        x1 = path.prior(n, 1.0, gen, device=dev)
        for name, sampler in (("euler", sample_euler), ("heun", sample_heun)):
            calls = []  # the exact (x, t) the sampler asks for, replayed alone for the bare cost
            sampler(
                lambda x, t, want=("velocity",), calls=calls: (
                    calls.append((x.clone(), t)) or field(x, t, want)
                ),
                path,
                x1,
                times,
            )
            bare = timed(lambda calls=calls: [field(x, t) for x, t in calls], args.repeats, dev)
            total = timed(lambda x1=x1, s=sampler: s(field, path, x1, times), args.repeats, dev)
            rate = n * steps / total / 1e6
            print(
                f"{name:8} {n:>6} {1e3 * total:>11.1f} {1e3 * bare:>9.1f} "
                f"{100 * (total / bare - 1):>8.1f}% {rate:>14.2f}"
            )
    grid = Grid()
    traj = sample_euler(field, path, path.prior(2000, 1.0, device=dev), times)
    hist = timed(lambda: histogram_density(traj, grid), args.repeats, dev)
    exact = timed(lambda: mixture_density(field.reference, path, times, grid), args.repeats, dev)
    print(
        f"density stack, {steps + 1} frames of 128x128: particles (N = 2000) {1e3 * hist:.1f} ms, "
        f"exact (M = {args.reference}) {1e3 * exact:.1f} ms"
    )
    per_dataset(args.repeats, dev)


def per_dataset(repeats: int, dev: str, n: int = 2000, steps: int = 100) -> None:
    """The app's run per data set: in the compiled kernels and in torch."""
    path = LinearFMPath()
    times = time_grid(1.0, 0.0, steps)
    x1 = path.prior(n, 1.0, torch.Generator(device=dev).manual_seed(0), device=dev)
    grid = Grid(shape=(96, 96))
    print(f"\nper data set, N = {n}, T = {steps}, Euler ODE (ms, median of {repeats})")
    print(f"{'data set':13} {'M':>5} {'kernel':>7} {'torch':>7} {'max |Δx|':>9} "
          f"{'exact 96²':>10}")  # fmt: skip
    for name in DATASETS:
        ref = make_dataset(name).reference()
        field = ExactField(path, ref, device=dev)
        in_torch = ExactField(path, ref, device=dev)
        in_torch._compiled_applies = lambda *_args: False  # torch's path, as on a GPU
        run = timed(lambda f=field: sample_euler(f, path, x1, times), repeats, dev)
        run_torch = timed(lambda f=in_torch: sample_euler(f, path, x1, times), repeats, dev)
        gap = sample_euler(field, path, x1, times) - sample_euler(in_torch, path, x1, times)
        dens = timed(lambda r=ref: mixture_density(r, path, times, grid), repeats, dev)
        print(f"{name:13} {len(ref.points):>5} {1e3 * run:>7.1f} {1e3 * run_torch:>7.1f} "
              f"{float(gap.abs().max()):>9.1e} {1e3 * dens:>10.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    worker = threading.Thread(target=main)  # see the docstring: not on the main thread
    worker.start()
    worker.join()

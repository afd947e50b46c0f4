"""Divergence guidance (models/divergence.py): what it costs per evaluation, and how far one
Hutchinson probe's g is from the exact one.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_divergence.py [--n 2000] [--repeats 20]

For each field (the exact fields of 8gaussians and moons, the shipped learned 8gaussians-fm
network), all on linear flow matching at t = 0.5 with N particles drawn from the path's marginal
there (x_t = a x₀ + b ε), float32 on one CPU thread: milliseconds per evaluation (median of the
repeats) of the plain field, of the field guided with the exact g = ∇(∇·v) (3 backward passes)
and with Hutchinson's one-probe ĝ (2 backward passes), each also as a multiple of the plain
field; then the relative error mean |ĝ − g| / mean |g| over the particles, one probe per
particle, and mean |g| itself.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from models.datasets import make_dataset
from models.divergence import DivergenceGuidedField, divergence_gradient
from models.fields import ExactField
from models.learned.checkpoint import load, pretrained_path
from models.paths import make_path
from models.schedules import make_schedule

T = 0.5


def per_call_ms(fn, repeats: int) -> float:
    """Median wall time of fn() in ms, after one warm-up call (numba compiles on first use)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def fields():
    path = make_path("fm", make_schedule("linear", 0.1, 20))
    learned, _, _ = load(pretrained_path("8gaussians", "fm"))
    eight, moons = make_dataset("8gaussians"), make_dataset("moons")
    yield "exact 8gaussians", eight, path, ExactField(path, eight.reference())
    yield "exact moons", moons, path, ExactField(path, moons.reference())
    yield "learned 8gaussians", eight, path, learned


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="particles")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"N = {args.n}, t = {T}, float32, 1 thread; ms per evaluation (x plain)")
    print("field                plain    exact g           hutchinson g      "
          "|ĝ−g|/|g|  mean |g|")  # fmt: skip
    for name, data, path, field in fields():
        gen = torch.Generator().manual_seed(0)
        x = path.sample(data.sample(args.n, gen)[0], T, gen)[0]
        exact = DivergenceGuidedField(field, 0.03)
        hutch = DivergenceGuidedField(field, 0.03, True, torch.Generator().manual_seed(1))
        plain_ms, exact_ms, hutch_ms = (
            per_call_ms(lambda f=f, x=x: f(x, T), args.repeats) for f in (field, exact, hutch)
        )
        x64 = x.double()  # the error of the estimate, not of float32 rounding
        g, _ = divergence_gradient(field, x64, T)
        g_hat, _ = divergence_gradient(field, x64, T, True, torch.Generator().manual_seed(2))
        size = g.norm(dim=1).mean().item()
        rel = (g_hat - g).norm(dim=1).mean().item() / size
        print(
            f"{name:19s} {plain_ms:6.2f}  {exact_ms:7.2f} ({exact_ms / plain_ms:5.1f}x)  "
            f"{hutch_ms:7.2f} ({hutch_ms / plain_ms:5.1f}x)  {rel:9.3f}  {size:8.3g}",
            flush=True,
        )


if __name__ == "__main__":
    main()

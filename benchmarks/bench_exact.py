"""Is the exact field exact? Sliced W2 of exact-field runs to fresh data, against the floor.

Prints two tables (docs/MATH.md §7). Each run has 5 x N particles, judged as 5 independent groups
of N: the distance is the mean SW2 of a group to its own fresh sample of N points, the floor the
mean SW2 of 5 fresh pairs of N points (one ratio of single samples varies by ±30 %):
- reverse runs (noise → data) with the exact field, every data set x process (fm, vp linear)
  x ODE (Heun) / SDE (Euler–Maruyama): SW2(final particles, fresh data) / floor, and the same
  for the MMD with a Gaussian kernel of width 0.1 (steadier, and sensitive to local width);
- forward runs: the three kinds (conditional, sde, ode) at t = 0.3, 0.6, 1 against fresh
  samples of p_t (a x_data + b ε): SW2 / floor.
With ``--old-moons``, adds the former construction of moons (1,000 noisy samples smoothed by a
further 0.08) as a negative control: it must fail the same target.

    python benchmarks/bench_exact.py [--particles 4000] [--steps 200] [--old-moons]
        [--datasets NAME ...] [--only {reverse,forward}]
"""

from __future__ import annotations

import argparse
import time

import torch

from models.datasets import DATASETS, Moons, Reference, make_dataset
from models.evaluation.metrics import distances_to_fresh
from models.fields import ExactField
from models.paths import make_path
from models.samplers import (
    conditional_paths,
    forward_sde_exact,
    sample_euler,
    sample_heun,
    time_grid,
)
from models.schedules import make_schedule

PROCESSES = ("fm", "vp")
FORWARD_TIMES = (0.3, 0.6, 1.0)
GROUPS = 5


def path_for(process: str):
    return make_path(process, make_schedule("linear"))


def old_moons_reference(m: int = 1000) -> Reference:
    """The former moons field: m noisy samples (fixed seed) smoothed by a further 0.08."""
    points, labels = Moons().sample(m, torch.Generator().manual_seed(10_000), torch.float64)
    return Reference(points, labels, 0.08)


def reverse_ratio(data, path, kind: str, n: int, steps: int, seed: int = 0, reference=None):
    """{"sw2", "mmd"} / floor of a reverse run's last frame (5 x n particles) vs fresh data."""
    field = ExactField(path, reference or data.reference(), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    eta = 1.0 if kind == "sde" else 0.0
    start = path.stochastic_start(eta, steps)
    x1 = path.prior(GROUPS * n, start, g)
    times = time_grid(start, 0.0, steps)
    if kind == "sde":
        traj = sample_euler(field, path, x1, times, 1.0, g)
    else:
        traj = sample_heun(field, path, x1, times)
    return distances_to_fresh(traj[-1], lambda k, gen: data.sample(k, gen)[0], GROUPS, seed)


def forward_ratios(data, path, n: int, steps: int, seed: int = 0) -> dict[str, list[float]]:
    """SW2 / floor of each forward kind at FORWARD_TIMES against fresh samples of p_t."""
    field = ExactField(path, data.reference(), dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    x0 = data.sample(GROUPS * n, g)[0]
    times = time_grid(0.0, 1.0, steps)
    runs = {
        "conditional": conditional_paths(path, x0, times, g),
        "sde": forward_sde_exact(path, x0, times, g),
        "ode": sample_heun(field, path, x0, times),
    }
    out = {}
    for kind, traj in runs.items():
        ratios = []
        for t in FORWARD_TIMES:
            i = round(t * steps)

            def fresh(k, gen, t=t):
                return path.sample(data.sample(k, gen)[0], t, gen)[0]

            ratios.append(distances_to_fresh(traj[i], fresh, GROUPS, seed)["sw2"])
        out[kind] = ratios
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--old-moons", action="store_true", help="add the negative control")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    parser.add_argument("--only", choices=("reverse", "forward"), help="print one table only")
    args = parser.parse_args()
    n, steps = args.particles, args.steps
    print(f"N = {n} x {GROUPS} groups, T = {steps}, threads {torch.get_num_threads()}; SW2 / "
          f"floor (means over the {GROUPS} groups and {GROUPS} fresh pairs)")  # fmt: skip
    print(f"\nreverse, last frame vs fresh data\n{'data set':13} {'M':>5} "
          + " ".join(f"{p + ' ' + k:>10}" for p in PROCESSES for k in ("ode", "sde"))
          + "   (each cell: SW2 / floor, MMD(h = 0.1) / floor)")  # fmt: skip
    start = time.perf_counter()
    rows = [(name, make_dataset(name), None) for name in args.datasets]
    rows = [] if args.only == "forward" else rows
    if args.old_moons and args.only != "forward":
        rows.append(("moons (old)", Moons(), old_moons_reference()))
    worst = 0.0
    for name, data, ref in rows:
        cells = []
        for process in PROCESSES:
            for kind in ("ode", "sde"):
                r = reverse_ratio(data, path_for(process), kind, n, steps, reference=ref)
                worst = max(worst, r["sw2"]) if ref is None else worst
                cells.append(f"{r['sw2']:5.2f}/{r['mmd']:4.2f}")
        m = len((ref or data.reference()).points)
        print(f"{name:13} {m:>5} " + " ".join(cells), flush=True)
    print(f"worst built-in ratio {worst:.2f} (target <= 1.2)")
    print(f"\nforward, frames at t = {FORWARD_TIMES} vs fresh samples of p_t\n"
          f"{'data set':13} {'process':7} {'conditional':>17} {'sde':>17} {'ode':>17}")  # fmt: skip
    worst = 0.0
    for name in [] if args.only == "reverse" else args.datasets:
        for process in PROCESSES:
            ratios = forward_ratios(make_dataset(name), path_for(process), n, steps)
            worst = max(worst, *(max(r) for r in ratios.values()))
            cells = " ".join(" ".join(f"{r:5.2f}" for r in rs) for rs in ratios.values())
            print(f"{name:13} {process:7} {cells}", flush=True)
    print(f"worst forward ratio {worst:.2f} (target <= 1.3); {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

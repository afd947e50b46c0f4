"""Carried log-density (docs/MATH.md §8): error against the closed form; exact vs Hutchinson.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_logdensity.py [--n 500]

Table 1: the probability-flow ODE with the exact field on all six data sets, FM and VP, forward
(from data samples, started from the closed-form log p_0) and reverse (from the prior, log p_1),
Heun with T = 200 and 400 steps and the exact divergence: the largest |log p carried − log p_t|
over particles and frames, the frame time where it peaks, its 99th percentile, and the part of
the error that the trajectory alone explains (log p_t at the Heun particle minus log p_t at the
same particle integrated 4x finer: position error times the score).
Table 2: Hutchinson's estimate (one Rademacher probe per evaluation) against the exact
divergence, with its per-evaluation variance (64 probes at the start points, t = 0.9, 0.5, 0.1,
mean over particles) next to the spread (std over particles) of the error it leaves in log p_0.
Table 3: the field's own density on a 64² grid against the closed form.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import torch

from models.density import Grid
from models.logdensity import divergence, integrate, model_log_density
from models.pde import solver as pde
from models.run.config import RunConfig
from models.run.simulate import build

DATASETS = ("8gaussians", "moons", "circles", "swissroll", "checkerboard", "spirals")


def errors(field, path, x1, times, method, gen):
    traj, logp = integrate(
        field, path, x1, times, field.log_density(x1, float(times[0])), "heun", method, gen
    )
    closed = torch.stack([field.log_density(traj[i], float(t)) for i, t in enumerate(times)])
    err = (logp - closed).abs()
    return err.max().item(), err.flatten().quantile(0.99).item(), (logp - closed)[-1], traj, err


def starts(path, data, direction, n, gen):
    """(start points (n, 2), frame times (T+1,) for T steps) of one direction."""
    if direction == "reverse":
        return path.prior(n, 1.0, gen), (1.0, 0.0)
    return data.sample(n, gen)[0], (0.0, 1.0)


def accuracy_table(n: int) -> None:
    """Exact divergence, Heun: max error over frames and particles; where (t) it peaks; the
    part of it that the trajectory carries: |log p_t(x̃) − log p_t(x)| with x a 4x finer Heun."""
    print("proc dataset      dir       T    max err   (t)    p99       trajectory part   s")
    for proc, ds, direction in itertools.product(("fm", "vp"), DATASETS, ("forward", "reverse")):
        path, data, field = build(RunConfig(process=proc, dataset=ds, n_reference=128))
        for steps in (200, 400):
            gen = torch.Generator().manual_seed(0)
            x, (t0, t1) = starts(path, data, direction, n, gen)
            times = torch.linspace(t0, t1, steps + 1, dtype=torch.float64)
            start = time.perf_counter()
            e_max, e99, _, traj, err = errors(field, path, x, times, "exact", gen)
            elapsed = time.perf_counter() - start
            fine = torch.linspace(t0, t1, 4 * steps + 1, dtype=torch.float64)
            ref = integrate(field, path, x, fine, torch.zeros(len(x)))[0][::4]
            part = max(
                (field.log_density(traj[i], float(t)) - field.log_density(ref[i], float(t)))
                .abs().max().item() for i, t in enumerate(times)
            )  # fmt: skip
            t_worst = float(times[int(err.max(1).values.argmax())])
            print(
                f"{proc:4s} {ds:12s} {direction:8s} {steps:4d}  {e_max:.2e}  ({t_worst:.3f})"
                f"  {e99:.2e}  {part:.2e}          {elapsed:.2f}",
                flush=True,
            )


def hutchinson_table(n: int) -> None:
    print(
        "\nproc dataset     T    exact max  hutch max  p99       hutch var/eval  std(log p_0 err)"
    )
    for proc, ds in (("fm", "8gaussians"), ("fm", "moons"), ("vp", "8gaussians"), ("vp", "moons")):
        path, _, field = build(RunConfig(process=proc, dataset=ds, n_reference=128))
        steps = 200
        gen = torch.Generator().manual_seed(0)
        x1 = path.prior(n, 1.0, gen)
        times = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
        e_max = errors(field, path, x1, times, "exact", gen)[0]
        h_max, h99, h_last, _, _ = errors(field, path, x1, times, "hutchinson", gen)
        var = torch.stack([
            torch.stack([divergence(field, x1, t, "hutchinson", gen)[1] for _ in range(64)])
            .var(0).mean() for t in (0.9, 0.5, 0.1)
        ]).mean()  # fmt: skip
        print(
            f"{proc:4s} {ds:10s} {steps:4d}  {e_max:.2e}  {h_max:.2e}  {h99:.2e}  "
            f"{var.item():.2e}        {h_last.std().item():.2e}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500, help="particles")
    parser.add_argument("--tables", nargs="*", default=["accuracy", "hutchinson", "model"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    if "accuracy" in args.tables:
        accuracy_table(args.n)
    if "hutchinson" in args.tables:
        hutchinson_table(args.n)
    if "model" in args.tables:
        model_density_table()


def model_density_table() -> None:
    """The field's own density at t on 64² (100 Heun steps per unit time) vs the closed form."""
    grid = Grid((-4.0, 4.0, -4.0, 4.0), (64, 64))
    xs, ys = grid.centres(dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    dx, dy = grid.cell
    print(
        "\nmodel density on 64x64: proc dataset t  max|Δlog p| where p > 1e-3  Σ p dA  "
        "exact mass in box  s"
    )
    for proc, ds in (("fm", "8gaussians"), ("fm", "moons"), ("vp", "8gaussians"), ("vp", "moons")):
        path, _, field = build(RunConfig(process=proc, dataset=ds, n_reference=128))
        for t in (0.1, 0.5):
            start = time.perf_counter()
            logp = model_log_density(field, path, t, grid, steps=100)
            elapsed = time.perf_counter() - start
            closed = field.log_density(pts, t).reshape(grid.shape)
            where = closed > math.log(1e-3)
            co = path.coefficients(torch.tensor(t, dtype=torch.float64))
            a, b = float(co.a), float(co.b)
            c = math.sqrt(a * a * field.sigma**2 + b * b)
            inside = pde.cell_average_mixture(a * field.reference.points.numpy(), c, grid).sum()
            print(
                f"{proc:4s} {ds:10s} {t:.1f}  {float((logp - closed)[where].abs().max()):.2e}"
                f"  {float(logp.exp().sum()) * dx * dy:.4f}  {inside * dx * dy:.4f}"
                f"  {elapsed:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

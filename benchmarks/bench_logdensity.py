"""Carried log-density (issue 9): error against the closed form, exact vs Hutchinson divergence.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_logdensity.py

Reverse probability-flow ODE with the exact field from particles drawn from the prior, started
from the closed-form log p_1, Heun with T steps; prints the largest |log p carried − log p_t|
over particles and frames (and its 99th percentile), for the exact divergence and for
Hutchinson's estimate (one Rademacher probe per evaluation), and the Hutchinson estimator's
per-evaluation variance (64 probes at the start points, t = 0.9, 0.5, 0.1, mean over particles)
next to the spread (std over particles) of the error it leaves in log p_0.
"""

from __future__ import annotations

import math
import time

import torch

from models import pde
from models.density import Grid
from models.logdensity import divergence, integrate, model_log_density
from models.simulate import RunConfig, build


def errors(field, x1, times, method, gen):
    traj, logp = integrate(field, x1, times, field.log_density(x1, 1.0), "heun", method, gen)
    closed = torch.stack([field.log_density(traj[i], float(t)) for i, t in enumerate(times)])
    err = (logp - closed).abs()
    return err.max().item(), err.flatten().quantile(0.99).item(), (logp - closed)[-1]


def main() -> None:
    torch.set_num_threads(1)
    print("proc dataset     T    exact max  p99       hutch max  p99       hutch var/eval  "
          "std(log p_0 err)  s (exact)")
    for proc, ds in (("fm", "8gaussians"), ("fm", "moons"), ("vp", "8gaussians"), ("vp", "moons")):
        path, _, field = build(RunConfig(process=proc, dataset=ds, n_reference=128))
        for steps in (100, 200, 400):
            gen = torch.Generator().manual_seed(0)
            x1 = path.prior(1000, 1.0, gen)
            times = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
            start = time.perf_counter()
            e_max, e99, _ = errors(field, x1, times, "exact", gen)
            elapsed = time.perf_counter() - start
            h_max, h99, h_last = errors(field, x1, times, "hutchinson", gen)
            var = torch.stack([
                torch.stack([divergence(field, x1, t, "hutchinson", gen)[1] for _ in range(64)])
                .var(0).mean() for t in (0.9, 0.5, 0.1)
            ]).mean()  # fmt: skip
            print(f"{proc:4s} {ds:10s} {steps:4d}  {e_max:.2e}  {e99:.2e}  {h_max:.2e}  "
                  f"{h99:.2e}  {var.item():.2e}        {h_last.std().item():.2e}         "
                  f"{elapsed:.2f}", flush=True)

    model_density_table()


def model_density_table() -> None:
    """The field's own density at t on 64² (100 Heun steps per unit time) vs the closed form."""
    grid = Grid((-4.0, 4.0, -4.0, 4.0), (64, 64))
    xs, ys = grid.centres(dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    dx, dy = grid.cell
    print("\nmodel density on 64x64: proc dataset t  max|Δlog p| where p > 1e-3  Σ p dA  "
          "exact mass in box  s")
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
            print(f"{proc:4s} {ds:10s} {t:.1f}  {float((logp - closed)[where].abs().max()):.2e}"
                  f"  {float(logp.exp().sum()) * dx * dy:.4f}  {inside * dx * dy:.4f}"
                  f"  {elapsed:.2f}", flush=True)


if __name__ == "__main__":
    main()

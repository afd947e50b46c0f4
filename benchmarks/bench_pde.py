"""The Eulerian view solved (docs/MATH.md §6): accuracy, mass and speed of the PDE solver.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_pde.py            # full table, 64/128/256
    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_pde.py --res 128  # one resolution

For every data set x process x direction x kind (ODE, SDE η = 1, SDE η = 0.5) it solves on the
run's own frame times (T = 100) with the exact field and prints the largest total variation over
frames against the closed form sampled at cell centres (``mixture_density``, what the app shows)
and against its cell averages, the worst |mass + outflow − start mass|, and the solve time next
to the particle run's time (2,000 particles, ``simulate`` without densities), wall and CPU
seconds. Timings on a shared 2-core machine are noisy (CPU seconds less so): re-run on a quiet
one with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from models.density import Grid, mixture_density
from models.pde import solver as pde
from models.run.config import RunConfig
from models.run.simulate import build, simulate, trajectories


def cell_average_exact(reference, path, times, grid) -> np.ndarray:
    """Cell averages of the closed-form p_t, (F, H, W)."""
    co = path.coefficients(torch.as_tensor(times, dtype=torch.float64))
    pts = reference.points.double().numpy()
    out = []
    for a, b in zip(co.a.tolist(), co.b.tolist(), strict=True):
        out.append(
            pde.cell_average_mixture(a * pts, (a * a * reference.sigma**2 + b * b) ** 0.5, grid)
        )
    return np.stack(out)


def one(config: RunConfig, res: int) -> dict:
    path, data, field = build(config)
    gen = torch.Generator().manual_seed(0)
    small = RunConfig(**{**config.__dict__, "particles": 2})
    _, times, _ = trajectories(small, path, data, field, gen)
    grid = Grid(tuple(config.extent), (res, res))
    start, cpu = time.perf_counter(), time.process_time()
    r = pde.solve_run(field, path, field.reference, times, config.noise_level, grid)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    sampled = mixture_density(field.reference, path, times, grid).numpy()
    tv = pde.total_variation(r.density, sampled, grid)
    tv_avg = pde.total_variation(
        r.density, cell_average_exact(field.reference, path, times, grid), grid
    )
    return {
        "tv": float(tv.max()), "t_worst": float(times[int(tv.argmax())]),
        "tv_avg": float(tv_avg.max()), "cons": float(np.abs(r.mass + r.outflow - r.mass[0]).max()),
        "out": float(r.outflow[-1]), "sub": r.substeps, "time": elapsed, "cpu": cpu,
    }  # fmt: skip


def particle_time(config: RunConfig) -> tuple[float, float]:
    """(wall, CPU) seconds of the particle run alone (no densities)."""
    cfg = RunConfig(**{**config.__dict__, "exact_density": False})
    start, cpu = time.perf_counter(), time.process_time()
    simulate(cfg)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--res", type=int, nargs="*", default=[64, 128, 256])
    parser.add_argument("--datasets", nargs="*", default=["8gaussians", "moons"])
    parser.add_argument("--processes", nargs="*", default=["fm", "vp"])
    parser.add_argument("--directions", nargs="*", default=["forward", "reverse"])
    parser.add_argument(
        "--etas",
        nargs="*",
        type=float,
        default=[0.0, 1.0, 0.5],
        help="0 for the ODE, else the SDE's η",
    )
    parser.add_argument(
        "--n-reference",
        type=int,
        default=1000,
        help="mixture components of sample-based data sets (moons)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the app: cores - 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    header = "dataset     proc dir      kind  eta  res  TVmax  (t)    TVcell  |m+o-m0|  outflow"
    print(header + "  substeps  solve s (cpu)  particles s (cpu)")
    cases = [("ode", None) if eta == 0 else ("sde", eta) for eta in args.etas]
    for ds, proc, direction, (kind, eta), res in itertools.product(
        args.datasets, args.processes, args.directions, cases, args.res
    ):
        cfg = RunConfig(
            process=proc,
            dataset=ds,
            direction=direction,
            kind=kind,
            eta=eta,
            n_reference=args.n_reference,
        )
        r = one(cfg, res)
        part = particle_time(cfg) if res == 128 else (float("nan"), float("nan"))
        print(
            f"{ds:11s} {proc:4s} {direction:8s} {kind:4s} {cfg.noise_level:3.1f} {res:4d}  "
            f"{r['tv']:.4f} ({r['t_worst']:.2f}) {r['tv_avg']:.4f}  {r['cons']:.1e}   "
            f"{r['out']:.1e}  {r['sub']:6d}  {r['time']:6.2f} ({r['cpu']:5.2f})  "
            f"{part[0]:6.2f} ({part[1]:5.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Solver error against NFE on 8 gaussians and moons, VP-linear and fm (docs/MATH.md §4).

For each data set and process: 400 prior points (float64) run from t = 1 to t_min = 1e-3 by
every ODE solver on every time grid; the endpoint error is the mean distance to the reference
(Dormand–Prince 5(4) at rtol 1e-8, models/evaluation/solver_error.py). Prints the error at
NFE 10, 20, 50, 100 (* marks the nearest NFE a solver's steps allow), the NFE needed to reach
1e-2 (log-log interpolation between the measured NFEs; "> max" if never), and the fitted
order. ``--check-reference`` also solves the first configuration with scipy's DOP853 at
rtol 1e-10 and prints its distance to the reference.

    python benchmarks/bench_solvers.py [--particles 400] [--grids uniform logsnr karras quadratic]
        [--datasets 8gaussians moons] [--processes vp fm] [--check-reference]
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import torch

from models.datasets import make_dataset
from models.evaluation.solver_error import (
    error_vs_nfe,
    exact_field64,
    nfe_targets,
    reference,
)
from models.paths import make_path
from models.schedules import make_schedule
from models.solvers import GRIDS, SOLVERS

SHOWN = (10, 20, 50, 100)
TARGET = 1e-2


def nfe_to_reach(rows, target: float) -> str:
    """The NFE at which the error first drops to ``target``, interpolated in log-log."""
    pts = sorted((r["nfe"], r["endpoint_error"]) for r in rows)
    for (n0, e0), (n1, e1) in itertools.pairwise(pts):
        if e0 <= target:
            return f"<= {n0:g}"
        if e1 <= target:
            w = math.log(e0 / target) / math.log(e0 / e1)
            return f"{math.exp(math.log(n0) + w * math.log(n1 / n0)):.0f}"
    return f"> {pts[-1][0]:g}" if pts else "-"


def at_nfe(rows, nfe: int) -> str:
    """The error at this NFE, or at the nearest measured one marked * (rk4 costs 4 a step)."""
    row = min(rows, key=lambda r: abs(math.log(r["nfe"] / nfe)))
    mark = " " if row["nfe"] == nfe else "*"
    return f"{row['endpoint_error']:>9.2e}{mark}"


def check_reference(path, data, particles: int) -> None:
    """The reference against scipy's DOP853 (rtol 1e-10) on the same start points."""
    from scipy.integrate import solve_ivp

    field = exact_field64(path, data)
    x1 = path.prior(particles, 1.0, torch.Generator().manual_seed(0), dtype=torch.float64)
    times = torch.tensor([1.0, 1e-3], dtype=torch.float64)
    ref, stats = reference(field, path, x1, times)

    def rhs(t, y):
        x = torch.from_numpy(y.reshape(-1, 2))
        return field(x, float(t), ("velocity",))["velocity"].numpy().reshape(-1)

    sol = solve_ivp(rhs, (1.0, 1e-3), x1.numpy().reshape(-1), "DOP853", rtol=1e-10, atol=1e-12)
    end = torch.from_numpy(sol.y[:, -1].reshape(-1, 2))
    gap = float((ref[-1] - end).norm(dim=1).mean())
    print(f"reference (dopri5 rtol 1e-8, {stats['nfe']} NFE) vs DOP853 rtol 1e-10: {gap:.2e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--particles", type=int, default=400)
    p.add_argument("--grids", nargs="+", choices=GRIDS, default=list(GRIDS))
    p.add_argument("--datasets", nargs="+", default=["8gaussians", "moons"])
    p.add_argument("--processes", nargs="+", choices=("vp", "fm"), default=["vp", "fm"])
    p.add_argument("--check-reference", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(1)
    nfes = sorted(set(SHOWN) | set(nfe_targets(4, 400, 10)))
    solvers = [name for name in SOLVERS if name != "dopri5"]
    for name in args.datasets:
        data = make_dataset(name)
        for process in args.processes:
            path = make_path(process, make_schedule("linear"))
            if args.check_reference:
                check_reference(path, data, args.particles)
                args.check_reference = False
            start = time.perf_counter()
            table = error_vs_nfe(data, path, solvers=solvers, grids=args.grids, nfes=nfes,
                                 particles=args.particles)  # fmt: skip
            title = f"{name}, {'VP-linear' if process == 'vp' else 'fm'}"
            print(f"\n{title}: endpoint error at NFE (float64, N = {args.particles}, "
                  f"t 1 -> 1e-3; {time.perf_counter() - start:.0f} s)")  # fmt: skip
            print(f"{'solver':<9}{'grid':<10}" + "".join(f"{n:>9} " for n in SHOWN)
                  + f"{'NFE to 1e-2':>13}{'order':>7}")  # fmt: skip
            for (solver, grid), order in table.orders.items():
                rows = [r for r in table.rows if (r["solver"], r["grid"]) == (solver, grid)]
                cells = "".join(at_nfe(rows, n) for n in SHOWN)
                print(f"{solver:<9}{grid:<10}{cells}{nfe_to_reach(rows, TARGET):>13}"
                      f"{order:>7.2f}")  # fmt: skip
            adaptive = error_vs_nfe(data, path, solvers=["dopri5"], particles=args.particles,
                                    sw2=False).rows  # fmt: skip
            print("dopri5   adaptive  " + ", ".join(
                f"NFE {r['nfe']}: {r['endpoint_error']:.1e}" for r in adaptive))  # fmt: skip


if __name__ == "__main__":
    main()

"""``flowscope solvers``: every ODE solver's endpoint error against its NFE, as a CSV table.

The numbers come from ``models.evaluation.solver_error.error_vs_nfe`` (docs/MATH.md §4); this
module only reads the options, bounds the work and writes the table.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys

from app.cli.options import finite, seed_number

MAX_NFE, MAX_NFE_VALUES = 1000, 12
MAX_PARTICLES = 4000
# particles × the sum of the NFE values, per solver and grid: the work of one column of runs
# (the default, 400 × 252, is 1e5; the cap is a few minutes of the slowest data set)
MAX_WORK = 2_000_000


def _names(kind: str, known):
    """A parser for a comma-separated list of names from ``known`` (at least one)."""

    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
        if not names:
            raise argparse.ArgumentTypeError(f"give at least one {kind}")
        unknown = [n for n in names if n not in known]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {unknown[0]!r}; choose from {', '.join(known)}"
            )
        return names

    return parse


def nfe_list(text: str) -> tuple[int, ...]:
    """Comma-separated whole NFEs in 1..MAX_NFE, at most MAX_NFE_VALUES of them."""
    try:
        values = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one NFE")
    if len(values) > MAX_NFE_VALUES:
        raise argparse.ArgumentTypeError(f"at most {MAX_NFE_VALUES} values, got {len(values)}")
    if not 1 <= values[0] <= values[-1] <= MAX_NFE:
        raise argparse.ArgumentTypeError(f"each NFE must be in 1..{MAX_NFE}, got {text}")
    return tuple(values)


def particle_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_PARTICLES:
        raise argparse.ArgumentTypeError(f"must be in 1..{MAX_PARTICLES}, got {text}")
    return value


def add_solvers(sub) -> None:
    from models.datasets import DATASETS
    from models.paths import PATHS
    from models.schedules import SCHEDULES
    from models.solvers import GRIDS, solvers_for

    ode = solvers_for(0.0)
    p = sub.add_parser("solvers", help="every ODE solver's endpoint error against its NFE (CSV)")
    p.add_argument("--process", choices=PATHS, default="vp")
    p.add_argument("--dataset", choices=tuple(DATASETS), default="8gaussians")
    p.add_argument("--schedule", choices=tuple(SCHEDULES), default="linear")
    p.add_argument("--beta-min", type=finite, default=0.1)
    p.add_argument("--beta-max", type=finite, default=20.0)
    p.add_argument("--time-grid", type=_names("time grid", GRIDS), default=("uniform", "logsnr"),
                   metavar="G,...", help=f"time grids, of {', '.join(GRIDS)} "
                   "(default uniform,logsnr)")  # fmt: skip
    p.add_argument("--solvers", type=_names("solver", ode), default=ode, metavar="S,...",
                   help=f"ODE solvers, of {', '.join(ode)} (default all)")  # fmt: skip
    p.add_argument("--nfe", type=nfe_list, default=(4, 8, 16, 32, 64, 128), metavar="N,...",
                   help=f"target evaluations per run (1..{MAX_NFE}, at most {MAX_NFE_VALUES}; "
                   "default 4,8,16,32,64,128)")  # fmt: skip
    p.add_argument("--particles", type=particle_count, default=400,
                   help=f"start points (1..{MAX_PARTICLES}, default 400)")  # fmt: skip
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--field", choices=("exact", "learned"), default="exact",
                   help="exact (closed form) or learned (see --weights)")  # fmt: skip
    p.add_argument("--weights", metavar="FILE",
                   help="safetensors weights for --field learned (default: the shipped model "
                   "of the data set and process)")  # fmt: skip
    p.add_argument("--out", required=True, metavar="FILE", help="the CSV file to write")


def _field(args, path):
    """None (the exact field) or the learned field the options name (CheckpointError, a
    ValueError, for weights that are missing, bad or trained for another process)."""
    from models.learned.checkpoint import check_matches, load, pretrained_path

    if args.field == "exact":
        if args.weights:
            raise ValueError("--weights needs --field learned")
        return None
    weights = args.weights or pretrained_path(args.dataset, args.process)
    learned, arch, _ = load(weights)
    check_matches(arch, args.process, args.schedule, args.beta_min, args.beta_max, weights)
    return learned


def _print_table(table, out) -> None:
    print(f"{'solver':<9}{'grid':<10}{'steps':>6}{'nfe':>6}{'endpoint_error':>16}"
          f"{'sw2_ratio':>11}{'seconds':>9}", file=out)  # fmt: skip
    for r in table.rows:
        print(f"{r['solver']:<9}{r['grid']:<10}{r['steps']:>6}{r['nfe']:>6}"
              f"{r['endpoint_error']:>16.3e}{r['sw2_ratio']:>11.3f}{r['seconds']:>9.3f}",
              file=out)  # fmt: skip
    orders = ", ".join(f"{s}/{g} {p:.2f}" for (s, g), p in table.orders.items()
                       if math.isfinite(p))  # fmt: skip
    print(f"fitted order (error ∝ NFE^-p): {orders or 'too few points'}", file=out)


def run_solvers(args) -> int:
    import torch

    from app.output import atomic_output, check_output
    from models.datasets import make_dataset
    from models.evaluation.solver_error import COLUMNS, error_vs_nfe
    from models.paths import make_path
    from models.run.config import RunConfig
    from models.schedules import make_schedule
    from models.solvers import default_t_min, make_times

    check_output(args.out)  # before computing: a bad path fails in a second, not after the run
    if args.particles * sum(args.nfe) > MAX_WORK:
        raise ValueError(
            f"--particles {args.particles} x the sum of --nfe ({sum(args.nfe)}) is more than "
            f"{MAX_WORK:,} evaluations of a point per solver and grid; ask for less"
        )
    # the schedule's bounds are a run's (RunConfig), checked before any work; and the time
    # grids must be buildable on this path (a refused grid names itself before the reference)
    RunConfig(process=args.process, dataset=args.dataset, schedule=args.schedule,
              beta_min=args.beta_min, beta_max=args.beta_max).validate()  # fmt: skip
    path = make_path(args.process, make_schedule(args.schedule, args.beta_min, args.beta_max))
    for grid in args.time_grid:
        make_times(path, grid, max(args.nfe), 1.0, default_t_min(path))
    torch.set_num_threads(1)  # small batches: a thread team only waits (see tests)
    data = make_dataset(args.dataset)
    table = error_vs_nfe(data, path, _field(args, path), solvers=args.solvers,
                         grids=args.time_grid, nfes=args.nfe, particles=args.particles,
                         seed=args.seed)  # fmt: skip
    with atomic_output(args.out) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(table.rows)
    _print_table(table, sys.stdout)
    print(f"wrote {args.out}: {len(table.rows)} rows")
    return 0

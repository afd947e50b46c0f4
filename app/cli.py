"""The ``flowscope`` command line: ``flowscope sample`` (headless runs) and ``flowscope serve``."""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"flowscope: error: {message}\n")


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _add_sample(sub) -> None:
    from models.datasets import DATASETS
    from models.paths import PATHS
    from models.samplers import SAMPLERS
    from models.schedules import SCHEDULES
    from models.simulate import DIRECTIONS, KINDS, MAX_PARTICLES

    p = sub.add_parser("sample", help="run a process headless and write trajectories to .npz")
    p.add_argument(
        "--process", choices=PATHS, default="fm", help="vp (diffusion) or fm (flow matching)"
    )
    p.add_argument("--dataset", choices=tuple(DATASETS), default="8gaussians")
    p.add_argument("--points", metavar="FILE", help="your own points (.npy, .npz, .csv): (M, 2)")
    p.add_argument(
        "--bandwidth-points",
        type=_finite,
        default=0.08,
        metavar="F",
        help="kernel width σ_d of the mixture made from --points",
    )
    p.add_argument("--direction", choices=DIRECTIONS, default="reverse")
    p.add_argument("--kind", choices=KINDS, default="ode")
    p.add_argument(
        "--eta", type=_finite, default=None, help="noise level in [0, 1] (default: ode 0, sde 1)"
    )
    p.add_argument("--solver", choices=tuple(SAMPLERS), default="euler")
    p.add_argument("--steps", type=int, default=100, help="number of steps T (1..1000)")
    p.add_argument(
        "--particles", type=int, default=2000, help=f"number of particles (at most {MAX_PARTICLES})"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", choices=tuple(SCHEDULES), default="linear")
    p.add_argument("--beta-min", type=_finite, default=0.1)
    p.add_argument("--beta-max", type=_finite, default=20.0)
    p.add_argument("--resolution", type=int, default=128, help="density grid is R x R")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    p.add_argument("--out", required=True, metavar="FILE.npz")
    from app.train_cli import add_field_options

    add_field_options(p)


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve the web app")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="localhost")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument(
        "--threads", type=int, default=None,
        help="torch CPU threads (default: all cores but one, left to the browser)",
    )  # fmt: skip


def run_sample(args) -> int:
    import torch

    from models.datasets import Points, load_points
    from models.simulate import RunConfig, simulate

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dataset = None
    name = args.dataset
    if args.points:
        dataset = Points(load_points(args.points), bandwidth=args.bandwidth_points)
        name = "points"
    config = RunConfig(
        process=args.process,
        dataset=name,
        direction=args.direction,
        kind=args.kind,
        eta=args.eta,
        solver=args.solver,
        steps=args.steps,
        particles=args.particles,
        seed=args.seed,
        schedule=args.schedule,
        beta_min=args.beta_min,
        beta_max=args.beta_max,
        resolution=args.resolution,
        device=device,
    )
    from app.train_cli import add_meta, field_maker

    make_field, field_info = field_maker(args)
    result = simulate(config, dataset, make_field=make_field)
    arrays = {
        "trajectories": result.trajectories,
        "times": result.times,
        "labels": result.labels,
        "density": result.density,
        "extent": np.asarray(result.extent, dtype=np.float64),
        "meta": np.asarray(add_meta(result.meta, field_info)),
    }
    if result.exact_density is not None:
        arrays["exact_density"] = result.exact_density
    for warning in result.warnings:
        print(f"flowscope: warning: {warning}", file=sys.stderr)
    np.savez_compressed(args.out, **arrays)
    t_steps, n = result.trajectories.shape[0] - 1, result.trajectories.shape[1]
    print(
        f"wrote {args.out}: {n} particles x {t_steps} steps, "
        f"t {result.times[0]:.3f} -> {result.times[-1]:.3f}"
    )
    return 0


def run_serve(args) -> int:
    from app.server import serve

    serve(port=args.port, address=args.address, show=args.show, threads=args.threads)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="flowscope", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_sample(sub)
    _add_serve(sub)
    from app.train_cli import add_train, run_train

    add_train(sub)
    args = parser.parse_args(argv)
    try:
        return {"sample": run_sample, "serve": run_serve, "train": run_train}[args.command](args)
    except (ValueError, OSError) as exc:
        print(f"flowscope: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 1 for a refused non-finite run (NonFiniteRun)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

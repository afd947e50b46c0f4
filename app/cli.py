"""The ``flowscope`` command line: ``sample`` (headless runs), ``export`` and ``serve``."""

from __future__ import annotations

import argparse
import math
import sys


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


DEFAULT_DATASET = "8gaussians"
SEED_MAX = 2**63 - 1  # torch's and numpy's generators both take 0..2**63-1


def _seed(text: str) -> int:
    """A seed: a whole number in 0..SEED_MAX (argparse names the option in the message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be in 0..{SEED_MAX}, got {text}")
    return value


def _bandwidth(text: str) -> float:
    from models.datasets import BANDWIDTH_RANGE

    value, (low, high) = _finite(text), BANDWIDTH_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be in {low:g}..{high:g}, got {text}")
    return value


def add_points_options(p) -> None:
    """``--points`` and ``--bandwidth-points`` (sample, export, train)."""
    p.add_argument("--points", metavar="FILE",
                   help="your own points (.npy, .npz, .csv): (M, 2); not with --dataset")
    p.add_argument("--bandwidth-points", type=_bandwidth, default=0.08, metavar="F",
                   help="kernel width σ_d of the mixture of --points (0.001..10)")  # fmt: skip


def data_of(args):
    """(name, Points or None) of ``--dataset`` / ``--points``: one data set, never both."""
    from models.datasets import Points
    from models.pointfiles import load_points

    if args.points and args.dataset is not None:
        raise ValueError("--points and --dataset each name a data set; give one of them")
    if args.points:
        return "points", Points(load_points(args.points), bandwidth=args.bandwidth_points)
    return args.dataset or DEFAULT_DATASET, None


def _add_run_options(p) -> None:
    """The options that define a run, shared by ``sample`` and ``export``."""
    from models.datasets import DATASETS
    from models.paths import PATHS
    from models.samplers import SAMPLERS
    from models.schedules import SCHEDULES
    from models.simulate import DIRECTIONS, KINDS, MAX_PARTICLES

    p.add_argument(
        "--process", choices=PATHS, default="fm",
        help="vp (diffusion), fm (linear flow matching) or trig (the trigonometric path "
        "a = cos(πt/2), b = sin(πt/2), exact field only; not yet in the app)",
    )
    p.add_argument("--dataset", choices=tuple(DATASETS), default=None,
                   help=f"a built-in data set (default {DEFAULT_DATASET})")  # fmt: skip
    add_points_options(p)
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
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--schedule", choices=tuple(SCHEDULES), default="linear")
    p.add_argument("--beta-min", type=_finite, default=0.1)
    p.add_argument("--beta-max", type=_finite, default=20.0)
    p.add_argument("--resolution", type=int, default=128, help="density grid is R x R")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="run a process headless and write trajectories to .npz")
    _add_run_options(p)
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the .npz file to write (exactly this path; no suffix is added)")
    p.add_argument(
        "--pde", action="store_true",
        help="also solve the Fokker-Planck equation on the grid: pde_density, _mass, _outflow",
    )  # fmt: skip
    p.add_argument(
        "--log-density", action="store_true",
        help="carry log p_t along each particle (ODE runs): log_density (T+1, N)",
    )  # fmt: skip
    from app.train_cli import add_field_options

    add_field_options(p)


def _add_export(sub) -> None:
    from app.export import DENSITY_SOURCES, FORMATS, OVERLAYS, ExportSettings
    from app.train_cli import add_field_options

    d = ExportSettings()
    p = sub.add_parser(
        "export", help="run a process and write it as mp4, gif, a standalone html page, npz or csv"
    )
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: the suffix of --out, which it must match")  # fmt: skip
    _add_run_options(p)
    add_field_options(p)
    p.add_argument("--size", type=int, default=d.size, metavar="PX",
                   help="height in pixels of each view (64..2048)")
    p.add_argument("--fps", type=int, default=d.fps, help="frames per second (1..60)")
    p.add_argument("--trail", type=int, default=d.trail, metavar="K",
                   help="length of the fading trails, in frames (0..30)")
    p.add_argument("--density-source", choices=DENSITY_SOURCES, default=d.density_source,
                   help="heatmap: histogram of the particles, or the exact density")
    # the display settings of the page, named as in its URL
    p.add_argument("--contours", action="store_true",
                   help="contour lines of the exact density on the density view")
    p.add_argument("--overlay", choices=OVERLAYS, default=d.overlay,
                   help="field drawn as arrows on both views; difference is learned − exact "
                   "velocity (needs --field learned)")
    p.add_argument("--shade", action="store_true",
                   help="colour particles by the log-density each carries (ODE runs), in the "
                   "heatmap's colours")
    p.add_argument("--out", required=True, metavar="FILE")  # fmt: skip


def _add_serve(sub) -> None:
    p = sub.add_parser("serve", help="serve the web app")
    p.add_argument("--port", type=int, default=5006)
    p.add_argument("--address", default="localhost")
    p.add_argument("--show", action="store_true", help="open a browser tab")
    p.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                   help="another host name the page is reached under (repeatable)")
    p.add_argument(
        "--threads", type=int, default=None,
        help="torch CPU threads (default: all cores but one, left to the browser)",
    )  # fmt: skip


def _run_config(args):
    """(RunConfig, user data set or None) from the run options."""
    import torch

    from models.simulate import RunConfig

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name, dataset = data_of(args)
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
        # sample's --pde, or export's heatmap from the PDE
        pde=getattr(args, "pde", False) or getattr(args, "density_source", "") == "pde",
        log_density=getattr(args, "log_density", False),
    )
    return config, dataset


def run_sample(args) -> int:
    from app.export.data import write_npz
    from app.output import atomic_output, check_output
    from models.simulate import simulate

    check_output(args.out)  # before computing: a bad path fails in a second, not after the run
    config, dataset = _run_config(args)
    config.validate()
    from app.train_cli import add_meta, field_maker

    make_field, field_info = field_maker(args)
    result = simulate(config, dataset, make_field=make_field)
    result.meta = add_meta(result.meta, field_info)
    with atomic_output(args.out) as tmp:
        write_npz(result, tmp)
    written = args.out
    for warning in result.warnings:
        print(f"flowscope: warning: {warning}", file=sys.stderr)
    t_steps, n = result.trajectories.shape[0] - 1, result.trajectories.shape[1]
    print(
        f"wrote {written}: {n} particles x {t_steps} steps, "
        f"t {result.times[0]:.3f} -> {result.times[-1]:.3f}"
    )
    if config.solver == "heun" and config.solver_used != "heun":
        print(f"flowscope: note: this run used {config.solver_used}, not --solver "
              f"{config.solver} (Heun is for the ODE, eta = 0)", file=sys.stderr)  # fmt: skip
    return 0


def run_export(args) -> int:
    """Check the destination and settings, then run, then write (atomically)."""
    from dataclasses import replace

    from app.export import ExportSettings, export, format_of
    from app.output import check_output
    from app.train_cli import add_meta, field_maker
    from models.simulate import simulate

    check_output(args.out)  # before computing: a bad path fails in a second, not after the run
    fmt = format_of(args.out, args.format)
    settings = ExportSettings(size=args.size, fps=args.fps, trail=args.trail,
                              density_source=args.density_source, contours=args.contours,
                              overlay=args.overlay, shade=args.shade)  # fmt: skip
    settings.validate()
    config, dataset = _run_config(args)
    config = replace(config, log_density=args.shade)  # the shading is the carried density
    config.validate()
    make_field, field_info = field_maker(args)
    if args.overlay == "difference" and make_field is None:
        raise ValueError("--overlay difference (learned − exact velocity) needs --field learned")
    result = simulate(config, dataset, make_field=make_field)
    result.meta = add_meta(result.meta, field_info)
    arrows = None
    if args.overlay != "none":
        from app.export.fields import overlay_fields

        arrows = overlay_fields(result, dataset, make_field)
    path = export(result, fmt, args.out, settings, arrows=arrows)
    print(f"wrote {path}: {fmt}, {len(result.times)} frames")
    return 0


def run_serve(args) -> int:
    from app.server import serve

    serve(port=args.port, address=args.address, show=args.show, threads=args.threads,
          origins=args.allow_websocket_origin)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="flowscope", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_sample(sub)
    _add_serve(sub)
    _add_export(sub)
    from app.train_cli import add_train, run_train

    add_train(sub)
    args = parser.parse_args(argv)
    try:
        runs = {"sample": run_sample, "serve": run_serve, "export": run_export,
                "train": run_train}  # fmt: skip
        return runs[args.command](args)
    except (ValueError, OSError) as exc:
        print(f"flowscope: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 1 for a refused non-finite run (NonFiniteRun)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

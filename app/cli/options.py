"""The options shared by several commands, their types (one-line errors naming the option), and
the run and field they describe."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and exit code 2 (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"flowscope: error: {message}\n")


def finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


DEFAULT_DATASET = "8gaussians"


SEED_MAX = 2**63 - 1  # torch's and numpy's generators both take 0..2**63-1


def seed_number(text: str) -> int:
    """A seed: a whole number in 0..SEED_MAX (argparse names the option in the message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be in 0..{SEED_MAX}, got {text}")
    return value


def bandwidth(text: str) -> float:
    from models.datasets import BANDWIDTH_RANGE

    value, (low, high) = finite(text), BANDWIDTH_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be in {low:g}..{high:g}, got {text}")
    return value


def add_points_options(p) -> None:
    """``--points`` and ``--bandwidth-points`` (sample, export, train)."""
    p.add_argument(
        "--points",
        metavar="FILE",
        help="your own points (.npy, .npz, .csv): (M, 2); not with --dataset",
    )
    p.add_argument("--bandwidth-points", type=bandwidth, default=0.08, metavar="F",
                   help="kernel width σ_d of the mixture of --points (0.001..10)")  # fmt: skip


def data_of(args):
    """(name, Points or None) of ``--dataset`` / ``--points``: one data set, never both."""
    from models.datasets import Points
    from models.pointfiles import load_labelled_points

    if args.points and args.dataset is not None:
        raise ValueError("--points and --dataset each name a data set; give one of them")
    if args.points:
        points, labels = load_labelled_points(args.points)  # labels: the classes, if given
        return "points", Points(points, labels, bandwidth=args.bandwidth_points)
    return args.dataset or DEFAULT_DATASET, None


def add_run_options(p) -> None:
    """The options that define a run, shared by ``sample`` and ``export``."""
    from models.datasets import DATASETS
    from models.paths import PATHS
    from models.run.config import DIRECTIONS, KINDS, MAX_PARTICLES
    from models.schedules import SCHEDULES
    from models.solvers import GRIDS, SOLVERS

    p.add_argument(
        "--process",
        choices=PATHS,
        default="fm",
        help="fm (linear flow matching), vp (VP diffusion), subvp (sub-VP), ve (variance "
        "exploding: a = 1, b = sigma_min (sigma_max/sigma_min)^t), edm (Karras et al.'s sigma "
        "levels as time) or trig (a = cos(πt/2), b = sin(πt/2))",
    )
    p.add_argument("--dataset", choices=tuple(DATASETS), default=None,
                   help=f"a built-in data set (default {DEFAULT_DATASET})")  # fmt: skip
    add_points_options(p)
    p.add_argument("--direction", choices=DIRECTIONS, default="reverse")
    p.add_argument("--kind", choices=KINDS, default="ode")
    p.add_argument(
        "--eta", type=finite, default=None, help="the SDE's noise level in [0, 1] (default 1)"
    )
    p.add_argument(
        "--solver",
        choices=tuple(SOLVERS),
        default="euler",
        help="euler, heun, midpoint, rk4, ddim, dpmpp2m (DPM-Solver++ 2M) or dopri5 "
        "(adaptive); for the SDE euler (Euler-Maruyama) or ddim (its eta-family)",
    )
    p.add_argument(
        "--time-grid",
        choices=GRIDS,
        default="uniform",
        help="where the steps fall: uniform in t, in log-SNR, Karras, quadratic",
    )
    p.add_argument(
        "--t-min",
        type=finite,
        default=0.0,
        metavar="F",
        help="where a reverse run stops (logsnr and karras: at least 0.001)",
    )
    p.add_argument("--rtol", type=finite, default=1e-5, metavar="F", help="dopri5's tolerance")
    p.add_argument("--atol", type=finite, default=1e-6, metavar="F", help="dopri5's tolerance")
    p.add_argument("--steps", type=int, default=100, help="number of steps T (1..1000)")
    p.add_argument(
        "--particles", type=int, default=2000, help=f"number of particles (at most {MAX_PARTICLES})"
    )
    p.add_argument("--seed", type=seed_number, default=0)
    add_path_options(p, SCHEDULES)
    p.add_argument("--resolution", type=int, default=128, help="density grid is R x R")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    add_guidance_options(p)


def add_guidance_options(p) -> None:
    """Guidance of a reverse run toward a class (models/guidance.py)."""
    from models.guidance import GUIDANCE_KINDS

    p.add_argument("--class", dest="guidance_class", type=int, default=None, metavar="K",
                   help="guide generation toward class K of the data set (0-based: the 8 "
                   "gaussians' modes, the moons, circles, spiral arms, swiss-roll quarters, "
                   "checkerboard squares, or your points' labels)")  # fmt: skip
    p.add_argument("--guidance-kind", choices=GUIDANCE_KINDS, default="cfg",
                   help="cfg (classifier-free: v + w (v_c - v)), classifier (score + w grad "
                   "log p(c|x_t), the exact classifier) or divergence (an ODE step plus "
                   "lambda grad(div v), toward where the flow concentrates)")  # fmt: skip
    p.add_argument("--guidance", type=finite, default=None, metavar="W",
                   help="w of cfg and classifier guidance (0..10; default 1: the conditional), "
                   "or lambda of divergence guidance (0..0.2; default 0.03)")  # fmt: skip
    p.add_argument("--hutchinson", action="store_true",
                   help="divergence guidance: Hutchinson's one-probe estimate of the "
                   "divergence instead of the exact one")  # fmt: skip


def guidance_settings(args) -> dict:
    """The guidance options as RunConfig fields (``--guidance`` by default 1, or λ = 0.03 for
    divergence guidance)."""
    from models.divergence import DEFAULT_LAMBDA

    value = args.guidance
    if value is None:
        value = DEFAULT_LAMBDA if args.guidance_kind == "divergence" else 1.0
    return {"guidance_class": args.guidance_class, "guidance_kind": args.guidance_kind,
            "guidance": value, "hutchinson": args.hutchinson}  # fmt: skip


def add_path_options(p, schedules) -> None:
    """The schedule of vp and subvp, the sigmas of ve and edm, and flow matching's source."""
    from models.datasets import DATASETS

    p.add_argument("--schedule", choices=tuple(schedules), default="linear",
                   help="vp and subvp: linear, cosine, constant, sigmoid, shifted-cosine, edm, "
                   "or points (a drawn log-SNR, see --schedule-points)")  # fmt: skip
    p.add_argument("--beta-min", type=finite, default=0.1)
    p.add_argument("--beta-max", type=finite, default=20.0)
    p.add_argument("--shift", type=finite, default=2.0, metavar="S",
                   help="shifted-cosine: lambda lowered by 2 log S")  # fmt: skip
    p.add_argument("--schedule-points", default="", metavar="'t:λ,…'",
                   help="--schedule points: control points of log-SNR lambda(t), t rising and "
                   "lambda falling, e.g. '0.005:7,0.5:0,1:-10'")  # fmt: skip
    p.add_argument("--sigma-min", type=finite, default=None, metavar="F",
                   help="ve and edm: sigma at t = 0 (their defaults: 0.01, 0.002)")  # fmt: skip
    p.add_argument("--sigma-max", type=finite, default=None, metavar="F",
                   help="ve and edm: sigma at t = 1, noise end N(0, sigma_max^2 I)")  # fmt: skip
    p.add_argument("--source", choices=("gaussian", *DATASETS), default="gaussian",
                   help="fm: what flows to the data at t = 1, N(0, I) or a data set")  # fmt: skip


def path_settings(args) -> dict:
    """The path options as RunConfig fields."""
    return {"schedule": args.schedule, "beta_min": args.beta_min, "beta_max": args.beta_max,
            "shift": args.shift, "schedule_points": args.schedule_points,
            "sigma_min": args.sigma_min, "sigma_max": args.sigma_max,
            "source": args.source}  # fmt: skip


def run_config(args):
    """(RunConfig, user data set or None) from the run options."""
    import torch

    from models.run.config import RunConfig

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
        time_grid=args.time_grid,
        t_min=args.t_min,
        rtol=args.rtol,
        atol=args.atol,
        steps=args.steps,
        particles=args.particles,
        seed=args.seed,
        **path_settings(args),
        resolution=args.resolution,
        device=device,
        # sample's --pde, or export's heatmap from the PDE
        pde=getattr(args, "pde", False) or getattr(args, "density_source", "") == "pde",
        log_density=getattr(args, "log_density", False),
        **guidance_settings(args),
    )
    from models.run.simulate import view_extent

    return replace(config, extent=view_extent(config)), dataset


def add_field_options(p) -> None:
    """``--field`` and ``--weights`` on ``flowscope sample``."""
    p.add_argument(
        "--field", choices=("exact", "learned"), default="exact",
        help="exact (closed form) or learned (a trained MLP; see --weights)",
    )  # fmt: skip
    p.add_argument(
        "--weights", metavar="FILE",
        help="safetensors weights for --field learned (default: the shipped pretrained model "
        "of the data set and process)",
    )  # fmt: skip


def field_source(args):
    """What moves the particles (a :class:`models.run.result.FieldSource`): the exact field, or
    the weights ``--field learned`` names. Weights that are missing, bad or trained for another
    process or schedule raise CheckpointError (exit code 2).
    """
    from models.learned.checkpoint import CheckpointError, check_matches, load, pretrained_path
    from models.run.result import FieldSource, weights_digest

    if getattr(args, "field", "exact") == "exact":
        if getattr(args, "weights", None):
            raise ValueError("--weights needs --field learned")
        return FieldSource()
    weights = args.weights
    if weights is None:
        if args.points:
            raise CheckpointError("no pretrained model for --points; pass --weights FILE")
        # classifier-free and divergence guidance toward a class take the network's class
        # branch: the conditional weights (classifier guidance steers the unconditional ones)
        conditional = args.guidance_class is not None and args.guidance_kind != "classifier"
        if conditional and args.process != "fm":
            raise CheckpointError(
                "class-conditional weights ship for flow matching only; "
                "pass --weights FILE, or use --guidance-kind classifier"
            )
        weights = pretrained_path(args.dataset or DEFAULT_DATASET, args.process, conditional)
    learned, arch, manifest = load(weights)
    check_matches(arch, args.process, args.schedule, args.beta_min, args.beta_max, weights)

    def make_field(path, exact):
        learned.labeler = exact
        return learned

    details = {"architecture": arch.to_dict(), "trained_on": manifest.get("dataset")}
    return FieldSource("learned", weights=str(weights), trained_steps=manifest.get("steps_done"),
                       weights_hash=weights_digest(learned.net.parameters()), details=details,
                       make=make_field)  # fmt: skip


def add_reference_option(p) -> None:
    """``--reference`` on ``sample`` and ``export``."""
    p.add_argument(
        "--reference", action="store_true",
        help="also integrate the same start points with dopri5 at rtol 1e-8 (ODE runs): "
        "reference (T+1, N, 2), reference_errors (T+1,) and the error in meta (and, for a "
        "reverse run, sw2_ratio); an export's caption gives the error",
    )  # fmt: skip


def check_reference(args, config) -> None:
    """Refuse ``--reference`` before the run where no reference exists (a stochastic run)."""
    if getattr(args, "reference", False) and (config.kind == "conditional" or config.noise_level):
        raise ValueError("--reference needs a deterministic run (kind ode, or sde with eta 0)")


def with_reference_if_asked(args, result):
    """The run with its reference when ``--reference`` asks (models/run/reference.py)."""
    if not getattr(args, "reference", False):
        return result
    from models.run.reference import with_reference

    return with_reference(result)


def add_display_options(p, pair: bool = False) -> None:
    """The page's display settings, named as in its URL (``export``; ``compare`` with
    ``pair``, whose frames hold five views and a difference)."""
    from app.export import DENSITY_SOURCES, OVERLAYS, ExportSettings

    d = ExportSettings()
    p.add_argument("--size", type=int, default=d.size, metavar="PX",
                   help="height in pixels of each view (64..2048)"
                   + ("; a frame has 5 views" if pair else ""))  # fmt: skip
    p.add_argument("--fps", type=int, default=d.fps, help="frames per second (1..60)")
    p.add_argument("--trail", type=int, default=d.trail, metavar="K",
                   help="length of the fading trails, in frames (0..30)")  # fmt: skip
    p.add_argument("--density-source", choices=DENSITY_SOURCES, default=d.density_source,
                   help="heatmap" + (" and A − B" if pair else "") + ": the particles' "
                   "histogram, the PDE's or the exact density")  # fmt: skip
    p.add_argument("--contours", action="store_true",
                   help="contour lines of the exact density on the density view")  # fmt: skip
    p.add_argument("--overlay", choices=OVERLAYS, default=d.overlay,
                   help="field drawn as arrows on the views; difference is learned − exact "
                   "velocity (needs a learned field)")  # fmt: skip
    p.add_argument("--shade", action="store_true",
                   help="colour particles by the log-density each carries (ODE runs), in "
                   "the heatmap's colours")  # fmt: skip


def export_settings(args):
    """The ``ExportSettings`` of the display options (:func:`add_display_options`), checked."""
    from app.export import ExportSettings

    settings = ExportSettings(size=args.size, fps=args.fps, trail=args.trail,
                              density_source=args.density_source, contours=args.contours,
                              overlay=args.overlay, shade=args.shade)  # fmt: skip
    settings.validate()
    return settings

"""``flowscope compare``: two runs on the same noise (``models/compare``), written as .npz,
CSV, MP4, GIF or HTML (``app/export/pair.py``).

The run options given outside ``--a`` and ``--b`` apply to both runs; ``--a "OPTIONS"`` and
``--b "OPTIONS"`` hold ``sample``-style run options (split as a shell splits them) that apply
to that run only, over the shared ones.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from app.cli.options import (
    Parser,
    add_display_options,
    add_field_options,
    add_reference_option,
    add_run_options,
    check_reference,
    export_settings,
    field_source,
    run_config,
    with_reference_if_asked,
)

SIDES = ("a", "b")
# the options of the comparison itself, not of one run: named when found inside --a or --b
COMPARE_ONLY = ("--format", "--a", "--b", "--size", "--fps", "--trail", "--density-source",
                "--contours", "--overlay", "--shade", "--out", "--help", "-h")  # fmt: skip


def add_run_only_options(p) -> None:
    """The options that define one run: ``sample``'s, without ``--out``."""
    add_run_options(p)
    p.add_argument(
        "--pde",
        action="store_true",
        help="also solve the Fokker-Planck equation on the grid (npz: *_pde_density)",
    )
    p.add_argument(
        "--log-density",
        action="store_true",
        help="carry log p_t along each particle (ODE runs; npz: *_log_density)",
    )
    add_reference_option(p)
    add_field_options(p)


def add_compare(sub) -> None:
    from app.export import FORMATS

    p = sub.add_parser(
        "compare",
        help="run A and B on the same noise and write both (npz, csv) or draw them side by "
        "side with A − B (mp4, gif, html)",
    )
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: the suffix of --out, which it must match")  # fmt: skip
    add_run_only_options(p)
    for side in SIDES:
        p.add_argument(
            f"--{side}", default="", metavar='"OPTIONS"',
            help=f"run options for run {side.upper()} only, over the shared ones, in one quoted "
            'string (e.g. "--solver heun --steps 10"); default none',
        )  # fmt: skip
    add_display_options(p, pair=True)
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="npz, csv, mp4, gif or html, by its suffix (exactly this path)",
    )


def glue_side_values(argv: list[str]) -> list[str]:
    """``compare ... --a VALUE`` as ``--a=VALUE``: argparse takes a value that starts with a
    dash and holds no space ("--reference", "--steps=10") for an option of its own."""
    if not argv or argv[0] != "compare":
        return argv
    out, i = [], 0
    while i < len(argv):
        if argv[i] in ("--a", "--b") and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


class SideParser(Parser):
    """The run options of one side; its errors are one-line ValueErrors naming the side."""

    def __init__(self, side: str):
        super().__init__(prog=f"flowscope compare --{side}", add_help=False)
        self.side = side
        add_run_only_options(self)

    def error(self, message: str):
        raise ValueError(f"--{self.side}: {_cut(message)}")

    def side_args(self, text: str, shared: argparse.Namespace) -> argparse.Namespace:
        """The shared options overridden by those of ``text``."""
        try:
            tokens = shlex.split(text)
        except ValueError as exc:  # unbalanced quotes, a dangling backslash
            raise ValueError(f"--{self.side}: cannot split {_cut(repr(text))} ({exc})") from None
        for token in tokens:
            name = token.split("=", 1)[0]
            if name in COMPARE_ONLY:
                raise ValueError(f"--{self.side}: {name} is not a run option; give it outside "
                                 f"--a and --b (it applies to the comparison)")  # fmt: skip
        args, rest = self.parse_known_args(tokens, namespace=argparse.Namespace(**vars(shared)))
        if rest:
            if rest[0].startswith("-"):
                raise ValueError(f"--{self.side}: {_cut(rest[0])} is not a run option (run "
                                 "options: sample's, e.g. --solver heun --steps 10)")  # fmt: skip
            raise ValueError(f"--{self.side}: unexpected {_cut(repr(rest[0]))}: give run "
                             "options, e.g. --solver heun --steps 10")  # fmt: skip
        return args


def side_run(side: str, args):
    """(Side, its arguments) of run ``side`` ("a" or "b"): every error names the run."""
    from dataclasses import replace

    from models.compare.pair import Side
    from models.logdensity import CARRIERS

    ns = SideParser(side).side_args(getattr(args, side), args)
    try:
        config, dataset = run_config(ns)
        # --shade colours each run that carries log p; a run that cannot (an SDE, a solver
        # stepping on x̂ and ε̂) keeps its cluster colours, said in a warning (run_compare)
        carries = config.kind == "ode" and config.noise_level == 0 and config.solver in CARRIERS
        config = replace(config, log_density=ns.log_density or (args.shade and carries))
        config.validate()
        check_reference(ns, config)
        source = field_source(ns)
        if args.overlay == "difference" and not source.learned:
            raise ValueError("--overlay difference (learned − exact velocity) needs a learned "
                             "field (--field learned)")  # fmt: skip
        from models.overlay import overlay_refusal

        if (refusal := overlay_refusal(config, args.overlay)) is not None:
            raise ValueError(refusal)
    except ValueError as exc:  # its type kept (a CheckpointError's exit code)
        exc.args = (f"run {side.upper()}: {exc}",)
        raise
    except OSError as exc:  # a --points file that cannot be read
        raise ValueError(f"run {side.upper()}: {exc}") from None
    return Side(config, dataset, source), ns


def run_compare(args) -> int:
    """Check the destination, the settings and both runs, then run, then write (atomically)."""
    from app.cli.export import GIF_FRAMES_BYTES
    from app.export import format_of
    from app.export.pair import check_pair_estimate, export_pair
    from app.output import check_output
    from models.compare.pair import simulate_pair

    check_output(args.out)  # before computing: a bad path fails in a second, not after the runs
    fmt = format_of(args.out, args.format)
    settings = export_settings(args)
    (side_a, ns_a), (side_b, ns_b) = side_run("a", args), side_run("b", args)
    pair = simulate_pair(side_a, side_b)
    pair = pair.with_(a=with_reference_if_asked(ns_a, pair.a),
                      b=with_reference_if_asked(ns_b, pair.b))  # fmt: skip
    if fmt == "gif":  # a GIF holds every frame until it is written: bound that memory
        check_pair_estimate(pair, fmt, settings, GIF_FRAMES_BYTES)
    arrows = None
    if args.overlay != "none" and fmt in ("mp4", "gif", "html"):
        from app.session.state import ARROWS
        from models.overlay import run_overlay

        arrows = tuple(run_overlay(run, ARROWS, difference=run.source.learned)
                       for run in (pair.a, pair.b))  # fmt: skip
    path = export_pair(pair, fmt, args.out, settings, arrows=arrows)
    for name, run in (("A", pair.a), ("B", pair.b)):
        for warning in run.warnings:
            print(f"flowscope: warning: run {name}: {warning}", file=sys.stderr)
        if args.shade and run.log_density is None:
            print(f"flowscope: warning: run {name}: --shade colours ODE runs of a solver that "
                  "steps on the velocity; this run keeps its cluster colours",
                  file=sys.stderr)  # fmt: skip
    print(
        f"wrote {path}: {fmt}, A {describe(pair.a)}; B {describe(pair.b)}; "
        f"{len(pair.frames.times)} steps on the timeline; {pair.shared}"
    )
    return 0


def describe(run) -> str:
    """'300 particles x 100 steps (euler), t 1.000 -> 0.000'."""
    t_steps, n = run.trajectories.shape[0] - 1, run.trajectories.shape[1]
    return (
        f"{n} particles x {t_steps} steps ({run.config.solver_used}), "
        f"t {run.times[0]:.3f} -> {run.times[-1]:.3f}"
    )


SHOWN_CHARS = 80  # a user's text quoted in an error, at most


def _cut(text: str) -> str:
    """``text`` cut to ``SHOWN_CHARS`` characters, saying how long it was."""
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}… ({len(text):,} characters)"

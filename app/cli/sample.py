"""``flowscope sample``: a headless run written to .npz."""

from __future__ import annotations

import sys

from app.cli.options import (
    add_field_options,
    add_reference_option,
    add_run_options,
    check_reference,
    field_source,
    run_config,
    with_reference_if_asked,
)


def add_sample(sub) -> None:
    p = sub.add_parser("sample", help="run a process headless and write trajectories to .npz")
    add_run_options(p)
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="the .npz file to write (exactly this path; no suffix is added)",
    )
    p.add_argument(
        "--pde", action="store_true",
        help="also solve the Fokker-Planck equation on the grid: pde_density, _mass, _outflow",
    )  # fmt: skip
    p.add_argument(
        "--log-density", action="store_true",
        help="carry log p_t along each particle (ODE runs): log_density (T+1, N)",
    )  # fmt: skip
    add_reference_option(p)
    add_field_options(p)


def run_sample(args) -> int:
    from app.export.data import write_npz
    from app.output import atomic_output, check_output
    from models.run.simulate import simulate

    check_output(args.out)  # before computing: a bad path fails in a second, not after the run
    config, dataset = run_config(args)
    config.validate()
    check_reference(args, config)
    result = with_reference_if_asked(args, simulate(config, dataset, source=field_source(args)))
    if config.guidance_class is not None:
        from models.run.guided import with_guidance

        result = with_guidance(result)
        gap = result.guidance_gap
        print(f"guided toward class {config.guidance_class}: {result.guidance_share:.1%} of the "
              "samples in the class, " + ("no target readout (the data span too many kernel "
              "widths for a grid)" if gap is None else
              f"SW2 to the tilted target {gap:.2f}x its noise floor"))  # fmt: skip
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
    if config.solver not in (config.solver_used, "euler"):  # a solver named, not the default
        print(f"flowscope: note: this run used {config.solver_used}, not --solver "
              f"{config.solver} (its frames need no solver steps)", file=sys.stderr)  # fmt: skip
    return 0

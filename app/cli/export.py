"""``flowscope export``: a run drawn as MP4, GIF, HTML, .npz or CSV, as the page shows it."""

from __future__ import annotations

from app.cli.options import (
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

# the paletted frames a GIF holds in memory while Pillow writes it, at one byte a pixel: the
# process takes about 3x that (a 2048 px GIF of 101 frames, 870 MB of frames, took 2.7 GB).
# The command line bounds no file, only this
GIF_FRAMES_BYTES = 300_000_000


def add_export(sub) -> None:
    from app.export import FORMATS

    p = sub.add_parser(
        "export", help="run a process and write it as mp4, gif, a standalone html page, npz or csv"
    )
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: the suffix of --out, which it must match")  # fmt: skip
    add_run_options(p)
    add_field_options(p)
    add_display_options(p)
    add_reference_option(p)
    p.add_argument("--out", required=True, metavar="FILE")  # fmt: skip


def run_export(args) -> int:
    """Check the destination and settings, then run, then write (atomically)."""
    from dataclasses import replace

    from app.export import export, format_of
    from app.export.bound import check_estimate
    from app.output import check_output
    from models.run.simulate import simulate

    check_output(args.out)  # before computing: a bad path fails in a second, not after the run
    fmt = format_of(args.out, args.format)
    settings = export_settings(args)
    config, dataset = run_config(args)
    config = replace(config, log_density=args.shade)  # the shading is the carried density
    config.validate()
    source = field_source(args)
    if args.overlay == "difference" and not source.learned:
        raise ValueError("--overlay difference (learned − exact velocity) needs --field learned")
    from models.overlay import overlay_refusal

    if (refusal := overlay_refusal(config, args.overlay)) is not None:
        raise ValueError(refusal)
    check_reference(args, config)
    result = with_reference_if_asked(args, simulate(config, dataset, source=source))
    if settings.density_source == "posterior":  # the class map: made on request
        from models.run.guided import with_posterior_map

        result = with_posterior_map(result)
    if fmt == "gif":  # a GIF holds every frame until it is written: bound that memory
        check_estimate(result, fmt, settings, GIF_FRAMES_BYTES)
    arrows = None
    if args.overlay != "none":
        from app.session.state import ARROWS
        from models.overlay import run_overlay

        arrows = run_overlay(result, ARROWS, difference=source.learned)
    path = export(result, fmt, args.out, settings, arrows=arrows)
    print(f"wrote {path}: {fmt}, {len(result.times)} frames")
    return 0

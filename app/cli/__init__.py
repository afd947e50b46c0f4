"""The ``flowscope`` command line: ``sample`` (headless runs), ``export``, ``compare`` (two runs
on the same noise), ``train``, ``serve``, ``class`` (several servers behind nginx) and
``solvers`` (solver error against NFE).

One module a command (its options and its run), the shared options in ``options``; every
failure is one line and exit code 2 (1 for a refused non-finite run).
"""

from __future__ import annotations

import sys

from app.cli.classroom import add_class, run_class
from app.cli.compare import add_compare, glue_side_values, run_compare
from app.cli.export import add_export, run_export
from app.cli.interrupt import signals_as_interrupt
from app.cli.options import Parser
from app.cli.sample import add_sample, run_sample
from app.cli.serve import add_serve, run_serve
from app.cli.solvers import add_solvers, run_solvers
from app.cli.train import add_train, run_train


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status (0, 1 or 2 on a failure, 130 when stopped)."""
    try:
        with signals_as_interrupt():  # from the start: parsing the options imports torch
            return _run(argv)
    except (ValueError, OSError) as exc:
        print(f"flowscope: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 1 for a refused non-finite run (NonFiniteRun)
    except KeyboardInterrupt:
        return 130


def _run(argv: list[str] | None) -> int:
    parser = Parser(
        prog="flowscope",
        description="flowscope: headless runs of 2D diffusion and "
        "flow-matching models, their exports, training, and the web app.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    argv = glue_side_values(list(sys.argv[1:] if argv is None else argv))
    # The other commands' options list the models' names, which imports torch (~1.5 s): not
    # for `serve`, which binds its port and shows its first picture before that (app/splash.py)
    for add in (add_sample, add_serve, add_export, add_train, add_solvers, add_compare,
                add_class):  # fmt: skip
        if add is add_serve or argv[:1] != ["serve"]:
            add(sub)
    args = parser.parse_args(argv)
    runs = {"sample": run_sample, "serve": run_serve, "export": run_export,
            "train": run_train, "solvers": run_solvers,
            "compare": run_compare, "class": run_class}  # fmt: skip
    return runs[args.command](args)

"""Slider release -> paint, two checkouts side by side, pages interleaved (A/B).

On this shared 2-core machine the speed of the same code varies by 40 % within an hour, so a
table from one session cannot be compared with a table from another. This serves two
checkouts at once (say the commit before a change, and the working tree) and alternates their
pages, in the order A B then B A, so both see the same machine. Prints the median per data set
and the ratio new / old.

    git worktree add /tmp/old <commit> && ln -s "$PWD/.venv" /tmp/old/.venv
    python benchmarks/ab_app.py --old /tmp/old [--new .] [--paused] [--repeats 5]
        [--datasets 8gaussians moons ... fm-sde] [--pde]

Each data set is a β_max drag of a VP ODE run; ``fm-sde`` is the η drag of a flow-matching SDE
run on 8 gaussians. ``--pde`` shows the density solved on the grid (budget: 400 ms paused).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
import bench_app


class _NoMeter:
    """Counting the websocket's bytes costs the page time: not counted here."""

    def __init__(self, page):
        self.bytes = 0


# case → (query, index of the slider handle dragged: 0 is η, 4 is β_max)
CASES = {name: (f"?process=vp&dataset={name}", 4) for name in bench_app.DATASET_NAMES}
CASES["fm-sde"] = ("?kind=sde&eta=0.5", 0)


def serve(root: Path) -> tuple[subprocess.Popen, int]:
    port = bench_app.free_port()
    proc, _ = bench_app.start_server(port, [], root=str(root))
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="checkout A (the baseline)")
    parser.add_argument("--new", type=Path, default=Path("."), help="checkout B")
    parser.add_argument("--paused", action="store_true", help="drag with the player paused")
    parser.add_argument("--repeats", type=int, default=5, help="drags per page")
    parser.add_argument("--datasets", nargs="+", default=list(bench_app.DATASET_NAMES),
                        choices=list(CASES))  # fmt: skip
    parser.add_argument("--pde", action="store_true", help="the PDE as the density source")
    args = parser.parse_args()
    bench_app.Meter = _NoMeter
    roots = {"old": args.old.resolve(), "new": args.new.resolve()}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                    args=bench_app.ARGS)  # fmt: skip
        servers = {name: serve(root) for name, root in roots.items()}
        speed = bench_app.machine_speed()
        try:
            latencies: dict[tuple[str, str], list[float]] = {}
            for order in (("old", "new"), ("new", "old")):
                for name in args.datasets:
                    for which in order:
                        query, handle = CASES[name]
                        query += "&density_source=pde" if args.pde else ""
                        url = f"http://localhost:{servers[which][1]}/{query}"
                        lat, _ = bench_app.slider_latency(browser, url, handle, args.repeats,
                                                          args.paused)  # fmt: skip
                        latencies.setdefault((name, which), []).extend(lat)
            mode = "paused" if args.paused else "playing"
            shown = "PDE density" if args.pde else "particles' density"
            print(f"slider drag, {shown}, {mode}; machine speed {speed:.2f} ms before, "
                  f"{bench_app.machine_speed():.2f} ms after (quiet: 0.94)")  # fmt: skip
            for name in args.datasets:
                old = statistics.median(latencies[(name, "old")])
                new = statistics.median(latencies[(name, "new")])
                print(f"{name:13} old {old:5.0f} ms   new {new:5.0f} ms   new/old {new / old:.2f}")
        finally:
            for proc, _ in servers.values():
                proc.terminate()
            browser.close()


if __name__ == "__main__":
    main()

"""Where a slider drag's latency goes: the server's part and the browser's, on one clock.

Serves the app with timestamps around the recompute (request, compute, publish), drives a real
Chromium that records when each websocket message arrives, and prints per drag: the total
(pointer release → new frame painted, as bench_app measures it), the server and the wire
(release → the run's last large buffer arrived), and the browser (that arrival → painted).
For the last drag it also prints the server's timeline, in ms after the release.

    python benchmarks/latency_parts.py "?process=vp&dataset=spirals" [--repeats 6] [--handle 4]
        [--playing]

Handle 4 is β_max (VP runs only: pass process=vp), 0 is η (see bench_app). Times are epoch
milliseconds on both sides.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_app

# In the page, before Bokeh opens its websocket: (page time, epoch ms, bytes) of each message.
RECORD_MESSAGES = """
(() => { const Socket = window.WebSocket; window.__messages = [];
  window.WebSocket = function (...args) {
    const ws = new Socket(...args);
    ws.addEventListener('message', (e) => window.__messages.push([performance.now(),
      performance.timeOrigin + performance.now(), e.data.byteLength || e.data.length || 0]));
    return ws;
  };
  window.WebSocket.prototype = Socket.prototype; Object.assign(window.WebSocket, Socket);
})();
"""
LARGE = 100_000  # bytes: a message this large is part of a run


def serve_with_marks(port: int, log: str) -> None:
    """Run ``flowscope serve`` in this process, with epoch-ms marks of the recompute in ``log``."""
    from app.cli import main
    from app.session import runner, state

    out = open(log, "a", buffering=1)  # open for the server's lifetime

    def marked(cls, name: str) -> None:
        fn = getattr(cls, name)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            out.write(f"{time.time() * 1000:.1f} {name} start\n")
            try:
                return fn(*args, **kwargs)
            finally:
                out.write(f"{time.time() * 1000:.1f} {name} end\n")

        setattr(cls, name, wrapper)

    marked(runner.Recomputer, "request")
    marked(state.FlowState, "compute")
    marked(runner.Recomputer, "_publish")
    sys.exit(main(["serve", "--port", str(port)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", help='the page\'s query string, e.g. "?dataset=moons"')
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--handle", type=int, default=4, help="slider handle (4: β_max, 0: η)")
    parser.add_argument("--playing", action="store_true", help="drag while the player plays")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # internal: the server
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_with_marks(args.serve, args.log)
        return
    from playwright.sync_api import sync_playwright

    log = tempfile.NamedTemporaryFile(suffix=".log", delete=False).name
    port = bench_app.free_port()
    root = str(Path(__file__).resolve().parents[1])
    server = subprocess.Popen(
        [sys.executable, __file__, args.query, "--serve", str(port), "--log", log],
        cwd=root, env={**os.environ, "PYTHONPATH": root},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    rows = []
    try:
        bench_app.wait_until_up(port)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=bench_app.ARGS)  # fmt: skip
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.add_init_script(RECORD_MESSAGES)
            page.goto(f"http://localhost:{port}/{args.query}")
            page.wait_for_function("() => window.flowscope_frames > 0", timeout=60_000)
            page.evaluate(bench_app.INSTRUMENT)
            if not args.playing:
                page.evaluate(bench_app.PAUSE)
            time.sleep(1.5)
            for k in range(args.repeats):
                page.evaluate("() => { window.__painted = undefined; window.__messages = []; }")
                bench_app.drag(page, args.handle, 14 if k % 2 == 0 else -14)
                page.wait_for_function("() => window.__painted !== undefined", timeout=30_000)
                time.sleep(0.4)
                t0, painted, messages, origin = page.evaluate(
                    "() => [window.__t0, window.__painted, window.__messages,"
                    " performance.timeOrigin]"
                )
                large = [m for m in messages if t0 <= m[0] <= painted and m[2] > LARGE]
                arrived = max(m[0] for m in large) if large else float("nan")
                rows.append((painted - t0, arrived - t0, painted - arrived))
                released = origin + t0
            browser.close()
    finally:
        server.terminate()
    for total, server_wire, browser_part in rows:
        print(f"total {total:5.0f} ms   server + wire {server_wire:5.0f}   "
              f"browser {browser_part:5.0f}")  # fmt: skip
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print("median total {:5.0f} ms   server + wire {:5.0f}   browser {:5.0f}".format(*medians))
    print("server, last drag (ms after the release):")
    for line in Path(log).read_text().splitlines():
        stamp, name, edge = line.split()
        if float(stamp) >= released - 50:
            print(f"  {float(stamp) - released:7.1f}  {name} {edge}")
    os.unlink(log)


if __name__ == "__main__":
    main()

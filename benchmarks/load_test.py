"""A class full of users, on loopback: many real sessions change controls at once.

Serves the app (``python -m app serve`` in a subprocess, or uses ``--url``), then drives
``--sessions`` real sessions with Bokeh's own client (``bokeh.client.pull_session``, no
browser), each on its own thread and event loop. Every session changes a compute control
(seed, β_max, steps, η, in turn) again and again and times each change until the new run's data
has arrived in its own copy of the document. Prints the p50/p95 recompute latency, the server's
memory after 50 and after ``--recomputes`` recomputes (R; every 50 between), with a leak bound
(PASS or FAIL) on the growth over the second half, R/2 -> R. Then a second phase in which one
of the sessions is heavy (20,000 particles x 1,000 steps asked for, capped by the app), and the
others' p95 with and without it. The first phase's clock starts once every page is open.

    PYTHONPATH=. .venv/bin/python benchmarks/load_test.py            # 20 sessions x 60 s
    PYTHONPATH=. .venv/bin/python benchmarks/load_test.py --sessions 3 --seconds 5 --no-heavy

Each session is a ``session_driver.Driver`` (why it runs its own websocket reader: there).
Traffic goes to 127.0.0.1 only; every wait is bounded in time.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from session_driver import LIGHT_TIMEOUT, Driver, import_panel_models

ROOT = Path(__file__).resolve().parents[1]
HEAVY_TIMEOUT = 180.0  # one heavy recompute's wait at most (s)
# The leak bound: the median RSS over the second half (readings every 50 recomputes from R/2 to
# R) at most RSS_BOUND_RATIO times the RSS after 50. The median, because transient buffers (each
# run's packing and serialization, kept by glibc in its arenas between runs) swing single
# readings by ±150 MB with 20 sessions. Measured, 20 sessions, R = 500: before the fix of
# app/session/memory.py (replaced runs and closed sessions were cyclic garbage, freed only by a
# full gc.collect) 1307 MB after 50, 1781 at 250, 2462 at 500 and still rising (1.6x); after it,
# 1250 after 50, readings of 1174-1492 from 100 to 500 (about 1.1x), and 489 MB once the sessions
# closed. A leak of one run's packed frames (~2 MB at the defaults) per recompute adds 1 GB.
RSS_BOUND_RATIO = 1.3
HEAVY_QUERY = {"particles": "20000", "steps": "1000"}


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux /proc), NaN if unreadable."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- phases and the server --------------------------------------------------------------------
def run_phase(url: str, sessions: int, seconds: float, on_recompute, heavy: bool = False,
              until: Callable[[], bool] = lambda: True, max_seconds: float | None = None,
              ) -> tuple[list[Driver], Driver | None]:  # fmt: skip
    """Drive ``sessions`` light sessions (and one heavy one) for ``seconds``, then on until
    ``until()`` holds or ``max_seconds`` have passed. The clock starts when every session has
    its page and first run (and the heavy one its first change): opening 20 pages takes the
    server a while, and is not what a recompute costs."""
    stop, go = threading.Event(), threading.Event()
    threads, heavy_run = [], None
    if heavy:  # in a process of its own, as its own browser would be: decoding its tens of MB
        # per run must not hold the GIL of the process that times the light sessions
        ctx = multiprocessing.get_context("spawn")
        ready, heavy_stop, results = ctx.Event(), ctx.Event(), ctx.Queue()
        heavy_run = ctx.Process(target=heavy_session, args=(url, ready, heavy_stop, results))
        heavy_run.start()
        ready.wait(HEAVY_TIMEOUT)  # open first: its page must not wait behind the others'
    drivers = [Driver(url, stop, on_recompute, go=go) for _ in range(sessions)]
    threads += [d.start() for d in drivers]
    for d in drivers:
        d.ready.wait(2 * LIGHT_TIMEOUT)
    go.set()
    start = time.time()
    end = start + max(seconds, max_seconds or seconds)
    while time.time() < end and any(t.is_alive() for t in threads):
        if time.time() - start >= seconds and until():
            break
        time.sleep(0.2)
    stop.set()
    print(f"{sessions} sessions changed controls for {time.time() - start:.0f} s"
          + (" beside a heavy one" if heavy else ""))  # fmt: skip
    for t in threads:
        t.join(LIGHT_TIMEOUT + 10)
    heavy_driver = None
    if heavy_run:
        heavy_stop.set()
        heavy_driver = Driver(url, None)
        heavy_driver.latencies, heavy_driver.frames, heavy_driver.error = results.get(
            timeout=HEAVY_TIMEOUT + 10
        )
        heavy_run.join(10)
    return drivers, heavy_driver


def heavy_session(url: str, ready, stop, results) -> None:
    """One heavy session in a child process, until ``stop``: it keeps its 1,000 steps and
    changes the seed, β_max and η. Sets ``ready`` when its first run has landed; puts its
    figures on ``results``."""
    import_panel_models()
    driver = Driver(url, threading.Event(), arguments=HEAVY_QUERY, timeout=HEAVY_TIMEOUT,
                    turns=("seed", "beta_max", "eta"), on_recompute=ready.set)  # fmt: skip
    # ready: after its first change, so the light sessions are timed beside a heavy *loop*
    thread = driver.start()
    while thread.is_alive() and not stop.wait(0.2):
        if driver.error:
            ready.set()  # nothing to wait for
    driver.stop.set()
    thread.join(HEAVY_TIMEOUT + 10)
    ready.set()
    results.put((driver.latencies, driver.frames, driver.error))  # plain data: picklable


def start_server(extra: list[str] | tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    """``flowscope serve`` on a free loopback port, with ``extra`` options; returns it and
    its URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--address", "127.0.0.1",
         *extra],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/liveness", timeout=2)
            return server, f"http://127.0.0.1:{port}/"
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError("the server did not start") from None
            time.sleep(0.3)


def summary(name: str, drivers: list[Driver]) -> np.ndarray:
    """Print and return the phase's latencies in ms."""
    lat = np.array([x for d in drivers for x in d.latencies]) * 1000
    counts = [len(d.latencies) for d in drivers]
    if len(lat):
        print(f"{name}: {len(lat)} recomputes (per session {min(counts)}..{max(counts)}), "
              f"p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms, "
              f"max {lat.max():.0f} ms")  # fmt: skip
    else:
        print(f"{name}: no recompute completed")
    for e in sorted({d.error for d in drivers if d.error})[:3]:
        print(f"  session error: {e}")
    return lat


@dataclass
class Report:
    """What ``main`` measured (for tests): the drivers of each phase and the memory marks."""

    light: list[Driver]
    loaded: list[Driver] = field(default_factory=list)
    heavy: Driver | None = None
    rss: dict[int, float] = field(default_factory=dict)  # recomputes done -> MB
    memory_ok: bool | None = None


def memory_summary(rss: dict[int, float], first: int, half: int, last: int) -> bool | None:
    """Print the RSS readings; True/False: the median reading from ``half`` to ``last``
    recomputes is within ``RSS_BOUND_RATIO`` of the reading after ``first`` (None: not
    reached)."""
    print("server RSS (MB) after n recomputes, n: MB: "
          + ", ".join(f"{n}: {mb:.0f}" for n, mb in sorted(rss.items())))  # fmt: skip
    for mark in sorted({first, last}):
        print(f"server RSS after {mark} recomputes: "
              + (f"{rss[mark]:.0f} MB" if mark in rss else "not reached"))  # fmt: skip
    late = [mb for n, mb in rss.items() if half <= n <= last]
    if first not in rss or last not in rss or half <= first or not late:
        return None
    ratio = statistics.median(late) / rss[first]
    verdict = ratio <= RSS_BOUND_RATIO
    print(f"median RSS from {half} to {last} recomputes / RSS after {first}: {ratio:.2f} "
          f"(leak bound {RSS_BOUND_RATIO}): {'PASS' if verdict else 'FAIL'}")  # fmt: skip
    return verdict


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0, help="per phase (default 60)")
    parser.add_argument(
        "--recomputes",
        type=int,
        default=500,
        help="memory is read after 50 and after this many recomputes; the "
        "first phase goes on past --seconds until they are done",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="the first phase's limit while it waits for --recomputes",
    )
    parser.add_argument(
        "--heavy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a second phase with one heavy session",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=40.0,
        help="seconds to wait at the end before the last memory reading: Bokeh "
        "discards a closed session within 32 s",
    )
    parser.add_argument("--url", help="drive this server instead of starting one (no memory)")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0 or args.recomputes < 1:
        parser.error("--sessions, --seconds and --recomputes must be positive")
    return args


def main(argv=None) -> Report:
    """Run the load test; prints the figures and returns them."""
    args = parse_args(argv)
    import_panel_models()
    server, url = (None, args.url) if args.url else start_server()
    pid = server.pid if server else None
    try:
        if pid:
            print(f"server RSS at start: {rss_mb(pid):.0f} MB")
        done, lock = [0], threading.Lock()
        marks = (min(50, args.recomputes // 4), args.recomputes // 2, args.recomputes)
        report = Report(light=[])

        def counted() -> None:
            with lock:
                done[0] += 1
                if pid and (done[0] % 50 == 0 or done[0] in marks):
                    report.rss.setdefault(done[0], rss_mb(pid))

        report.light, _ = run_phase(url, args.sessions, args.seconds, counted,
                                    until=lambda: done[0] >= args.recomputes,
                                    max_seconds=args.max_seconds)  # fmt: skip
        base = summary(f"{args.sessions} light sessions", report.light)
        if pid:
            report.memory_ok = memory_summary(report.rss, *marks)
        if args.heavy:
            others = max(1, args.sessions - 1)
            report.loaded, report.heavy = run_phase(url, others, args.seconds, lambda: None,
                                                    heavy=True)  # fmt: skip
            loaded = summary(f"{others} light sessions beside one heavy session", report.loaded)
            summary("  the heavy session itself", [report.heavy])
            if report.heavy.frames:
                print(f"  its runs: {report.heavy.frames[-1]} frames (capped by the app)")
            if len(base) and len(loaded):
                print(
                    f"one heavy session instead of a light one: the others' p95 "
                    f"{np.percentile(base, 95):.0f} -> {np.percentile(loaded, 95):.0f} ms, "
                    f"p50 {np.percentile(base, 50):.0f} -> {np.percentile(loaded, 50):.0f} ms"
                )
        if pid:
            print(f"server RSS at the end: {rss_mb(pid):.0f} MB")
            if args.settle > 0:
                time.sleep(args.settle)
                print(
                    f"server RSS {args.settle:.0f} s later, every session closed: "
                    f"{rss_mb(pid):.0f} MB"
                )
        return report
    finally:
        if server:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    result = main()
    sys.exit(0 if any(d.latencies for d in result.light) else 1)

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

Why the client needs a reader: ``ClientConnection`` reads the websocket only while one of its
own blocking calls (``pull``, ``loop_until_closed``) runs its loop, and only until that call's
condition holds. A change made in the client document *is* queued for sending (a callback on the
session's IOLoop), but with nothing running that loop it never leaves, and the server's answer
would never be read either. So each session runs its IOLoop itself, with a task that reads every
message and applies the server's PATCH-DOCs to the client document, as ``loop_until_closed``
does (without that method's recursion of one await per message).

Traffic goes to 127.0.0.1 only; every wait is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import multiprocessing
import os
import pkgutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from bokeh.core.property.singletons import Undefined

ROOT = Path(__file__).resolve().parents[1]
LIGHT_TIMEOUT, HEAVY_TIMEOUT = 60.0, 180.0  # one recompute's wait at most (s)
MAX_MESSAGE = 512 * 1024 * 1024  # a heavy run's frames are tens of MB in one message
# Allowed growth of the server's RSS from R/2 to R recomputes (500: 250 more recomputes). Not
# from 50: RSS rises until every session holds its working set (a shown run, one computing, their
# packed copies) and glibc keeps freed blocks (measured, 4 sessions: 590 MB at 50 recomputes,
# a plateau of 850-900 MB from 250 to 400; after the sessions closed, malloc_trim gave it back
# to ~370 MB, and no FlowState was left alive). A leak of even one run's packed frames (~2 MB
# at the defaults) per recompute would add 500 MB over the second half.
RSS_BOUND_MB = 100.0
HEAVY_QUERY = {"particles": "20000", "steps": "1000"}


def import_panel_models() -> None:
    """Register every Panel model type with Bokeh, so the client can build the pulled page."""
    import panel.models

    for info in pkgutil.iter_modules(panel.models.__path__):
        with contextlib.suppress(Exception):  # optional extras the page does not use
            importlib.import_module(f"panel.models.{info.name}")


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux /proc), NaN if unreadable."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- one session ------------------------------------------------------------------------------
@dataclass
class Controls:
    """The compute controls a session turns, found by their titles in the pulled document."""

    seed: object  # a Spinner (IntInput): plain ``value``
    sliders: dict[str, object]  # throttled sliders: the app listens to ``value_throttled``

    @classmethod
    def find(cls, doc) -> Controls:
        by_title = {getattr(m, "title", None): m for m in doc.models}
        sliders = {name: by_title[title] for name, title in
                   (("beta_max", "β_max"), ("steps", "steps T"),
                    ("eta", "η (0 = ODE … 1 = reverse SDE)"))}  # fmt: skip
        return cls(seed=by_title["seed"], sliders=sliders)

    def change(self, k: int, names=("seed", "beta_max", "steps", "eta")) -> tuple[str, float]:
        """The k-th change: a new seed, β_max, steps or η, the ``names`` in turn (each a new
        run). Returns (name, value)."""
        name = names[k % len(names)]
        value = {"seed": 1000 + k, "beta_max": 10.0 + k % 10, "steps": 60 + 10 * (k % 8),
                 "eta": round(0.1 * (k % 10), 1)}[name]  # fmt: skip
        if name == "seed":
            self.seed.value = value
        else:  # as a browser does on release: the value, then the throttled value
            slider = self.sliders[name]
            slider.value = value
            # Readonly for Python code; the browser sets it, so the client sets it the same way
            slider.lookup("value_throttled")._set(slider, Undefined, value)
        return name, value


@dataclass
class Driver:
    """One session on its own thread: change a control, wait for the new run, repeat."""

    url: str
    stop: threading.Event | None
    on_recompute: Callable[[], None] | None = None
    arguments: dict[str, str] = field(default_factory=dict)
    timeout: float = LIGHT_TIMEOUT
    turns: tuple[str, ...] = ("seed", "beta_max", "steps", "eta")  # the controls changed
    latencies: list[float] = field(default_factory=list)  # seconds
    frames: list[int] = field(default_factory=list)  # frames of each run that arrived
    error: str | None = None
    go: threading.Event | None = None  # changes start once set (None: at once)
    ready: threading.Event = field(default_factory=threading.Event)  # first run in (or failed)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        from bokeh.client import pull_session

        try:
            session = pull_session(url=self.url, arguments=self.arguments,
                                   max_message_size=MAX_MESSAGE)  # fmt: skip
        except Exception as exc:
            self.error = f"could not open a session: {type(exc).__name__}: {exc}"
            self.ready.set()
            return
        try:
            session._connection.io_loop.run_sync(lambda: self._drive(session))
        except Exception as exc:  # reported in the summary, not a traceback per thread
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()
            session.close()

    async def _drive(self, session) -> None:
        doc = session.document
        store = doc.get_model_by_name("grid_store")  # replaced last when a run lands
        arrived = asyncio.Event()
        store.on_change("data", lambda _attr, _old, _new: arrived.set())
        reader = asyncio.ensure_future(_read_patches(session))
        try:
            if len(store.data["t"]) == 0:  # the page's first run has not landed yet
                await self._wait(arrived, reader)
            self.ready.set()
            while self.go is not None and not self.go.is_set():  # the others are still opening
                if reader.done():
                    raise ConnectionError("the server closed the session")
                await asyncio.sleep(0.05)
            controls, k = Controls.find(doc), 0
            while k == 0 or not self.stop.is_set():  # one change at least, however late
                arrived.clear()
                start = time.perf_counter()
                name, value = controls.change(k, self.turns)
                await self._wait(arrived, reader)
                self.latencies.append(time.perf_counter() - start)
                self.frames.append(len(store.data["t"]))
                if name == "steps" and self.frames[-1] != value + 1:
                    raise RuntimeError(f"asked for {value} steps, got {self.frames[-1]} frames")
                if self.on_recompute:
                    self.on_recompute()
                k += 1
        finally:
            reader.cancel()

    async def _wait(self, arrived: asyncio.Event, reader: asyncio.Future) -> None:
        waiter = asyncio.ensure_future(arrived.wait())
        done, _ = await asyncio.wait({waiter, reader}, timeout=self.timeout,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        waiter.cancel()
        if reader in done:
            raise ConnectionError("the server closed the session")
        if waiter not in done:
            raise TimeoutError(f"no new run within {self.timeout:.0f} s")


async def _read_patches(session) -> None:
    """Read the websocket until it closes, applying the server's changes to the client document
    (what ``ClientConnection._handle_messages`` does under ``loop_until_closed``)."""
    connection = session._connection
    while (message := await connection._pop_message()) is not None:
        if message.msgtype == "PATCH-DOC":
            session._handle_patch(message)


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
    drivers = [Driver(url, stop, on_recompute, go=go) for _ in range(sessions)]
    threads += [d.start() for d in drivers]
    for d in drivers:
        d.ready.wait(2 * LIGHT_TIMEOUT)
    if heavy_run:
        ready.wait(HEAVY_TIMEOUT)
    go.set()
    start = time.time()
    end = start + max(seconds, max_seconds or seconds)
    while time.time() < end and any(t.is_alive() for t in threads):
        if time.time() - start >= seconds and until():
            break
        time.sleep(0.2)
    stop.set()
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


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--address", "127.0.0.1"],
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
    """Print the RSS readings; True/False: the growth from ``half`` to ``last`` recomputes is
    within the bound (None: not reached)."""
    print("server RSS (MB) after n recomputes, n: MB: "
          + ", ".join(f"{n}: {mb:.0f}" for n, mb in sorted(rss.items())))  # fmt: skip
    for mark in sorted({first, last}):
        print(f"server RSS after {mark} recomputes: "
              + (f"{rss[mark]:.0f} MB" if mark in rss else "not reached"))  # fmt: skip
    if half not in rss or last not in rss or half == last:
        return None
    growth = rss[last] - rss[half]
    verdict = growth < RSS_BOUND_MB
    print(f"RSS growth {half} -> {last} recomputes: {growth:+.0f} MB (leak bound "
          f"{RSS_BOUND_MB:.0f} MB): {'PASS' if verdict else 'FAIL'}")  # fmt: skip
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
        marks = (min(50, args.recomputes), args.recomputes // 2, args.recomputes)
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

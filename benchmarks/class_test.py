"""A class on one machine: students who think between changes, some watching the player, some
training a network in the page, all at once, against ``flowscope serve --num-procs N``.

Every student is a real session driven by Bokeh's own client (``session_driver.Driver``, no
browser), on its own thread. Each waits a random think time (uniform in ``--think LOW HIGH``
seconds, seeded by ``--seed``: the same class each time), changes a setting, and times the
change until its result has arrived in its own copy of the document ("change to paint" without
the browser's own drawing):

- students (the rest) change a compute control (seed, β_max, steps, η, in turn): timed until
  the new run's data has arrived;
- ``--players`` watch the player, which runs in their browser and asks nothing of the server;
  what they do send is display settings (trail length, the velocity arrows on and off), timed
  until the page's display settings have arrived (the arrows are computed on the server);
- ``--trainers`` start training in the Train panel (its defaults: 2,000 steps), start again
  whenever a job ends, and change compute controls like the students meanwhile.

Prints the p50/p95 latency of the compute changes (the target: p95 under 1 s), the display
changes', each trainer's progress (steps done, steps per second, jobs finished), the servers'
memory, and the load average before and after (other work on the machine shows there).

    PYTHONPATH=. .venv/bin/python benchmarks/class_test.py --students 30 --think 3 10 \\
        --trainers 2 --players 8 --num-procs 2 --seconds 120
    PYTHONPATH=. .venv/bin/python benchmarks/class_test.py --url http://127.0.0.1:8080/ ...

The clock starts once every page is open and has its first run (opening a class's pages is not
what a change costs). Traffic goes to 127.0.0.1 (or ``--url``) only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from load_test import rss_mb, start_server
from session_driver import DISPLAY, LIGHT_TIMEOUT, Driver, import_panel_models

TARGET_P95 = 1.0  # s: a change lands within a second for 19 students in 20
COMPUTE = ("seed", "beta_max", "steps", "eta")


@dataclass
class ClassReport:
    """What one class measured: the sessions by role, and the seconds they were driven."""

    students: list[Driver] = field(default_factory=list)
    players: list[Driver] = field(default_factory=list)
    trainers: list[Driver] = field(default_factory=list)
    seconds: float = 0.0
    url: str = ""  # the server driven

    @property
    def everyone(self) -> list[Driver]:
        return self.trainers + self.players + self.students

    def compute_latencies(self) -> np.ndarray:
        """Seconds from a compute change to its run, students' and trainers' together."""
        return np.array([x for d in self.students + self.trainers for x in d.latencies])


def run_class(url: str, students: int, think: tuple[float, float], seconds: float,
              players: int = 0, trainers: int = 0, seed: int = 0,
              headers: Callable[[int], dict[str, str]] = lambda _i: {},
              ) -> ClassReport:  # fmt: skip
    """Drive a class of ``students`` sessions (``players`` and ``trainers`` among them) for
    ``seconds`` once all are open; session i sends ``headers(i)`` with its websocket."""
    if players + trainers > students:
        raise ValueError("--players and --trainers are among the --students")
    stop, go = threading.Event(), threading.Event()
    report = ClassReport(url=url)
    for i in range(students):
        role = "trainers" if i < trainers else "players" if i < trainers + players else "students"
        driver = Driver(url, stop, go=go, think=think, think_seed=seed * 1000 + i,
                        turns=DISPLAY if role == "players" else COMPUTE,
                        train=role == "trainers", headers=headers(i))  # fmt: skip
        getattr(report, role).append(driver)
    threads = [d.start() for d in report.everyone]
    opened = time.time()
    for d in report.everyone:
        d.ready.wait(max(1.0, 4 * LIGHT_TIMEOUT - (time.time() - opened)))
    print(f"{students} pages open in {time.time() - opened:.0f} s")
    go.set()
    start = time.time()
    while time.time() - start < seconds and any(t.is_alive() for t in threads):
        time.sleep(0.2)
    stop.set()
    report.seconds = time.time() - start
    for t in threads:
        t.join(LIGHT_TIMEOUT + 10)
    return report


def latency_line(name: str, seconds: np.ndarray) -> str:
    if not len(seconds):
        return f"{name}: none completed"
    ms = seconds * 1000
    return (f"{name}: {len(ms)} changes, p50 {np.percentile(ms, 50):.0f} ms, "
            f"p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms")  # fmt: skip


def training_lines(report: ClassReport) -> list[str]:
    """One line per trainer: the steps its jobs made while the class ran, and how fast."""
    lines = []
    for i, d in enumerate(report.trainers):
        t = d.training
        if t is None or not t.jobs:
            lines.append(f"trainer {i}: no training progress arrived")
            continue
        finished = len(t.jobs) - 1 + int(t.finished)  # a job starts after the last ended
        took = [b - a for _, a, b in t.jobs[:finished]]
        each = f", each in {min(took):.1f}-{max(took):.1f} s" if took else ""
        rate = t.steps / max(t.training_seconds, 1e-9)
        lines.append(f"trainer {i}: {t.steps:,} steps, {rate:.0f} steps/s while training; "
                     f"{finished} of {len(t.jobs)} jobs of {t.progress.max:,} steps "
                     f"finished{each}; {len(d.latencies)} changes meanwhile")  # fmt: skip
    return lines


def summary(report: ClassReport) -> bool | None:
    """Print the figures; True/False: compute p95 within the target (None: none measured)."""
    print(f"{len(report.everyone)} students ({len(report.students)} changing compute "
          f"controls, {len(report.players)} playing, {len(report.trainers)} training) "
          f"for {report.seconds:.0f} s")  # fmt: skip
    compute = report.compute_latencies()
    print(latency_line("compute changes (students and trainers)", compute))
    print(latency_line("  the trainers' own", np.array([x for d in report.trainers
                                                        for x in d.latencies])))  # fmt: skip
    print(latency_line("display changes (playing students)",
                       np.array([x for d in report.players for x in d.latencies])))  # fmt: skip
    for line in training_lines(report):
        print(line)
    errors = sorted({d.error for d in report.everyone if d.error})
    print(f"sessions with an error: {sum(1 for d in report.everyone if d.error)}")
    for e in errors[:3]:
        print(f"  session error: {e}")
    if not len(compute):
        return None
    p95 = float(np.percentile(compute, 95))
    verdict = p95 < TARGET_P95
    print(f"compute p95 {p95 * 1000:.0f} ms, target < {TARGET_P95 * 1000:.0f} ms: "
          f"{'PASS' if verdict else 'FAIL'}")  # fmt: skip
    return verdict


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its children (the forked processes), in MB."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = children.read_text().split() if children.exists() else []
    return rss_mb(pid) + sum(rss_mb(int(k)) for k in kids)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30, help="sessions in all")
    parser.add_argument("--think", type=float, nargs=2, default=(3.0, 10.0),
                        metavar=("LOW", "HIGH"), help="seconds between changes")  # fmt: skip
    parser.add_argument("--players", type=int, default=8, help="of them, watching the player")
    parser.add_argument("--trainers", type=int, default=2, help="of them, training")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0, help="of the think times")
    parser.add_argument("--num-procs", type=int, default=2, help="of the server started")
    parser.add_argument("--url", help="drive this server instead of starting one")
    args = parser.parse_args(argv)
    low, high = args.think
    if args.students < 1 or args.seconds <= 0 or not 0 <= low <= high:
        parser.error("--students and --seconds must be positive, --think LOW HIGH in order")
    if min(args.players, args.trainers) < 0 or args.players + args.trainers > args.students:
        parser.error("--players and --trainers are among the --students")
    return args


def main(argv=None) -> tuple[ClassReport, bool | None]:
    args = parse_args(argv)
    import_panel_models()
    procs = ["--num-procs", str(args.num_procs)]
    server, url = (None, args.url) if args.url else start_server(procs)
    where = args.url or f"flowscope serve --num-procs {args.num_procs} on {url}"
    print(f"server: {where}; {os.cpu_count()} cores, load average "
          f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} before")  # fmt: skip
    try:
        report = run_class(url, args.students, tuple(args.think), args.seconds, args.players,
                           args.trainers, args.seed)  # fmt: skip
        verdict = summary(report)
        print(f"load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())} after")
        if server:
            print(f"server RSS, all processes: {tree_rss_mb(server.pid):.0f} MB")
        return report, verdict
    finally:
        if server:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    _report, ok = main()
    sys.exit(0 if ok else 1)

"""What the processes, schedules and sources of docs/MATH.md §2.1, §2.2 and §5.1 cost in the app,
and how well their exact reverse runs land.

For each setting: the app's recompute at its defaults (``FlowState.recompute``: N = 2000,
T = 100, Euler ODE, torch on one thread as the server runs it), median of ``--repeats`` after
a warm-up, and the run's SW2 to fresh data over the noise floor (``with_sw2``: 1000 samples,
one ratio of single samples varies by about ±30 %).

    PYTHONPATH=. python benchmarks/bench_paths.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

SETTINGS = [
    ("fm", {"process": "fm"}),
    ("vp linear", {"process": "vp"}),
    ("sub-VP linear", {"process": "subvp"}),
    ("VE σ 0.01..10", {"process": "ve"}),
    ("EDM σ 0.002..10", {"process": "edm"}),
    ("vp sigmoid", {"process": "vp", "schedule": "sigmoid"}),
    ("vp shifted cosine (s = 2)", {"process": "vp", "schedule": "shifted-cosine"}),
    ("vp EDM's schedule", {"process": "vp", "schedule": "edm"}),
    ("vp drawn (linear, 8 points)", {"process": "vp", "schedule": "points"}),
    ("fm 8 gaussians → moons (1,024 pairs)", {"process": "fm", "source": "8gaussians",
                                              "dataset": "moons"}),
    ("fm circles → moons (7,168 pairs)", {"process": "fm", "source": "circles",
                                          "dataset": "moons"}),
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the server's setting on a small machine (app/server.py)

    from app.session.state import FlowState
    from models.run.reference import with_sw2

    print(f"{'setting':40s} {'recompute ms':>13s} {'SW2 / floor':>12s}")
    for name, settings in SETTINGS:
        state = FlowState(**settings)
        state.recompute()  # warm: kernels, the pair reduction's cache
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            state.recompute()
            times.append(1000 * (time.perf_counter() - start))
        ratio = with_sw2(state.result).sw2_ratio
        print(f"{name:40s} {statistics.median(times):13.0f} {ratio:12.2f}")


if __name__ == "__main__":
    main()

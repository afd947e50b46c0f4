"""Export speed: a 120-frame MP4 and GIF at 512 px per view of 2,000 particles.

The run is computed once beforehand (export never samples again); the figures are the export
alone, destination check and atomic rename included. Targets: MP4 < 5 s (aim 3 s), GIF < 10 s.

    PYTHONPATH=. python benchmarks/bench_export.py [--size 512] [--frames 120] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from app.export import ExportSettings, export
from app.export.raster import Rasterizer
from models.run.config import RunConfig
from models.run.simulate import simulate


def timed(fn, repeats: int) -> float:
    """Median wall time of fn() in seconds."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--particles", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    result = simulate(RunConfig(dataset="moons", steps=args.frames - 1, particles=args.particles))
    settings = ExportSettings(size=args.size, fps=25, trail=8)
    raster = Rasterizer(result, args.size, settings.trail)
    draw = timed(lambda: [raster.frame(i) for i in range(raster.n_frames)], args.repeats)
    h, w, _ = raster.shape
    print(f"{raster.n_frames} frames of {w}x{h} px ({args.size} px per view), "
          f"N = {args.particles}, trails of {settings.trail}")  # fmt: skip
    print(f"  drawing alone: {1000 * draw / raster.n_frames:6.1f} ms/frame")
    with tempfile.TemporaryDirectory() as folder:
        for fmt, target in (("mp4", 5.0), ("gif", 10.0)):
            out = Path(folder) / f"run.{fmt}"
            seconds = timed(lambda fmt=fmt, out=out: export(result, fmt, out, settings),
                            args.repeats)  # fmt: skip
            size = out.stat().st_size / 1e6
            verdict = "ok" if seconds < target else "OVER"
            print(f"  {fmt}: {seconds:5.2f} s  (target < {target:.0f} s: {verdict}), "
                  f"{size:.1f} MB")  # fmt: skip


if __name__ == "__main__":
    main()

"""Export a comparison (``models.compare.pair.RunPair``: runs A and B on the same noise) as
the single-run export writes one run (``app/export/__init__.py``): .npz, CSV, MP4, GIF or a
standalone HTML page.

- npz: each run's arrays as ``flowscope sample`` writes them, prefixed ``a_`` and ``b_``
  (``a_trajectories``, ``b_times``, ``a_exact_density``, ...), the timeline (``frames_a``,
  ``frames_b``, ``frame_times``), ``twin_distance`` (when N agree), ``sw2_ab``, and ``meta``:
  JSON {"a": A's meta, "b": B's meta, "changes": [[setting, A, B], ...], "shared": ...}.
- CSV: both runs' rows (A's, then B's) with a leading ``run`` column, "a" or "b"; the other
  columns are the single-run CSV's.
- MP4, GIF: A and B side by side, each drawn as the single-run export draws it, and the
  density A − B, one frame per step of the timeline (``app/export/pair_frames.py``).
- HTML: the same three in the page's own figures, played from disk (``pair_page.py``).

Checked before any work, written atomically, bounded and cancelled as ``export`` is.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from app.export import Cancelled, ExportSettings, check_format
from app.export.bound import TooLarge, bounded, check_written, estimate, megabytes
from app.output import atomic_output, check_output

RUNS = ("a", "b")
CSV_HEADER = "run,"  # then the single-run CSV's header (app/export/data.py)


def export_pair(pair, fmt: str, path: str | os.PathLike, settings: ExportSettings | None = None,
                progress=None, arrows=None, max_bytes: int | None = None,
                should_stop=None) -> Path:  # fmt: skip
    """Write the comparison ``pair`` as ``fmt`` to ``path``; returns the path written.

    As :func:`app.export.export` for one run: ``settings`` draw both runs; ``arrows`` is
    (A's overlay fields, B's), either None, or None for neither; ``progress(done, total)`` is
    called as steps of the timeline are drawn (total: the timeline's length, 1 for npz and
    HTML, the rows' frames for CSV), and raising :class:`app.export.Cancelled` (or anything)
    in it stops the export and leaves no file; ``should_stop()`` returning True does the same
    (it raises Cancelled). ``max_bytes`` bounds the file and a GIF's frames held while it is
    made (:class:`app.export.TooLarge`, one line). A bad format, setting or destination is a
    ValueError (one line) before any drawing.
    """
    settings = settings or ExportSettings()
    check_format(fmt)
    settings.validate()
    check_output(path)
    if max_bytes is not None:
        check_pair_estimate(pair, fmt, settings, max_bytes)
    progress = stoppable(progress, should_stop)
    with atomic_output(path, suffix="." + fmt) as tmp:
        if max_bytes is not None:
            progress = bounded(progress, tmp, fmt, max_bytes)
        write_pair(pair, fmt, tmp, settings, progress, arrows)
        if max_bytes is not None:
            check_written(tmp, fmt, max_bytes)
    return Path(path)


def stoppable(progress, should_stop):
    """``progress`` that first raises :class:`Cancelled` once ``should_stop()`` says so."""
    if should_stop is None:
        return progress

    def watch(done: int, total: int) -> None:
        if should_stop():
            raise Cancelled
        if progress is not None:
            progress(done, total)

    return watch


def write_pair(pair, fmt: str, path: Path, settings: ExportSettings, progress=None,
               arrows=None) -> None:  # fmt: skip
    """Write ``fmt`` to ``path`` as it is (no checks, not atomic: see :func:`export_pair`)."""
    if progress is not None:
        progress(0, 1)  # a stop asked before the first frame lands here
    if fmt == "npz":
        write_pair_npz(pair, path, progress)
    elif fmt == "csv":
        write_pair_csv(pair, path, progress)
    elif fmt == "html":  # imports Panel (the app's views): only when asked for
        from app.export.pair_page import write_pair_html

        write_pair_html(pair, path, settings, arrows, progress)
    else:
        from app.export.video import write_gif, write_mp4

        raster = pair_rasterizer(pair, settings, arrows)
        (write_mp4 if fmt == "mp4" else write_gif)(raster, path, settings.fps, progress)


def pair_rasterizer(pair, s: ExportSettings, arrows=None):
    """The :class:`app.export.pair_frames.PairRasterizer` of ``pair`` drawn with ``s``."""
    from app.export.pair_frames import PairRasterizer

    return PairRasterizer(pair, s.size, s.trail, s.density_source, contours=s.contours,
                          arrows=arrows or (None, None), overlay=s.overlay,
                          shade=s.shade)  # fmt: skip


# --- the numbers ----------------------------------------------------------------------------
def pair_meta(pair) -> str:
    """The comparison's ``meta``: JSON {"a": A's meta, "b": B's, "changes", "shared"}."""
    changes = [[name, va, vb] for name, va, vb in pair.changes]
    return json.dumps({"a": json.loads(pair.a.meta), "b": json.loads(pair.b.meta),
                       "changes": changes, "shared": pair.shared},
                      sort_keys=True, default=str)  # fmt: skip


def pair_arrays(pair) -> dict[str, np.ndarray]:
    """The arrays of the comparison's .npz (see the module's docstring)."""
    from app.export.data import npz_arrays

    arrays: dict[str, np.ndarray] = {}
    for name, run in zip(RUNS, (pair.a, pair.b), strict=True):
        for key, value in npz_arrays(run).items():
            if key != "meta":  # the runs' metas go into the pair's
                arrays[f"{name}_{key}"] = value
    arrays |= {"frames_a": np.asarray(pair.frames.a, np.int64),
               "frames_b": np.asarray(pair.frames.b, np.int64),
               "frame_times": np.asarray(pair.frames.times, np.float64),
               "sw2_ab": np.asarray(pair.sw2, np.float64)}  # fmt: skip
    if pair.twin_distance is not None:
        arrays["twin_distance"] = np.asarray(pair.twin_distance, np.float64)
    arrays["meta"] = np.asarray(pair_meta(pair))
    return arrays


def write_pair_npz(pair, path: Path, progress=None) -> None:
    """Compressed .npz of :func:`pair_arrays` (through a file object, as ``write_npz``)."""
    with open(path, "wb") as f:
        np.savez_compressed(f, **pair_arrays(pair))
    if progress is not None:
        progress(1, 1)


def write_pair_csv(pair, path: Path, progress=None) -> None:
    """A's rows, then B's, each frame-major, each row the single-run CSV's behind 'a,' or
    'b,'; ``progress`` counts the frames of both runs."""
    from app.export.data import CSV_HEADER as RUN_HEADER
    from app.export.data import write_frame

    total = len(pair.a.times) + len(pair.b.times)
    done = 0
    with open(path, "w", newline="") as f:
        f.write(CSV_HEADER + RUN_HEADER + "\n")
        for name, run in zip(RUNS, (pair.a, pair.b), strict=True):
            for i in range(len(run.times)):
                rows = io.StringIO()
                write_frame(rows, run, i)
                f.writelines(f"{name},{row}" for row in rows.getvalue().splitlines(True))
                done += 1
                if progress is not None:
                    progress(done, total)


# --- the bound ------------------------------------------------------------------------------
def pair_estimate(pair, fmt: str, settings: ExportSettings) -> int | None:
    """Bytes the export will take, where known before it is written (as
    ``app.export.bound.estimate``): the CSV's rows of both runs, and the paletted frames of
    the whole (wider) picture a GIF holds in memory; None for the other formats."""
    if fmt == "csv":
        rows = sum(len(run.times) * run.trajectories.shape[1] for run in (pair.a, pair.b))
        return sum(estimate(run, "csv", settings) for run in (pair.a, pair.b)) + 2 * rows
    if fmt == "gif":
        from app.export.pair_frames import pair_shape

        height, width, _ = pair_shape(pair, settings.size, settings.density_source)
        return len(pair.frames.times) * height * width  # one byte a pixel
    return None


def check_pair_estimate(pair, fmt: str, settings: ExportSettings, max_bytes: int) -> None:
    """Raise :class:`TooLarge` (one line, what would fit) if the export is known to pass
    ``max_bytes`` before any drawing."""
    size = pair_estimate(pair, fmt, settings)
    if size is None or size <= max_bytes:
        return
    bound = megabytes(max_bytes)
    if fmt == "csv":
        raise TooLarge(f"A CSV of this comparison would be about {megabytes(size)}, over the "
                       f"{bound} an export may be: export it as npz (compressed), or runs with "
                       "fewer steps or particles.")  # fmt: skip
    raise TooLarge(f"A GIF of this comparison ({len(pair.frames.times)} frames, 5 views at "
                   f"{settings.size} px) would hold about {megabytes(size)} while it is made, "
                   f"over the {bound} an export may take: export it as MP4, at a smaller "
                   "size, or runs with fewer steps.")  # fmt: skip

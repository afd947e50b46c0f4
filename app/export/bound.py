"""The bound on one export where a server makes and keeps it (the app's menu).

A capped run (N x (T+1) = 4,000,000 positions) makes a CSV of about 210 MB, and a long GIF at a
large size holds every paletted frame in memory until Pillow writes it. An export is refused
in one line, naming what would fit, when it would pass ``max_bytes``: before any drawing where
its size is known in advance (CSV rows, the GIF's frames), else as soon as the file being
written passes it, and at the latest once it is written. The command line has no bound.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from models.run.result import RunResult

CSV_SAMPLE = 8  # frames formatted to estimate a CSV: row lengths vary with the positions


class TooLarge(ValueError):
    """An export past the bound; its message (one line) says what would fit."""


def megabytes(n: int) -> str:
    return f"{n / 1e6:.3g} MB"


def estimate(result: RunResult, fmt: str, settings) -> int | None:
    """Bytes an export will take before it is written, where known in advance: the CSV's
    rows (a few frames, formatted, stand for the others) and the paletted
    frames a GIF holds in memory; None for the other formats."""
    if fmt == "csv":
        from app.export.data import CSV_HEADER, write_frame

        n_frames = len(result.times)
        frames = np.unique(np.linspace(0, n_frames - 1, CSV_SAMPLE).round().astype(int))
        sample = io.StringIO()
        for i in frames:
            write_frame(sample, result, int(i))
        per_frame = len(sample.getvalue().encode()) / len(frames)
        return round(len(CSV_HEADER) + 1 + per_frame * n_frames)
    if fmt == "gif":
        from app.export.caption import Caption

        height = settings.size + Caption(result, settings.size, settings.density_source).height
        return len(result.times) * height * 2 * settings.size  # one byte a pixel
    return None


def check_estimate(result: RunResult, fmt: str, settings, max_bytes: int) -> None:
    """Raise :class:`TooLarge` if the export is known to pass ``max_bytes`` before drawing."""
    size = estimate(result, fmt, settings)
    if size is None or size <= max_bytes:
        return
    bound = megabytes(max_bytes)
    if fmt == "csv":
        raise TooLarge(
            f"A CSV of this run would be about {megabytes(size)}, over the {bound} "
            "an export may be here: export it as npz (compressed), or a run with "
            "fewer steps or particles."
        )
    frames = len(result.times)
    raise TooLarge(
        f"A GIF of {frames} frames at {settings.size} px would hold about "
        f"{megabytes(size)} while it is made, over the {bound} an export may take "
        "here: export it as MP4, at a smaller size, or a run with fewer steps."
    )


def check_written(path: Path, fmt: str, max_bytes: int) -> None:
    """Raise :class:`TooLarge` if the file at ``path`` has passed ``max_bytes``."""
    if path.exists() and path.stat().st_size > max_bytes:
        smaller = (
            "fewer steps or particles"
            if fmt in ("npz", "csv", "html")
            else "a smaller size or fewer steps"
        )
        raise TooLarge(
            f"This {fmt.upper()} grew over the {megabytes(max_bytes)} an export may "
            f"be here: export a run with {smaller}."
        )


def bounded(progress, path: Path, fmt: str, max_bytes: int):
    """``progress`` that also stops the export once the file being written passes the bound
    (MP4 and CSV grow as frames are drawn)."""

    def watch(done: int, total: int) -> None:
        check_written(path, fmt, max_bytes)
        if progress is not None:
            progress(done, total)

    return watch

"""Export a run as the app shows it: MP4, GIF, a standalone HTML page, .npz or CSV.

Every format is drawn from a finished :class:`models.run.result.RunResult` and display settings;
nothing is sampled again. ``export`` checks the destination first and writes atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.export.bound import TooLarge as TooLarge  # what a bounded export raises
from app.export.bound import bounded, check_estimate, check_written
from app.output import atomic_output, check_output
from models.run.result import RunResult

FORMATS = ("mp4", "gif", "html", "npz", "csv")
DENSITY_SOURCES = ("particles", "pde", "exact", "posterior")  # the app's density_source values
# the app's overlay values (FlowState.overlay; tests/test_export_overlays.py checks they agree)
OVERLAYS = ("none", "velocity", "score", "drift", "drift_current", "diffusion_current",
            "current", "difference")  # fmt: skip


class Cancelled(Exception):
    """Raised by a progress callback to stop an export; no file is left behind."""


@dataclass(frozen=True)
class ExportSettings:
    """How the run is drawn: ``size`` px per view (height), ``fps``, ``trail`` frames, the
    heatmap's ``density_source``, and what the page draws over the views: ``contours`` of the
    exact density, the ``overlay``'s arrows, particles coloured by their carried log-density
    (``shade``). The names and bounds are the app's (``FlowState``, the URL's parameters)."""

    size: int = 512
    fps: int = 25
    trail: int = 8
    density_source: str = "particles"
    contours: bool = False
    overlay: str = "none"
    shade: bool = False

    def validate(self) -> None:
        """Raise ValueError with a one-line message for a bad setting."""
        checks = [
            (64 <= self.size <= 2048, f"size must be in 64..2048 px, got {self.size}"),
            (1 <= self.fps <= 60, f"fps must be in 1..60, got {self.fps}"),
            (0 <= self.trail <= 30, f"trail must be in 0..30 frames, got {self.trail}"),
            (
                self.density_source in DENSITY_SOURCES,
                f"density source must be one of {DENSITY_SOURCES}, got {self.density_source!r}",
            ),
            (self.overlay in OVERLAYS, f"overlay must be one of {OVERLAYS}, got {self.overlay!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")


def format_of(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format of an export to ``path``: ``fmt``, which must be its name's suffix, or the
    suffix itself. A file whose name says one format and holds another opens as neither, so
    a disagreement, or a name that names no format, is a ValueError (one line)."""
    name = Path(path).name
    suffix = Path(path).suffix.lower().lstrip(".")
    if fmt is not None:
        check_format(fmt)
        if suffix != fmt:
            raise ValueError(f"--format {fmt} does not match the file name {name!r}: "
                             f"name it *.{fmt}, or leave --format out")  # fmt: skip
        return fmt
    if suffix not in FORMATS:
        endings = ", ".join("." + f for f in FORMATS)
        raise ValueError(f"cannot tell the format of {name!r}: end its name in one of "
                         f"{endings}, or give --format")  # fmt: skip
    return suffix


def export(result: RunResult, fmt: str, path: str | os.PathLike,
           settings: ExportSettings | None = None, progress=None, arrows=None,
           max_bytes: int | None = None) -> Path:  # fmt: skip
    """Write ``result`` as ``fmt`` to ``path``; returns the path written.

    ``arrows`` are the overlay fields of the run (``FlowState.arrows``); without them, or
    without the overlay's kind among them, no arrows are drawn (as on the page).

    ``progress(done, total)`` is called as frames are drawn; raising :class:`Cancelled` (or
    anything else) in it stops the export and leaves no file. Raises ValueError (one line) for
    a bad format, setting or destination, before any drawing.

    ``max_bytes`` bounds the file (and a GIF's frames held while it is made): past it,
    :class:`TooLarge` (one line, naming what would fit) and no file; see ``bound.py``.
    """
    settings = settings or ExportSettings()
    check_format(fmt)
    settings.validate()
    check_output(path)
    if max_bytes is not None:
        check_estimate(result, fmt, settings, max_bytes)
    with atomic_output(path, suffix="." + fmt) as tmp:
        if max_bytes is not None:
            progress = bounded(progress, tmp, fmt, max_bytes)
        _write(result, fmt, tmp, settings, progress, arrows)
        if max_bytes is not None:
            check_written(tmp, fmt, max_bytes)
    return Path(path)


def _write(result: RunResult, fmt: str, tmp: Path, s: ExportSettings, progress, arrows) -> None:
    if fmt in ("npz", "csv"):
        from app.export.data import write_csv, write_npz

        (write_npz if fmt == "npz" else write_csv)(result, tmp, progress)
    elif fmt == "html":  # imports Panel (the app's views): only when asked for
        from app.export.page import write_html

        write_html(result, tmp, s, arrows, progress)
    else:
        from app.export.raster import Rasterizer
        from app.export.video import write_gif, write_mp4

        raster = Rasterizer(result, s.size, s.trail, s.density_source, contours=s.contours,
                            arrows=arrows, overlay=s.overlay, shade=s.shade)  # fmt: skip
        (write_mp4 if fmt == "mp4" else write_gif)(raster, tmp, s.fps, progress)

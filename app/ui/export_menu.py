"""The app's Export menu: format, size, fps; a progress bar and cancel; then a download.

It exports the run on screen (``state.result``) with the display settings on screen (trail,
density source, contours, overlay, shading), so the file shows what the page shows, and
nothing is sampled again.

Rendering runs on a thread of its own per export, not in the compute turns of
app/session/runner.py: an MP4 takes seconds, and in a turn it would hold up every session's
recomputes. It needs no torch (numpy, Pillow, an ffmpeg subprocess), so it does not start a
second OpenMP team competing with the runs.

The server keeps an export only until it is downloaded (the transfer reads it, then deletes it,
and the page lets go of the copy it sent) or the session ends, and one export may take at most
``MAX_EXPORT_BYTES``: a larger request is refused in one line that says what would fit.
"""

from __future__ import annotations

import atexit
import io
import logging
import shutil
import tempfile
import threading
from pathlib import Path

import panel as pn
import param

from app.export import FORMATS, Cancelled, ExportSettings, TooLarge, export
from app.export.pair import export_pair
from app.session.state import FlowState

log = logging.getLogger(__name__)

SIZES = {"256 px": 256, "400 px": 400, "512 px": 512, "720 px": 720, "1080 px": 1080}
PICTURES = ("mp4", "gif", "html")  # formats that size and fps apply to
# One export's file (and a GIF's frames held while it is made), per session. A capped run's
# npz fits; its CSV (about 210 MB) does not, nor a long GIF at a large size.
MAX_EXPORT_BYTES = 100_000_000
# The export folders of sessions still open. A server that stops runs no session-end
# callbacks, so what is left here is removed as the process exits.
_OPEN_FOLDERS: set[Path] = set()


@atexit.register
def _remove_open_folders() -> None:
    for folder in list(_OPEN_FOLDERS):
        shutil.rmtree(folder, ignore_errors=True)


class ExportMenu(pn.viewable.Viewer):
    """Export controls for one session. ``schedule(fn)`` runs fn on the session thread."""

    state = param.ClassSelector(class_=FlowState)
    running = param.Boolean(default=False, doc="An export is rendering")

    def __init__(self, schedule=None, max_bytes: int = MAX_EXPORT_BYTES, comparison=None,
                 **params):  # fmt: skip
        """``comparison`` (``app/session/compare.py``): in compare mode the pair on screen is
        exported, A and B side by side with their difference (``app/export/pair.py``)."""
        super().__init__(**params)
        self.comparison = comparison
        self._schedule = schedule or (lambda fn: fn())
        self.max_bytes = max_bytes
        self._cancel = threading.Event()
        self._folder: Path | None = None  # made at the first export, removed with the session
        self._ready: Path | None = None  # the finished export, until it is downloaded
        self.thread: threading.Thread | None = None
        self.format = pn.widgets.Select(label="format", options=list(FORMATS), value="mp4",
                                        width=80)  # fmt: skip
        self.size = pn.widgets.Select(label="size (each view)", options=SIZES, value=512, width=100)
        self.fps = pn.widgets.IntInput(label="fps", start=1, end=60, value=self.state.fps,
                                       width=70)  # fmt: skip
        self.start = pn.widgets.Button(label="Export", color="primary", width=90,
                                       align="end")  # fmt: skip
        self.stop = pn.widgets.Button(label="Cancel", width=80, align="end", visible=False)
        self.progress = pn.indicators.Progress(value=0, max=100, width=160, visible=False,
                                               align="center")  # fmt: skip
        # the file is read at the click (callback), not when it is offered: see _hand_over
        self.download = pn.widgets.FileDownload(label="Download", visible=False, width=420,
                                                align="end", color="success",
                                                callback=self._hand_over)  # fmt: skip
        self.message = pn.pane.Alert("", alert_type="danger", visible=False, margin=(0, 10),
                                     sizing_mode="stretch_width")  # fmt: skip
        self.start.on_click(self._start)
        self.stop.on_click(lambda _event: self._cancel.set())
        self.format.param.watch(self._sync_format, "value")

    def _sync_format(self, *_events) -> None:
        picture = self.format.value in PICTURES
        self.size.disabled = self.fps.disabled = not picture

    def settings(self) -> ExportSettings:
        s = self.state
        return ExportSettings(size=self.size.value, fps=self.fps.value, trail=s.trail,
                              density_source=s.density_source, contours=s.contours,
                              overlay=s.overlay, shade=s.shade)  # fmt: skip

    def file_name(self, fmt: str) -> str:
        config = self.state.result.config
        kind = "compare-" if self._pair() is not None else ""
        return f"flowscope-{kind}{config.process}-{config.dataset}-{config.direction}.{fmt}"

    def _pair(self):
        """The pair on screen in compare mode, else None."""
        c = self.comparison
        return c.pair if c is not None and c.on else None

    # --- on the session thread --------------------------------------------------------------
    def _start(self, *_event) -> None:
        if self.running or self.state.result is None:
            return
        fmt = self.format.value
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="flowscope-export-"))
            _OPEN_FOLDERS.add(self._folder)
        out = self._folder / self.file_name(fmt)
        for old in self._folder.iterdir():  # one export kept per session
            old.unlink(missing_ok=True)
        self._ready = None
        self._cancel.clear()
        self.running = True
        self.message.visible = self.download.visible = False
        self.start.disabled, self.stop.visible = True, True
        self.progress.value, self.progress.visible = 0, True
        pair = self._pair()
        shown, arrows = (self.state.result, self.state.arrows) if pair is None else \
            (pair, (self.state.arrows, self.comparison.b.arrows))  # fmt: skip
        args = (shown, fmt, out, self.settings(), arrows, self.max_bytes)
        self.thread = threading.Thread(target=self._work, args=args, daemon=True,
                                       name="flowscope-export")  # fmt: skip
        self.thread.start()

    def _finish(self, out: Path | None, error: str = "") -> None:
        self.running = False
        self.start.disabled, self.stop.visible, self.progress.visible = False, False, False
        if out is not None:
            self._ready = out
            size = out.stat().st_size / 1e6
            self.download.param.update(filename=out.name, visible=True,
                                       label=f"Download {out.name} ({size:.1f} MB)")  # fmt: skip
        if error:
            self._say(error)

    def _say(self, text: str, alert_type: str = "danger") -> None:
        self.message.param.update(object=text, alert_type=alert_type, visible=True)

    def _hand_over(self) -> io.BytesIO:
        """The file for the download (Panel's click callback): read, then deleted at once, so
        that no export outlives its download. Its bytes go out in the widget's ``data``, which
        :meth:`_handed_over` clears once sent."""
        out, self._ready = self._ready, None
        if out is None:  # a second click before the button hid: the file is gone
            raise ValueError("this export was downloaded already; export again for another copy")
        data = io.BytesIO(out.read_bytes())
        out.unlink(missing_ok=True)
        self._tell(lambda: self._handed_over(out.name))
        return data

    def _handed_over(self, name: str) -> None:
        """After the transfer (a later tick, so the browser has the data first): forget the
        copy sent, and say that the server keeps none."""
        self.download.param.update(data="", visible=False)  # Bokeh's model takes no None
        self._say(f"Downloaded {name}; the server keeps no copy: export again for another.",
                  "info")  # fmt: skip

    def _show_progress(self, percent: int) -> None:
        if self.running:
            self.progress.value = percent

    # --- on the export thread ---------------------------------------------------------------
    def _tell(self, fn) -> None:
        """Hand fn to the session thread; a session closed meanwhile has nobody to tell."""
        try:
            self._schedule(fn)
        except Exception:
            log.debug("export finished after its session closed", exc_info=True)

    def _work(self, result, fmt: str, out: Path, settings: ExportSettings, arrows,
              max_bytes: int) -> None:  # fmt: skip
        shown = [-1]

        def progress(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise Cancelled
            percent = int(100 * done / max(total, 1))
            if percent >= shown[0] + 5 or done == total:  # a message per 5 %, not per frame
                shown[0] = percent
                self._tell(lambda: self._show_progress(percent))

        try:
            write = export_pair if hasattr(result, "frames") else export  # a pair, or one run
            write(result, fmt, out, settings, progress, arrows, max_bytes)
        except Cancelled:
            self._tell(lambda: self._finish(None, "Export cancelled."))
            return
        except TooLarge as exc:  # its message says what would fit
            refused = str(exc)
            self._tell(lambda: self._finish(None, refused))
            return
        except Exception as exc:  # any failure: one line, nothing half-written offered
            log.exception("export failed")
            line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._tell(lambda: self._finish(None, f"Export failed: {line}"))
            return
        self._tell(lambda: self._finish(out))

    def cancel_and_clean(self) -> None:
        """On session end: stop an export in flight and remove this session's files."""
        self._cancel.set()
        self._ready = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            _OPEN_FOLDERS.discard(self._folder)

    def __panel__(self):
        return pn.Column(
            pn.Row(self.format, self.size, self.fps, self.start, self.stop, self.progress,
                   self.download),
            self.message,
        )  # fmt: skip

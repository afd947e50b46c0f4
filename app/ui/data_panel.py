"""'Your data': draw points on the particle view, upload a file, undo, clear, fit, download.

Drawing uses Bokeh's FreehandDrawTool: the stroke is drawn in the browser only (its source is
not synced, so a drag sends nothing while it lasts); when the drag ends, one small message
carries the finished stroke to the server, which lays down points along it with the brush's
width and density. Every failure (a bad file, too many points) is one line in the notice and
leaves the data set, the run and the view exactly as they were.
"""

from __future__ import annotations

import io

import numpy as np
import panel as pn
import param
import torch
from bokeh.models import ColumnDataSource, FreehandDrawTool

from app.session.state import FlowState
from app.session.userdata import (
    LINK_MAX_POINTS,
    MAX_UPLOAD_BYTES,
    check_labels,
    check_points,
    fit_into_view,
    outside_share,
    points_csv,
    stroke_points,
)
from app.ui import client
from models.datasets import make_dataset
from models.pointfiles import read_labelled_points

# A text pane's <pre> keeps its lines whole, and the sidebar cut them at its edge: wrap them.
# (A style on the pane reaches only its outer element, not the <pre> in its shadow root.)
WRAP = ["pre { white-space: pre-wrap; overflow-wrap: anywhere; }"]
BRUSH_CLASSES = 8  # the brush's classes: the first colours of the particles' palette
COLOUR_NAMES = ("blue", "orange", "green", "red", "purple", "brown", "pink", "grey")


class DataPanel(pn.viewable.Viewer):
    """The controls of the user's own data set, bound to a state and a particle figure."""

    state = param.ClassSelector(class_=FlowState)
    brush_width = param.Number(default=0.4, bounds=(0.05, 2.0), step=0.05,
                               doc="Width of the brush, in data units")  # fmt: skip
    brush_density = param.Integer(default=40, bounds=(5, 200), step=5,
                                  doc="Points per unit length of stroke")  # fmt: skip
    brush_class = param.Integer(default=0, bounds=(0, BRUSH_CLASSES - 1),
                                doc="The class (colour) of the points a stroke lays down: the "
                                "classes guidance steers toward")  # fmt: skip
    fit = param.Boolean(default=False, doc="Move and scale uploaded points into the view")
    status = param.String(default="")

    def __init__(self, figure, **params):
        super().__init__(**params)
        # (data set, points, their labels) before each change, for undo
        self._history: list[tuple[str, np.ndarray | None, np.ndarray | None]] = []
        self._strokes = ColumnDataSource({"xs": [], "ys": []}, name="strokes")
        self._strokes.syncable = False  # the stroke in progress stays in the browser
        self._committed = ColumnDataSource({"xs": [], "ys": []}, name="committed_stroke")
        line = figure.multi_line("xs", "ys", source=self._strokes, line_color="#222222",
                                 line_width=3, line_alpha=0.6)  # fmt: skip
        self.tool = FreehandDrawTool(renderers=[line], num_objects=0,
                                     description="Draw your own data")  # fmt: skip
        figure.add_tools(self.tool)
        commit = client.callback("commit_stroke", tool=self.tool, strokes=self._strokes,
                                 committed=self._committed)  # fmt: skip
        figure.js_on_event("panend", commit)
        figure.js_on_event("tap", commit)
        self._committed.on_change("data", self._on_stroke)
        self.draw = pn.widgets.Toggle(label="✎ draw on the particle view", color="primary",
                                      variant="outline", sizing_mode="stretch_width",
                                      css_classes=["flowscope-draw"])  # fmt: skip
        # in the browser: the toolbar keeps one drag tool active (the pan tool goes off)
        self.draw.jscallback(value=client.script("draw_toggle"), args={"tool": self.tool})
        self.upload = pn.widgets.FileInput(accept=".csv,.txt,.npy,.npz", multiple=False,
                                           sizing_mode="stretch_width",
                                           css_classes=["flowscope-upload"])  # fmt: skip
        # an empty file arrives as value None with a filename: watch both
        self.upload.param.watch(self._on_upload, ["value", "filename"])
        # the page refuses a file over the limit before sending it (static/upload_guard.js)
        self._refused = ColumnDataSource({"size": []}, name="refused_upload")
        self._refused.on_change("data", self._on_refused)
        self.undo = pn.widgets.Button(label="undo", sizing_mode="stretch_width")
        self.clear = pn.widgets.Button(label="clear", sizing_mode="stretch_width")
        self.undo.on_click(lambda _e: self.undo_last())
        self.clear.on_click(lambda _e: self.clear_points())
        self.download = pn.widgets.FileDownload(
            callback=self._csv,
            filename="flowscope-data.csv",
            label="download the data set (CSV)",
            color="light",
            sizing_mode="stretch_width",
        )
        self.state.param.watch(self._describe, ["points", "dataset"])
        self._describe()

    def on_page_ready(self, doc) -> None:
        """Register the page-side setup of drawing (``drawing_ready.js``) with a served
        document."""
        doc.js_on_event("document_ready", client.callback("drawing_ready", tool=self.tool))
        doc.add_root(self._refused)  # nothing in the layout holds it: the document must
        doc.js_on_event(
            "document_ready",
            client.callback("upload_guard", refused=self._refused, limit=MAX_UPLOAD_BYTES),
        )

    # --- changes to the data set ------------------------------------------------------------
    def _current_points(self) -> np.ndarray | None:
        return self.state.points if self.state.dataset == "points" else None

    def _current_labels(self, n: int) -> np.ndarray:
        """The labels of the n points on screen (0 where they have none)."""
        labels = self.state.user_labels() if self.state.dataset == "points" else None
        return np.zeros(n, np.int64) if labels is None else labels

    def use(self, points: np.ndarray, labels: np.ndarray | None = None) -> None:
        """Make ``points`` (with ``labels``, or one class) the data set (one recompute),
        remembering the previous one."""
        s = self.state
        self._history.append((s.dataset, s.points, s.point_labels))
        s.param.update(points=points, point_labels=check_labels(labels, len(points)),
                       dataset="points")  # fmt: skip

    def add_stroke(self, xs, ys) -> None:
        new = stroke_points(xs, ys, self.brush_width, self.brush_density,
                            seed=len(self._history))  # fmt: skip
        if len(new) == 0:
            return
        current = self._current_points()
        points = new if current is None else np.concatenate([current, new])
        fresh = np.full(len(new), self.brush_class, np.int64)
        labels = fresh if current is None else \
            np.concatenate([self._current_labels(len(current)), fresh])  # fmt: skip
        try:
            points = check_points(points, "drawn points")
        except ValueError as exc:
            self.state.notice = str(exc)
            return
        self.use(points, labels)

    def load_upload(self, data: bytes, filename: str) -> None:
        """Read an uploaded file; on any problem say so in one line and change nothing."""
        try:
            if len(data) > MAX_UPLOAD_BYTES:
                raise ValueError(f"{filename}: {len(data) / 2**20:.1f} MB; files up to "
                                 f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB are accepted")  # fmt: skip
            points, labels = read_labelled_points(data, filename)
            points = check_points(points, filename, bounded=not self.fit)
            if self.fit:
                try:
                    points = fit_into_view(points, self.state.config().extent)
                except ValueError as exc:
                    raise ValueError(f"{filename}: {exc}") from None
            elif outside_share(points, self.state.config().extent) > 0.5:
                raise ValueError(f"{filename}: most points lie outside the view (±4); tick "
                                 "'fit into the view' and upload again")  # fmt: skip
            points = check_points(points, filename)
        except Exception as exc:  # one line, whatever the reader raised; nothing changes
            text = str(exc).strip().splitlines()
            self.state.notice = f"Upload refused: {text[0] if text else type(exc).__name__}"
            return
        self.use(points, labels)

    def undo_last(self) -> None:
        if not self._history:
            return
        dataset, points, labels = self._history.pop()
        self.state.param.update(points=points, point_labels=labels, dataset=dataset)

    def clear_points(self) -> None:
        if self.state.points is None:
            return
        self._history.clear()
        fallback = "8gaussians" if self.state.dataset == "points" else self.state.dataset
        self.state.param.update(points=None, point_labels=None, dataset=fallback)

    # --- widget callbacks -------------------------------------------------------------------
    def _on_stroke(self, _attr, _old, new) -> None:
        if new.get("xs"):
            self.add_stroke(new["xs"][0], new["ys"][0])

    def _on_refused(self, _attr, _old, new) -> None:
        """The page refused a file over the limit before sending it (its size and name: the
        page's word, shown as plain text like every notice)."""
        try:
            size, name = float(new["size"][0]), str(new["name"][0])[:80]  # plain text below
        except (KeyError, IndexError, TypeError, ValueError):
            return
        self.state.notice = (f"Upload refused: {name}: {size / 2**20:.1f} MB; files up to "
                             f"{MAX_UPLOAD_BYTES / 2**20:.0f} MB are accepted")  # fmt: skip

    def _on_upload(self, *_events) -> None:
        if self.upload.value is None and not self.upload.filename:
            return
        key = (id(self.upload.value), self.upload.filename)
        if key == getattr(self, "_last_upload", None):  # value and filename came one by one
            return
        self._last_upload = key
        self.load_upload(self.upload.value or b"", self.upload.filename or "upload")
        # Empty the file input: picking the same file again (after clear or undo) changes
        # nothing in it, so the page would send nothing and the upload would be lost
        self.upload.clear()
        self._last_upload = None

    def _csv(self) -> io.StringIO:
        points = self._current_points()
        if points is None:  # a built-in data set: fresh samples of it, as its field sees it
            generator = torch.Generator().manual_seed(self.state.seed)
            points, labels = make_dataset(self.state.dataset).sample(2000, generator)
            return io.StringIO(points_csv(points.double().numpy(), labels.numpy()))
        return io.StringIO(points_csv(points, self.state.user_labels()))

    def _describe(self, *_events) -> None:
        points = self.state.points
        if points is None:
            self.status = "No points of your own yet: draw, or upload a CSV / .npy / .npz file."
        elif len(points) > LINK_MAX_POINTS:
            self.status = (
                f"{len(points):,} points: too many to keep in the link (at most "
                f"{LINK_MAX_POINTS:,}); it keeps the other settings and opens with "
                "a built-in data set. Download the points as CSV to keep them."
            )
        else:
            self.status = f"{len(points):,} points, kept in the page's link."

    def __panel__(self):
        return pn.Column(
            self.draw,
            pn.Param(self, parameters=["brush_class", "brush_width", "brush_density"],
                     show_name=False,
                     widgets={"brush_class": {"type": pn.widgets.Select,
                                              "name": "brush class (colour)",
                                              "options": {f"class {k} ({c})": k for k, c
                                                          in enumerate(COLOUR_NAMES)}},
                              "brush_width": {"type": pn.widgets.FloatSlider,
                                              "name": "brush width"},
                              "brush_density": {"type": pn.widgets.IntSlider,
                                                "name": "brush density (points per unit)"}}),
            pn.pane.Str("Upload (.csv with x,y or x,y,label columns, .npy, .npz; up to "
                        f"{MAX_UPLOAD_BYTES // 2**20} MB):", styles={"font-size": "12px"},
                        stylesheets=WRAP),
            self.upload,
            pn.Param(self, parameters=["fit"], show_name=False,
                     widgets={"fit": {"type": pn.widgets.Checkbox,
                                      "name": "fit into the view"}}),
            pn.Row(self.undo, self.clear),
            self.download,
            pn.pane.Str(self.param.status, styles={"font-size": "12px", "color": "#555"},
                        stylesheets=WRAP),
            sizing_mode="stretch_width",
        )  # fmt: skip

"""The drawn schedule: λ(t) with control points the user drags, adds and removes.

The points live in the page (Bokeh's PointDrawTool moves them there); each finished drag, tap or
deletion reaches the server once, where the new points are checked as a whole
(``models.schedules.DrawnSchedule``): a good drawing becomes ``state.schedule_points`` (a
recompute), a bad one is refused with a one-line notice and the points go back to the schedule
in use, so the run on screen stays.
"""

from __future__ import annotations

import numpy as np
import panel as pn
import param
import torch
from bokeh.models import ColumnDataSource, PointDrawTool
from bokeh.plotting import figure

from app.session.path_settings import SCHEDULE_LABELS
from app.session.state import FlowState
from models.schedules import format_points, make_schedule, parse_points

LAMBDA_RANGE = (-17.0, 15.0)  # the plot's λ axis: the named schedules' λ(t) fit in it
CURVE_TIMES = np.linspace(0.0, 1.0, 201)
NAMED = {label: name for label, name in SCHEDULE_LABELS.items() if name != "points"}


class ScheduleEditor(pn.viewable.Viewer):
    """λ(t) of the drawn schedule, its control points draggable; shown while it is in use."""

    state = param.ClassSelector(class_=FlowState)

    def __init__(self, **params):
        super().__init__(**params)
        self.curve = ColumnDataSource({"t": [], "lam": []}, name="drawn_curve")
        self.points = ColumnDataSource({"t": [], "lam": []}, name="drawn_points")
        self.fig = self._figure()
        self.reset_to = pn.widgets.Select(label="reset to", options=NAMED, value="linear",
                                          width=150, margin=(0, 5))  # fmt: skip
        self.reset = pn.widgets.Button(label="reset", width=70, margin=(18, 5, 0, 5))
        self.reset.on_click(self._reset)
        self.help = pn.pane.Markdown(
            "Drag a point to move it, tap an empty place to add one, select one and press "
            "Backspace to remove it. λ must fall from left to right.",
            styles={"font-size": "11px", "color": "#555"}, margin=(0, 5),
        )  # fmt: skip
        # In the page only while a drawn schedule is in use: a hidden figure is never painted,
        # and its pending repaint kept the page from ever being still (tests wait for that)
        self._parts = [self.fig, pn.Row(self.reset_to, self.reset), self.help]
        self.column = pn.Column(margin=0)
        self._syncing = False
        self.points.on_change("data", self._edited)
        self.state.param.watch(self._follow, ["process", "schedule", "schedule_points"])
        self._follow()

    def _figure(self):
        fig = figure(title="λ(t) = log(a²/b²): drag the points", width=300, height=260,
                     x_range=(0, 1), y_range=LAMBDA_RANGE, toolbar_location=None, tools="",
                     name="schedule_editor")  # fmt: skip
        fig.title.text_font_size = "11px"
        fig.xaxis.axis_label, fig.yaxis.axis_label = "t", "λ"
        fig.line("t", "lam", source=self.curve, color="#7f7f7f", line_width=2)
        dots = fig.scatter("t", "lam", source=self.points, size=10, color="#9467bd")
        tool = PointDrawTool(renderers=[dots], add=True, drag=True)
        fig.add_tools(tool)
        fig.toolbar.active_tap = tool
        fig.toolbar.active_drag = tool
        return fig

    # --- state → plot -----------------------------------------------------------------------
    def _follow(self, *_events) -> None:
        s = self.state
        drawn = s.scheduled and s.schedule == "points"
        if bool(self.column.objects) != drawn:
            self.column.objects = self._parts if drawn else []
        if not drawn or not s.schedule_points:
            return
        points = parse_points(s.schedule_points)
        self._show(points)

    def _show(self, points) -> None:
        """The points and the interpolant through them."""
        t, lam = (list(map(float, c)) for c in zip(*points, strict=True))
        schedule = make_schedule("points", points=points)
        curve = schedule.log_snr(torch.as_tensor(CURVE_TIMES, dtype=torch.float64)).numpy()
        self.curve.data = {"t": CURVE_TIMES, "lam": np.clip(curve, *LAMBDA_RANGE)}
        if (list(self.points.data["t"]), list(self.points.data["lam"])) != (t, lam):
            self._syncing = True
            try:
                self.points.data = {"t": t, "lam": lam}
            finally:
                self._syncing = False

    # --- plot → state -----------------------------------------------------------------------
    def _edited(self, _attr, _old, new) -> None:
        if self._syncing:
            return
        s = self.state
        try:
            t = np.asarray(new.get("t", []), dtype=np.float64)
            lam = np.asarray(new.get("lam", []), dtype=np.float64)
            if t.shape != lam.shape or t.ndim != 1:
                raise ValueError("the points' t and λ do not pair up")
            order = np.argsort(t, kind="stable")
            text = format_points(
                list(zip(t[order].tolist(), lam[order].tolist(), strict=True)), digits=6
            )
            make_schedule("points", points=text)  # refused here with one line if bad
        except (ValueError, TypeError) as exc:
            s.notice = f"That drawing was not used: {exc}. The schedule before it is kept."
            self._show(parse_points(s.schedule_points))  # the points of the schedule in use
            return
        if text != s.schedule_points:
            s.schedule_points = text

    def _reset(self, _event=None) -> None:
        self.state.schedule_points = self.state.drawn_from(self.reset_to.value)

    def __panel__(self):
        return self.column

"""A small live plot of the path: a(t), b(t), log-SNR and β(t) (or g²(t)), with the current t."""

from __future__ import annotations

import panel as pn
import param
from bokeh.models import ColumnDataSource, LinearAxis, Range1d, Span
from bokeh.plotting import figure

from app.session.state import FlowState
from app.ui.after_views import AfterViews
from app.ui.schedule_editor import ScheduleEditor

# the lower plot's title where the path has no β(t) (VP's g² is β)
G2_TITLES = {
    "fm": "g²(t) = 2t/(1−t) (no β(t) for flow matching)",
    "trig": "g²(t) = π tan(πt/2) (no β(t) for the trigonometric path)",
    "subvp": "g²(t) = β(t)(1 − e^(−2B(t)))",
    "ve": "g²(t) = d σ²/dt (no drift: f = 0)",
    "edm": "g²(t) = d σ²/dt (no drift: f = 0)",
}
COEFFICIENT_TITLES = {
    "ve": "a(t) = 1, σ(t) = b(t) (noise), log SNR",
    "edm": "a(t) = 1, σ(t) = b(t) on EDM's ρ = 7 levels, log SNR",
}
COEFFICIENT_TITLE = "a(t) (signal), b(t) (noise), log SNR"


def noise_end_warning(state: FlowState) -> str:
    """One line where the run's start is far from the path's noise end, else "". VP-type
    paths should reach a(1) ≈ 0; VE and EDM keep a = 1, and their N(0, σ_max² I) stands for
    the data blurred by σ_max only while σ_max is large beside the data's spread (~2)."""
    a1 = state.a_at_noise()
    if state.uses_sigmas:
        if state.sigma_max >= 4:
            return ""
        return (f"⚠ σ_max = {state.sigma_max:g} is small beside the data's spread: N(0, σ_max² I) "
                "is far from the data blurred by σ_max, so generation starts from the wrong "
                "distribution.")  # fmt: skip
    if a1 <= 0.05:
        return ""
    return (f"⚠ a(1) = {a1:.2f}: this schedule does not reach pure noise, so generation from "
            "N(0, I) starts from the wrong distribution.")  # fmt: skip


class SchedulePlot(pn.viewable.Viewer):
    """Coefficients of the current path; the vertical line follows the player client-side."""

    state = param.ClassSelector(class_=FlowState)

    def __init__(self, after: AfterViews | None = None, **params):
        """``after``: the page's updates that follow its views (``app.ui.after_views``); None:
        this panel's own, at once."""
        super().__init__(**params)
        self.curves = ColumnDataSource(self.state.schedule_curves())
        # the run's time grid: one tick per step on the t axis, where the solver evaluates
        self.steps = ColumnDataSource({"t": [], "y": []}, name="time_grid_points")
        # The current time, moved by render.js every frame. At the overlay level a move repaints
        # only the overlay layer, not the axes and curves; not syncable: the browser owns it.
        self.marks = [Span(location=0, dimension="height", level="overlay", syncable=False,
                           line_color="black", line_alpha=0.6) for _ in range(2)]  # fmt: skip
        self.coef_fig = self._coefficients()
        self.beta_fig = self._beta()
        self.note = pn.pane.Markdown("", sizing_mode="stretch_width", margin=(0, 5))
        self.editor = ScheduleEditor(state=self.state)
        # It describes the run on screen, so it changes when that run lands, just after the
        # views (app/ui/after_views.py): redrawn at the slider's release, it took the browser's
        # and the server's time from the run being computed (~20 ms of a 250 ms drag).
        (after or AfterViews(self.state)).add(self._update)
        self._update()

    def _small(self, title: str, y_range, height: int = 150):
        fig = figure(title=title, width=300, height=height, x_range=(0, 1), y_range=y_range,
                     toolbar_location=None, tools="")  # fmt: skip
        fig.title.text_font_size = "11px"
        fig.xaxis.axis_label = "t"
        return fig

    def _coefficients(self):
        fig = self._small(COEFFICIENT_TITLE, (0, 1.02), height=185)
        fig.name = "schedule_coefficients"
        fig.line("t", "a", source=self.curves, color="#1f77b4", line_width=2, legend_label="a")
        fig.line("t", "b", source=self.curves, color="#d62728", line_width=2, legend_label="b")
        fig.extra_y_ranges = {"snr": Range1d(-12, 12)}
        fig.add_layout(LinearAxis(y_range_name="snr", axis_label="log SNR"), "right")
        fig.line("t", "log_snr", source=self.curves, color="#7f7f7f", line_dash="dashed",
                 y_range_name="snr", legend_label="log a²/b²")  # fmt: skip
        # Outside the frame, in one row: inside, its box hid the curves' first half.
        legend = fig.legend[0]
        legend.update(orientation="horizontal", label_text_font_size="9px", padding=2, margin=0,
                      spacing=8, glyph_width=14, label_standoff=3, border_line_alpha=0)  # fmt: skip
        fig.center = [r for r in fig.center if r is not legend]
        fig.add_layout(legend, "above")
        fig.add_layout(self.marks[0])
        fig.scatter("t", "y", source=self.steps, marker="dash", angle=1.5708, size=7,
                    color="#2ca02c", line_width=1.5)  # fmt: skip
        return fig

    def _beta(self):
        fig = self._small("β(t) = g²(t)", (0, 21))
        fig.line("t", "g2", source=self.curves, color="#2ca02c", line_width=2)
        fig.add_layout(self.marks[1])
        return fig

    def _update(self, *_events) -> None:
        curves = self.state.schedule_curves()
        self.curves.data = curves
        result = self.state.result
        times = [] if result is None else [float(t) for t in result.times]
        if times != self.steps.data["t"]:  # most runs keep their grid: nothing to send then
            self.steps.data = {"t": times, "y": [0.015] * len(times)}
        process = self.state.process
        fm = process in ("fm", "trig")  # both flow-matching paths: g² diverges at t = 1
        top = float(min(max(curves["g2"].max(), 1.0), 60.0 if fm else 1e3)) * 1.05
        self.coef_fig.y_range.update(start=0, end=max(1.02, 1.02 * float(curves["b"].max())))
        self.coef_fig.title.text = COEFFICIENT_TITLES.get(process, COEFFICIENT_TITLE)
        self.beta_fig.y_range.update(start=0, end=top)
        self.beta_fig.title.text = G2_TITLES.get(process, "β(t) = g²(t)")
        self.note.object = noise_end_warning(self.state)

    def __panel__(self):
        return pn.Column(self.coef_fig, self.beta_fig, self.editor, self.note)

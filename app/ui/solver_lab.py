"""The solver lab's panel: how fast each ODE solver's error falls with the number of model calls.

A button measures :class:`app.session.solver_sweep.SolverSweep` for the session's current data
set, process, schedule and field, off the session thread, with a progress bar and Stop; the
result is a log-log HoloViews chart (one curve per solver and time grid, its fitted slope in
the legend, the error 1e-2 dashed) and a table of the NFE each needs to reach that error.

HoloViews, not a bare Bokeh figure: the chart is an overlay of one element per series, which
HoloViews lays out, colours and labels in one legend; the chart is redrawn once per sweep, so
its cost (tens of milliseconds) does not matter here, unlike the streamed loss curve of
``app/ui/train_panel.py``.
"""

from __future__ import annotations

import math

import numpy as np
import panel as pn
from bokeh.palettes import Category10_10
from panel.io.document import unlocked
from panel.io.state import set_curdoc

from app.session.solver_sweep import TARGET_ERROR, SolverSweep, nfe_to_reach, series
from app.session.state import FlowState
from models.evaluation.solver_error import ErrorTable
from models.solvers import GRIDS, SOLVERS


def _holoviews():
    """HoloViews with its Bokeh backend, imported on the first chart: ~0.2 s of the server's
    start and ~0.25 s of every page's build (its first, empty chart) that no page needs before
    it measures."""
    import holoviews as hv

    if hv.Store.current_backend != "bokeh" or "bokeh" not in hv.Store.renderers:
        hv.extension("bokeh", logo=False)
    return hv


COLOURS = dict(zip(SOLVERS, Category10_10, strict=False))  # one colour per solver
DASHES = {"uniform": "solid", "logsnr": "dashed", "karras": "dotted", "quadratic": "dashdot",
          "adaptive": "solid"}  # fmt: skip
MARKERS = {"uniform": "circle", "logsnr": "square", "karras": "triangle", "quadratic": "diamond",
           "adaptive": "star"}  # fmt: skip
WIDTH, HEIGHT = 980, 460  # the chart's; its legend takes ~240 px of the width
TEXT_WIDTH = 860
HELP = f"""\
**NFE** is the number of times a solver calls the model (the velocity field) to carry the
particles from noise (t = 1) to data: the cost of sampling. Each run here starts from the same
prior points, and its **error** is the mean distance of its end points to the ODE's own
solution (Dormand–Prince at tolerance 1e-8, in float64). On log-log axes a solver of order p
falls as NFE<sup>−p</sup>: the **slope** of its last points is the order it achieves (in the
legend): Euler about 1, Heun and midpoint 2, RK4 4, once the steps are small enough. Dashed
line: the error {TARGET_ERROR:g}; the table says how many calls each solver needs to reach it.

At a few NFE every solver is poor, whatever its order: near the end of the run each particle
chooses the mode it lands in, and the posterior mean (where the field points) changes over a
tiny distance there. A step that jumps over that change sends the particle to the wrong place;
the order pays only once the steps resolve it. Where the time grid puts its steps decides
when that happens: compare the grids.
"""
BEFORE_CHART = ("*The chart of error against model calls, log-log, one curve per solver and time "
                "grid, appears with the first measurement.*")  # fmt: skip
KEY = (
    "Colour: the solver. Line and marker: the time grid (uniform: solid, ●; logsnr: dashed, "
    "■; karras: dotted, ▲; quadratic: dash-dot, ◆). dopri5 (★) chooses its own steps, at "
    "tolerances 1e-2 to 1e-6. A slope is fitted to the upper half of a curve's points."
)


def _session_scheduler():
    """``schedule(fn)``: fn() on the current Bokeh session's thread, or at once when there is
    no served session (a notebook, a test)."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return None

    def schedule(fn) -> None:
        def run() -> None:
            with set_curdoc(doc), unlocked():
                fn()

        doc.add_next_tick_callback(run)

    return schedule


def _label(solver: str, grid: str, order: float) -> str:
    slope = "n/a" if not math.isfinite(order) else f"{order:.1f}"
    return f"{solver} · {grid} (slope {slope})"


def error_chart(table: ErrorTable | None, subject: str = "", max_nfe: int = 200):
    """The log-log chart of a sweep (a HoloViews Overlay): endpoint error against NFE, one
    curve with markers per (solver, grid), the error ``TARGET_ERROR`` dashed. An empty chart
    for no table."""
    hv = _holoviews()
    dims = (hv.Dimension("nfe", label="NFE (model calls)"),
            hv.Dimension("error", label="endpoint error (mean distance to reference)"))  # fmt: skip
    target = hv.HLine(TARGET_ERROR).opts(color="#777777", line_dash="dashed", line_width=1)
    layers = []
    for (solver, grid), (nfe, error) in series(table or ErrorTable()).items():
        keep = error > 0  # log axes: a run landing exactly on the reference has no point
        data = (nfe[keep], error[keep])
        label = _label(solver, grid, table.orders.get((solver, grid), math.nan))
        colour, dash = COLOURS.get(solver, "#333333"), DASHES.get(grid, "solid")
        layers.append(hv.Curve(data, *dims, label=label).opts(color=colour, line_dash=dash,
                                                              line_width=2))  # fmt: skip
        layers.append(hv.Scatter(data, *dims, label=label).opts(
            color=colour, marker=MARKERS.get(grid, "circle"), size=6))  # fmt: skip
    if not layers:  # before the first sweep: the axes and the target line only
        layers.append(hv.Curve(([], []), *dims))
    title = f"error vs model calls: {subject}" if subject else "error vs model calls"
    empty = table is None or not table.rows
    top = max_nfe if empty else max(float(n.max()) for n, _e in series(table).values())
    limits = dict(xlim=(3, max_nfe * 1.3), ylim=(1e-6, 10)) if empty else {}
    return hv.Overlay([*layers, target]).opts(
        # as wide as the page allows, up to WIDTH: a projector's 1024 px must not scroll sideways
        hv.opts.Overlay(logx=True, logy=True, responsive=True, height=HEIGHT, title=title,
                        legend_position="right", legend_cols=2 if len(layers) > 32 else 1,
                        # HoloViews drops the legend past 25 glyphs: a curve and markers each
                        legend_limit=200, show_grid=True, toolbar=None, padding=0.05,
                        xticks=_ticks(top), fontsize={"title": 12}, **limits),
    )  # fmt: skip


def _ticks(top: float) -> list[int]:
    """Powers of two from 2 to past ``top``: Bokeh's log ticker labels only 10, 100 here."""
    return [2**k for k in range(1, 12) if 2 ** (k - 1) <= top]


def reach_table(table: ErrorTable | None) -> str:
    """A Markdown table (our own text only: solver and grid names, numbers) of the NFE each
    solver needs, on each grid, to bring its error to ``TARGET_ERROR``."""
    if table is None or not table.rows:
        return ""
    runs = series(table)
    grids = [g for g in (*GRIDS, "adaptive") if any(k[1] == g for k in runs)]
    solvers = [s for s in SOLVERS if any(k[0] == s for k in runs)]
    lines = [f"NFE to reach the error {TARGET_ERROR:g} (interpolated on the log-log curve):", "",
             "| solver | " + " | ".join(grids) + " |",
             "|---|" + "---:|" * len(grids)]  # fmt: skip
    for solver in solvers:
        cells = []
        for grid in grids:
            if (solver, grid) not in runs:
                cells.append("")
                continue
            nfe, error = runs[(solver, grid)]
            reach = nfe_to_reach(nfe, error)
            cells.append(f"> {int(nfe.max())}" if math.isinf(reach) else f"{reach:.0f}")
        lines.append(f"| {solver} | " + " | ".join(cells) + " |")
    same = _same_curves(runs)
    if same:
        grids_of: dict[tuple[str, str], list[str]] = {}
        for a, b, grid in same:
            grids_of.setdefault((b, a), []).append(grid)
        pairs = "; ".join(f"{b} and {a} ({', '.join(g)})" for (b, a), g in grids_of.items())
        lines += ["", f"One curve hides another: {pairs} take the same steps on this path."]
    return "\n".join(lines)


def _same_curves(runs: dict) -> list[tuple[str, str, str]]:
    """(solver, later solver, grid) of the series whose errors agree to 1e-9 at every NFE
    (DDIM is Euler on the flow-matching path, for one)."""
    out = []
    keys = list(runs)
    for i, (a, grid) in enumerate(keys):
        for b, other in keys[i + 1 :]:
            (n1, e1), (n2, e2) = runs[(a, grid)], runs[(b, other)]
            if other == grid and len(n1) == len(n2) and np.array_equal(n1, n2) and np.allclose(
                e1, e2, rtol=1e-9, atol=0):  # fmt: skip
                out.append((a, b, grid))
    return out


class SolverLab(pn.viewable.Viewer):
    """The solver lab of one session: settings, measure / stop, progress, chart and table."""

    def __init__(self, state: FlowState, schedule=None, **params):
        """``schedule(fn)`` runs fn on the session thread; by default the session serving
        this panel's page (fn at once where nothing is served)."""
        super().__init__(**params)
        self.state = state
        self.job = SolverSweep(state, schedule=schedule or _session_scheduler())
        self.measure = pn.widgets.Button(label="Measure error vs model calls",
                                         color="primary")  # fmt: skip
        self.halt = pn.widgets.Button(label="■ stop measuring", disabled=True)
        self.measure.on_click(lambda _e: self.job.start())
        self.halt.on_click(lambda _e: self.job.stop())
        self.progress = pn.indicators.Progress(
            value=0, max=100, width=300, css_classes=["flowscope-sweep-progress"]
        )
        # the chart is made with the first measurement (see _holoviews); until then, this line
        self.chart = pn.Column(pn.pane.Markdown(BEFORE_CHART, styles={"font-size": "12px"}),
                               sizing_mode="stretch_width", max_width=WIDTH)  # fmt: skip
        self.reach = pn.pane.Markdown("", name="solver_lab_table", styles={"font-size": "13px"})
        self.job.param.watch(self._show_job, ["running", "progress"])
        self.job.param.watch(self._show_table, ["table"])

    def stop(self) -> None:
        """Stop a sweep in progress (when the session closes)."""
        self.job.stop()

    def _show_job(self, *_events) -> None:
        job = self.job
        self.measure.disabled, self.halt.disabled = job.running, not job.running
        self.progress.value = round(100 * job.progress)

    def _show_table(self, *_events) -> None:
        job = self.job
        chart = error_chart(job.table, job.subject, job.max_nfe)
        shown = self.chart.objects[0]
        if isinstance(shown, pn.pane.HoloViews):
            shown.object = chart
        else:
            self.chart.objects = [pn.pane.HoloViews(chart, backend="bokeh",
                                                    name="solver_lab_chart",
                                                    sizing_mode="stretch_width",
                                                    max_width=WIDTH)]  # fmt: skip
        self.reach.object = reach_table(job.table)

    def __panel__(self):
        job = self.job
        settings = pn.Row(
            pn.pane.Markdown("time grids:", margin=(12, 0, 0, 10)),
            pn.widgets.CheckBoxGroup.from_param(job.param.grids, inline=True, margin=(18, 10)),
            pn.widgets.IntInput.from_param(job.param.particles, name="particles", width=110),
            pn.widgets.IntInput.from_param(job.param.max_nfe, name="max NFE", width=110),
        )  # fmt: skip
        # plain text: a failure's message is quoted, never rendered
        text = dict(sizing_mode="stretch_width", max_width=TEXT_WIDTH)
        status = pn.pane.Str(self.job.param.status, styles={"font-size": "12px"}, **text,
                             stylesheets=["pre { white-space: pre-wrap; }"])  # fmt: skip
        return pn.Column(
            pn.pane.Markdown(HELP, styles={"font-size": "13px"}, **text),
            settings,
            pn.Row(self.measure, self.halt, self.progress, align="center"),
            status,
            self.chart,
            pn.pane.Markdown(KEY, styles={"font-size": "12px", "color": "#555"}, **text),
            self.reach, sizing_mode="stretch_width",
        )  # fmt: skip

"""The Train panel: settings, start / stop, a progress bar, a live loss curve, the readout.

The loss curve streams: each progress report appends one point (the mean loss of the steps
since the last report, and the EMA of the loss) with Bokeh's ``ColumnDataSource.stream``, which
sends only the new rows. Not HoloViews' ``Buffer`` + ``DynamicMap``, the design's first choice:
every ``Buffer.send`` reruns the DynamicMap and HoloViews' plot update on the session thread,
measured at 0.1-0.8 s per point on this (shared, loaded) 2-core machine, so at a few points a
second the session thread fell behind and a click on Stop took effect 5 s late. ``stream``
costs about a millisecond.
"""

from __future__ import annotations

import panel as pn
import param
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from app.session.state import FlowState
from app.session.training_job import TrainingJob

CURVE_POINTS = 5000  # the buffer keeps the last this many points (about 15 minutes of training)
HELP = (
    "Trains a small MLP (3 x 128, SiLU) on the current data set, process and schedule, in the "
    "background: the player and the sliders keep working. M = 0 draws fresh samples every step; "
    "M ≥ 2 fixes a training set of M points (the same set the field 'exact of the M training "
    "points' memorizes). The views follow the weights every few seconds when the field is "
    "'learned (trained here)'. Class-conditional: the network also learns each class of the "
    "data set (its colours; 20 % label dropout keeps the unconditional field in the same "
    "network), for classifier-free guidance."
)


def _loss_figure(source: ColumnDataSource):
    fig = figure(width=340, height=200, y_axis_type="log", title="training loss",
                 toolbar_location=None, x_axis_label="step", name="loss_curve")  # fmt: skip
    fig.line("step", "loss", source=source, color="#99aabb", line_width=1, legend_label="loss")
    fig.line("step", "ema", source=source, color="#c0392b", line_width=2, legend_label="EMA")
    fig.legend.location = "top_right"
    return fig


class TrainPanel(pn.viewable.Viewer):
    """Controls and live view of a session's :class:`TrainingJob`."""

    state = param.ClassSelector(class_=FlowState)

    def __init__(self, schedule=None, **params):
        super().__init__(**params)
        self.curve = ColumnDataSource({"step": [], "loss": [], "ema": []}, name="loss_source")
        self._schedule = schedule
        self.job = TrainingJob(self.state, schedule=schedule, on_losses=self._stream)
        self.start = pn.widgets.Button(label="▶ start training", color="primary")
        self.stop = pn.widgets.Button(label="■ stop", disabled=True)
        self.start.on_click(lambda _e: self._start())
        self.stop.on_click(lambda _e: self.job.stop())
        self.progress = pn.indicators.Progress(
            value=0, max=1, sizing_mode="stretch_width", css_classes=["flowscope-train-progress"]
        )
        self.loss_plot = pn.pane.Bokeh(_loss_figure(self.curve))
        # Markdown: the readout is our own text of numbers, wrapped to the column
        self.readout = pn.pane.Markdown("", styles={"font-size": "12px"}, name="train_readout",
                                        sizing_mode="stretch_width")  # fmt: skip
        self.job.param.watch(self._show_job, ["running", "step", "total"])
        self.state.param.watch(self._show_readout, ["result"])
        self._show_readout()

    def _start(self) -> None:
        if self.job.start():
            # On the session's next tick (before the job's first losses, which come the same
            # way): a click that arrives while another widget's change is pending runs outside
            # the document's lock, where setting a source's data fails.
            (self._schedule or (lambda fn: fn()))(self._clear_curve)

    def _clear_curve(self) -> None:
        self.curve.data = {"step": [], "loss": [], "ema": []}

    def _stream(self, steps, loss, ema) -> None:
        new = {"step": steps.astype(float), "loss": loss, "ema": ema}
        self.curve.stream(new, rollover=CURVE_POINTS)

    def _show_job(self, *_events) -> None:
        job = self.job
        self.start.disabled, self.stop.disabled = job.running, not job.running
        self.progress.param.update(max=max(1, job.total), value=min(job.step, job.total))

    def _show_readout(self, *_events) -> None:
        self.readout.object = self.state.memorization_text() or (
            "Memorization readout: set M ≥ 2 (a finite training set) and run in reverse."
        )

    def __panel__(self):
        settings = pn.Param(
            self.job, parameters=["steps", "batch", "lr", "ot", "conditional"], show_name=False,
            widgets={"steps": pn.widgets.IntInput, "batch": pn.widgets.IntInput,
                     "lr": {"type": pn.widgets.FloatInput, "name": "learning rate"},
                     "ot": {"type": pn.widgets.Checkbox, "name": "OT pairing (minibatch)"},
                     "conditional": {"type": pn.widgets.Checkbox,
                                     "name": "class-conditional"}},
        )  # fmt: skip
        size = pn.Param(
            self.state, parameters=["train_size"], show_name=False,
            widgets={"train_size": {"type": pn.widgets.IntInput,
                                    "name": "M training points (0: fresh every step)"}},
        )  # fmt: skip
        # plain text (a failure's message is quoted, never rendered), wrapped to the column
        status = pn.pane.Str(self.job.param.status, width=320, styles={"font-size": "12px"},
                             stylesheets=["pre { white-space: pre-wrap; }"])  # fmt: skip
        help_text = pn.pane.Markdown(HELP, styles={"font-size": "12px", "color": "#555"})
        controls = pn.Column(settings, size, pn.Row(self.start, self.stop), self.progress,
                             status, width=330)  # fmt: skip
        return pn.Row(
            controls,
            pn.Column(self.loss_plot, self.readout, help_text, width=360),
        )

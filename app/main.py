"""The flowscope app: assembly of state, runner, views and controls for one session.

``panel serve app/main.py`` serves it; ``flowscope serve`` does the same; in a notebook,
``from app.main import create_app; create_app()`` displays it.
"""

from __future__ import annotations

import contextlib
import json
from urllib.parse import urlencode

import panel as pn
from bokeh.models import CustomJS

from app.controls import playback_controls, sidebar
from app.export.menu import ExportMenu
from app.math_panel import MathPanel
from app.runner import Recomputer, compute_now
from app.schedule_plot import SchedulePlot
from app.state import COMPUTE_PARAMS, DISPLAY_PARAMS, FlowState
from app.views import RENDER_JS, FlowViews

pn.extension("katex", notifications=False)

TITLE = "flowscope: particles and densities of diffusion and flow matching"
URL_PARAMS = COMPUTE_PARAMS + DISPLAY_PARAMS


def _on_session_thread(doc):
    """A scheduler that runs a callback on the Bokeh session thread (or at once without one)."""
    if doc is None or doc.session_context is None:
        return None

    def schedule(fn):
        doc.add_next_tick_callback(fn)

    return schedule


def read_url_values(state: FlowState, query: dict) -> tuple[dict, dict]:
    """Split query values into those the state accepts and those it does not.

    Each value is tried on its own (on a scratch state) so that one malformed value cannot
    sink the others. Returns (good {param: value}, bad {param: raw}).
    """
    scratch, good, bad = FlowState(), {}, {}
    for name in URL_PARAMS:
        if name not in query:
            continue
        raw = query[name]
        candidates = [raw]
        if isinstance(raw, str):  # "50", "true", "12.5" as typed in a URL
            with contextlib.suppress(Exception):
                candidates.insert(0, json.loads(raw))
            with contextlib.suppress(Exception):
                candidates.insert(0, state.param[name].deserialize(raw))
        for value in candidates:
            try:
                setattr(scratch, name, value)
            except Exception:
                continue
            good[name] = getattr(scratch, name)
            break
        else:
            bad[name] = raw
    return good, bad


def _sync_url(state: FlowState, notice: pn.pane.Alert) -> None:
    """Restore the state from the query string, then mirror every control into it."""
    location = pn.state.location
    if not location:
        return
    reported: dict = {}

    def report(bad: dict) -> None:
        reported.update(bad)
        names = ", ".join(f"{k}={v!r}" for k, v in reported.items())
        notice.object = (f"Ignored URL values that are out of range or malformed: {names}. "
                         "Using the defaults for these.")  # fmt: skip
        notice.visible = True

    good, bad = read_url_values(state, dict(location.query_params))
    state.param.update(**good)
    if bad:
        report(bad)
        kept = {k: v for k, v in location.query_params.items() if k not in bad}
        location.search = "?" + urlencode(kept) if kept else ""
    location.sync(
        state,
        {p: p for p in URL_PARAMS},
        on_error=lambda values: (
            report({k: v for k, v in values.items() if k not in good})
            if set(values) - set(good)
            else None
        ),
    )


def create_app(**settings) -> pn.viewable.Viewable:
    """Build one session of the app; ``settings`` override the defaults (for tests)."""
    state = FlowState(**settings)
    notice = pn.pane.Alert("", alert_type="warning", visible=False, name="notice",
                           sizing_mode="stretch_width")  # fmt: skip
    _sync_url(state, notice)
    compute_now(state)  # first frames ship with the page: playing at once, nothing to wait for
    runner = Recomputer(state, schedule=_on_session_thread(pn.state.curdoc))
    views = FlowViews(state=state)
    schedule = SchedulePlot(state=state)
    views.link_marks(schedule.marks)
    export_menu = ExportMenu(state=state, schedule=_on_session_thread(pn.state.curdoc))

    def show_notice(*_events) -> None:
        if state.notice:
            notice.object, notice.visible = state.notice, True

    state.param.watch(show_notice, ["notice"])
    # The spinner always spins; only its opacity toggles. Toggling `value` or `visible`
    # changes the element's classes, and Bokeh re-lays out the whole page for that (measured:
    # ~190 ms of the browser's main thread per recompute, delaying the new frames).
    hidden, shown = {"opacity": "0"}, {"opacity": "1"}
    busy = pn.indicators.LoadingSpinner(value=True, size=22, styles=hidden)

    def show_busy(event) -> None:
        busy.styles = shown if event.new else hidden
        views.hold_while_busy(event.new)

    runner.param.watch(show_busy, ["busy"])
    views.player.direction = 1  # already playing on first load

    doc = pn.state.curdoc
    if doc is not None:
        first_paint = CustomJS(args=views._js_args(), code="const frame = 0;" + RENDER_JS)
        doc.js_on_event("document_ready", first_paint)
        if doc.session_context is not None:
            pn.state.on_session_destroyed(lambda _ctx: runner.shutdown())
            pn.state.on_session_destroyed(lambda _ctx: export_menu.cancel_and_clean())

    header = pn.Row(pn.pane.Markdown(f"## {TITLE}", margin=(0, 10)), busy, align="center")
    main = pn.Column(
        header, notice, views, playback_controls(state),
        pn.pane.Markdown("### Export"), export_menu,
        pn.Row(pn.Column(pn.pane.Markdown("### The path"), schedule, width=320),
               pn.Column(pn.pane.Markdown("### The mathematics"), MathPanel(state=state),
                         sizing_mode="stretch_width")),
    )  # fmt: skip
    app = pn.Row(sidebar(state), main, sizing_mode="stretch_width")
    return app


if pn.state.served:
    create_app().servable(title="flowscope")

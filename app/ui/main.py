"""The flowscope app: assembly of state, runner, views and controls for one session.

``panel serve app/ui/main.py`` serves it; ``flowscope serve`` does the same; in a notebook,
``from app.ui.main import create_app; create_app()`` displays it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from urllib.parse import urlencode

import panel as pn
import param
from bokeh.models import Plot
from panel.io.document import unlocked
from panel.io.state import set_curdoc
from tornado.ioloop import IOLoop

from app.session.compare import Comparison
from app.session.lessons import LessonError, load_lessons
from app.session.links import apply_query, drop_conflicting_values, one_line
from app.session.memory import release_after_close
from app.session.readouts import pair_text
from app.session.runner import Recomputer, compute_now
from app.session.state import DATA_PARAMS, FlowState
from app.session.url import (
    URL_PARAMS,
    compare_query,
    guard_panel_query_parsing,
    parse_value,
    query_of,
    read_query,
)
from app.session.userdata import LINK_MAX_POINTS, encode_points
from app.ui import client
from app.ui.after_views import AfterViews, session_timer
from app.ui.compare.panel import compare_section
from app.ui.compare.views import CompareViews
from app.ui.controls import compute_controls, playback_controls, sidebar
from app.ui.data_panel import DataPanel
from app.ui.export_menu import ExportMenu
from app.ui.legend import legend
from app.ui.lesson_bar import LessonBar
from app.ui.math_panel import MathPanel
from app.ui.notice import Notice
from app.ui.presenter import Presenter, Theme
from app.ui.schedule_plot import SchedulePlot
from app.ui.solver_lab import SolverLab
from app.ui.theme import THEMES
from app.ui.train_panel import TrainPanel
from app.ui.views import FlowViews

pn.extension("katex", notifications=False)
guard_panel_query_parsing()

log = logging.getLogger(__name__)
TITLE = "flowscope: particles and densities of diffusion and flow matching"
IDLE_MS = 300  # the busy spinner and the URL's update wait this long (see create_app)


class _LoadGate:
    """Holds callbacks until the page has loaded its document, then releases them in order.

    Bokeh subscribes a browser to its session's changes when the websocket opens, before the
    browser pulls the document, and the browser drops a change that arrives before the
    document does. A run published in that window, after the pull was serialized but before
    its reply was written, was lost: the page never showed a frame (seen once in ~5 CI runs,
    a first-frame timeout in tests/ui). So nothing is published before Panel's onload, which
    the page triggers once its document is rendered; the first run still computes meanwhile.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._waiting: list | None = []  # None once open

    def open(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting or [], None
        for fn in waiting:
            fn()

    def run(self, fn) -> None:
        """fn() now if the page has loaded, else when it does."""
        with self._lock:
            if self._waiting is not None:
                self._waiting.append(fn)
                return
        fn()


def _on_session_thread(doc, gate: _LoadGate | None = None):
    """A scheduler that runs a callback on the Bokeh session thread (or at once without one),
    not before ``gate`` opens (the page has loaded)."""
    if doc is None or doc.session_context is None:
        return None

    def schedule(fn):
        # Bokeh keeps a one-shot callback in a reference cycle (the callback object and its
        # wrapper refer to each other), freed only by a full garbage collection, which a busy
        # server runs seldom. fn holds a whole run (Recomputer._work's publish), so the cycle
        # gets only this box, emptied once fn has run: the run is freed when the next replaces it.
        box = [fn]

        def run_once() -> None:
            # Every change fn makes travels in one message (a published run: its stores, the
            # path plot, the equations), so the browser decodes and paints once.
            with set_curdoc(doc), unlocked():
                box.pop()()

        def send() -> None:
            doc.add_next_tick_callback(run_once)

        if gate is None:
            send()
        else:
            gate.run(send)

    return schedule


def _restore_from_url(state: FlowState, comparison: Comparison, lessons: LessonBar,
                      page: dict) -> tuple[str, Callable[[], None]]:  # fmt: skip
    """Apply the good values of the page's query string (run A's, compare mode's with B's
    changes, the lesson whose caption shows, and into ``page`` the page's theme); returns the
    notice for the bad ones ("" if none) and ``mirror()``, which sets the URL from the state
    alone (so refused values leave it), with ``page``'s entries: once the page has loaded, then
    whenever :func:`_mirror_when_idle` says."""
    location = pn.state.location
    if not location:
        return drop_conflicting_values(state), lambda: None
    query = read_query(location.search or "")
    notice = apply_query(state, comparison, query)
    if "lesson" in query:  # the caption only: the link's own values are the settings
        try:
            lessons.index = parse_value(lessons.param["index"], query["lesson"])
        except ValueError:
            notice = f"{notice} There is no lesson {query['lesson'][:12]!r} here.".strip()
    if query.get("theme") in THEMES:
        page["theme"] = query["theme"]
    elif "theme" in query:
        notice = f"{notice} There is no theme {query['theme'][:12]!r}: light or dark.".strip()

    def mirror(*_events) -> None:
        search = query_of(state)
        extra = compare_query(comparison)
        if lessons.index:
            extra["lesson"] = str(lessons.index)
        if page.get("theme", "light") != "light":
            extra["theme"] = page["theme"]
        if extra:
            search += "&" + urlencode(extra)
        if state.dataset == "points" and state.points is not None:
            with contextlib.suppress(ValueError):  # too many for a link: the panel says so
                search += "&pts=" + encode_points(state.points, state.user_labels())
        location.search = search

    # After the page has loaded: the browser reports its own URL once it connects, which would
    # overwrite a search set earlier (the refused values stayed in the link).
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.onload(mirror)
    else:
        mirror()
    return notice, mirror


def _mirror_when_idle(state: FlowState, runner: Recomputer, mirror: Callable[[], None],
                      later, comparison: Comparison, lessons: LessonBar) -> None:  # fmt: skip
    """Mirror the settings into the URL when they change, but not while a run computes, nor
    as its frames are drawn: ``IDLE_MS`` after it has landed (or failed). The URL's update
    wakes the page (the browser's history, a style recalculation): where one machine serves
    and shows it (a laptop in a lecture), a run's step beside it was measured 8 ms late, and
    the page's paint of the new frame ~10 ms later when it came with the run."""

    def unless_busy(*_events) -> None:  # a run computing now mirrors once it lands
        if not runner.busy:
            mirror()

    # after the runner's own watcher, which sets busy for a setting that starts a run
    state.param.watch(unless_busy, list(URL_PARAMS + DATA_PARAMS))
    comparison.param.watch(unless_busy, ["on", "layout", "changes"])
    lessons.param.watch(unless_busy, ["index"])
    runner.param.watch(lambda event: None if event.new else later(unless_busy, IDLE_MS), ["busy"])


def solver_readout(state: FlowState, comparison: Comparison) -> pn.pane.Str:
    """The line under the views that says what the sampler did (``FlowState.solver_text``),
    and in compare mode what each run did and how far apart they ended (``pair_text``):
    plain text, updated with every run and reference."""
    style = {"font-size": "12px", "color": "var(--flowscope-muted, #444)",
             "white-space": "pre-wrap"}  # fmt: skip
    # the <pre> inside wraps too: a long line of the comparison widened the page past 1024 px
    wrap = "pre { white-space: pre-wrap; overflow-wrap: anywhere; }"
    pane = pn.pane.Str(state.solver_text(), name="solver_readout", margin=(0, 10), styles=style,
                       stylesheets=[wrap], sizing_mode="stretch_width")  # fmt: skip

    def update(*_events) -> None:
        pair = comparison.pair if comparison.on else None
        pane.object = state.solver_text() if pair is None else \
            pair_text(pair, state.reference)  # fmt: skip

    state.param.watch(update, ["result", "reference"])
    comparison.param.watch(update, ["pair", "on"])
    return pane


def _figures(doc) -> list:
    """Every figure of the page's document (none before the page is shown)."""
    return list(doc.select({"type": Plot})) if doc is not None else []


def _scenes() -> tuple[list, str]:
    """The served lessons' scenes, and a notice ("" if none) when their file cannot be used."""
    try:
        return load_lessons(), ""
    except LessonError as exc:
        return [], f"The lessons could not be opened: {one_line(exc)}"


def _notice_after_run(state: FlowState, text: str, shown: bool = True) -> None:
    """Show ``text`` with the next run's own notice (now, if ``shown`` and a run is shown)."""
    if shown and state.result is not None:
        state.notice = f"{text} {state.notice}".strip()
        return

    def once(_event) -> None:
        state.param.unwatch(watcher)
        state.notice = f"{text} {state.notice}".strip()

    watcher = state.param.watch(once, ["result"])


def create_app(**settings) -> pn.viewable.Viewable:
    """Build one session of the app; ``settings`` override the defaults (for tests)."""
    state = FlowState(**settings)
    # before the runner: B follows a change of A before the runner reads the two
    comparison = Comparison(state)
    scenes, lessons_notice = _scenes()
    lessons = LessonBar(state, comparison, scenes,
                        tell=lambda text: _notice_after_run(state, text, shown=False))  # fmt: skip
    page: dict = {}  # what the page's URL says of the page itself (its theme)
    url_notice, mirror = _restore_from_url(state, comparison, lessons, page)
    url_notice = f"{lessons_notice} {url_notice}".strip()
    served = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    if not served:  # a notebook or a test: the first frames ship with the view
        compute_now(state)
    if url_notice:  # shown until the next run (the user changed a setting)
        _notice_after_run(state, url_notice)
    notice = Notice(owner=state)
    gate = _LoadGate()
    if served:
        pn.state.onload(gate.open)
    else:
        gate.open()
    runner = Recomputer(state, schedule=_on_session_thread(pn.state.curdoc, gate),
                        comparison=comparison)  # fmt: skip
    later = session_timer(pn.state.curdoc)
    _mirror_when_idle(state, runner, mirror, later, comparison, lessons)
    views = FlowViews(state=state)
    after = AfterViews(state, later)  # the panels that describe the run, in one message
    schedule = SchedulePlot(state=state, after=after)
    views.link_marks(schedule.marks)
    compared = CompareViews(views, later=later, comparison=comparison)
    export_menu = ExportMenu(state=state, schedule=_on_session_thread(pn.state.curdoc, gate),
                             comparison=comparison)  # fmt: skip
    train_panel = TrainPanel(state=state, schedule=_on_session_thread(pn.state.curdoc, gate))
    solver_lab = SolverLab(state, schedule=_on_session_thread(pn.state.curdoc, gate))

    # The spinner always spins; only its opacity toggles. Toggling `value` or `visible`
    # changes the element's classes, and Bokeh re-lays out the whole page for that (measured:
    # ~190 ms of the browser's main thread per recompute, delaying the new frames). It shows
    # only for a run still computing IDLE_MS after it began: a run that lands sooner changes
    # no style, and a style change beside the new frames forced a recalculation of the whole
    # page's styles before they were painted (~10 ms).
    # Hidden, it stands still: its animation, though unseen, had the page draw a frame 60 times
    # a second (~5 % of a core for Chromium while paused and idle); the play state comes in an
    # inherited custom property, not a class, so toggling it re-lays out nothing either.
    hidden = {"opacity": "0", "--flowscope-spin": "paused"}
    shown = {"opacity": "1", "--flowscope-spin": "running"}
    still = "div::after { animation-play-state: var(--flowscope-spin, running) !important; }"
    busy = pn.indicators.LoadingSpinner(value=True, size=22, styles=hidden, stylesheets=[still])

    began = [0]  # busy periods so far: a period's timer shows the spinner only for its own

    def show_busy(event) -> None:
        compared.hold_while_busy(event.new)
        if event.new:
            began[0] += 1
            period = began[0]
            later(lambda: setattr(busy, "styles", shown)
                  if runner.busy and began[0] == period else None, IDLE_MS)  # fmt: skip
        else:
            busy.styles = hidden

    runner.param.watch(show_busy, ["busy"])
    views.player.direction = 1  # already playing on first load

    doc = pn.state.curdoc
    if doc is not None:
        doc.js_on_event("document_ready", client.draw(views.js_args(), "0"))  # first paint
        doc.js_on_event("document_ready", views.fit_to_window())
        doc.js_on_event("document_ready", client.callback("label_clicks"))
        doc.js_on_event("document_ready", client.callback("steady_body"))
        if doc.session_context is not None:
            pn.state.on_session_destroyed(lambda _ctx: runner.shutdown())
            pn.state.on_session_destroyed(lambda _ctx: export_menu.cancel_and_clean())
            pn.state.on_session_destroyed(lambda _ctx: train_panel.job.stop())
            pn.state.on_session_destroyed(lambda _ctx: solver_lab.stop())
            pn.state.on_session_destroyed(lambda _ctx: release_after_close(IOLoop.current()))

    # The path plot's warning (a schedule that does not reach pure noise) sits far below the
    # views; it shows at the top too, as the plot decides it, for the run on screen.
    path_notice = Notice(owner=schedule.note, name_of_text="object")
    below = pn.Column(
        pn.pane.Markdown("### Train a network"), train_panel,
        pn.pane.Markdown("### Export"), export_menu,
        pn.Row(pn.Column(pn.pane.Markdown("### The path"), schedule, width=320),
               pn.Column(pn.pane.Markdown("### The mathematics"),
                         MathPanel(state=state, after=after), sizing_mode="stretch_width")),
        pn.pane.Markdown("### The solver lab: error versus model calls"), solver_lab,
        sizing_mode="stretch_width",
    )  # fmt: skip
    data_panel = DataPanel(views.particle_fig, state=state)
    if pn.state.curdoc is not None:
        data_panel.on_page_ready(pn.state.curdoc)
    section, compute = compare_section(comparison, compute_controls(state))
    side = sidebar(state, data_panel, compute=compute, top=section)
    presenter = Presenter(fold=[side, below], figures=[views.particle_fig, views.density_fig],
                          on_change=lessons.enlarge)  # fmt: skip
    if doc is not None:
        doc.js_on_event("document_ready", presenter.keys())
    # the title wraps in a narrow window (a projector's 1024 pixels): the row never widens the page
    title = pn.pane.Markdown(f"## {TITLE}", margin=(0, 10), sizing_mode="stretch_width")
    header = pn.Row(title, busy, presenter.toggle, presenter.help, align="center",
                    sizing_mode="stretch_width")  # fmt: skip
    main = pn.Column(
        header, notice, path_notice, lessons.view(), compared, solver_readout(state, comparison),
        legend(state, comparison), playback_controls(state), below,
    )  # fmt: skip
    app = pn.Row(side, main, sizing_mode="stretch_width")
    theme = Theme(app, lambda: _figures(doc) or [views.particle_fig, views.density_fig])

    def themed(event) -> None:
        name = "dark" if event.new else "light"
        if page.get("theme", "light") == name:
            return  # the theme the page loaded with (its link's), shown once it had loaded
        page["theme"] = name
        mirror()
        if served and _reloading_loses_nothing(state):
            # Panel styles each widget in its own shadow root, from the theme its page loaded
            # with: switched later, the figures and the page's paper turned, but widgets stayed
            # light and text dark on the dark page. The link holds every setting (mirrored just
            # now), so the page loads again, with the theme.
            pn.state.location.reload = True

    theme.switch.param.watch(themed, "value")
    comparison.param.watch(lambda _e: theme.show(theme.name), ["on", "layout"])  # B's figures
    header.insert(3, theme.switch)
    if page.get("theme", "light") != "light":
        if served:  # once the page has its figures
            pn.state.onload(lambda: theme.show(page["theme"]))
        else:
            theme.show(page["theme"])
    if served:  # the page paints at once; its first run computes like any other, in turn
        runner.request()
    return app


def _reloading_loses_nothing(state: FlowState) -> bool:
    """Whether this page's link holds all it shows: no network trained here, and no more of
    your points than a link carries (where either is on screen, a theme switch turns the
    figures and the page's paper and leaves the rest for the next load)."""
    points = state.points
    return state.trained is None and (points is None or len(points) <= LINK_MAX_POINTS)


def safe_app() -> pn.viewable.Viewable:
    """The app, or one plain line if it cannot be built: no traceback ever reaches the page."""
    try:
        return create_app()
    except Exception as exc:
        log.exception("could not build the app")
        return Notice(owner=_Message(notice=f"flowscope could not open this page: {one_line(exc)}"))


class _Message(param.Parameterized):
    notice = param.String(default="")


if pn.state.served:
    safe_app().servable(title="flowscope")

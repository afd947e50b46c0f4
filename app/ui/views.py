"""The two linked views (particles, density) and the player that animates them in the browser.

Figures are built once per session; a recompute replaces the data of the *store* sources, and
``static/render.js`` copies one frame at a time from the stores into the displayed sources,
client-side, so playback sends no frame data over the websocket.
"""

from __future__ import annotations

import panel as pn
import param
from bokeh.models import ColumnDataSource, CustomJS, HoverTool, Span, TapTool
from bokeh.palettes import Inferno256

from app.session.state import ARROWS, FlowState
from app.ui import client
from app.ui.frames import (
    LABEL_PALETTE,
    pack_arrows,
    pack_contours,
    pack_grid,
    pack_particles,
    pack_reference,
    positions_fine_enough,
)
from app.ui.posterior_hover import PosteriorHover
from app.ui.view_figures import FRAME, SMALLEST, density_figure, particle_figure

TRAIL_ALPHA = (0.45, 0.18)
# Trails are drawn for the first 500 particles (a random sample): more adds clutter, and costs
# playback its frame rate (measured: 25 fps at N = 2000 with 500 trails, 22 with 1000).
TRAIL_CAP = 500  # newer and older half of a trail


NO_TIMELINE = {"a": [[]], "b": [[]], "at": [0]}  # outside compare mode

# density_source → the image stack sent for it. None for the particles' own density: the
# browser histograms the positions it already holds (render.js), which halves a recompute's
# payload (1.76 → 0.83 MB at N = 2000, T = 100); the server's copy stays for exports and rows.
_STACK = {"particles": None, "exact": "exact", "pde": "pde", "posterior": "posterior"}


def stacks_sent(source: str, result=None) -> tuple[str, ...]:
    """The density stacks ``result`` ships while ``source`` is the density shown: the particles'
    own too when the page could not histogram them faithfully (``positions_fine_enough``)."""
    if _STACK[source] is not None:
        return (_STACK[source],)
    return () if result is None or positions_fine_enough(result) else ("density",)


class ClientPlayer(pn.widgets.Player):
    """Panel's player, kept entirely in the browser: its frame never travels to the server.

    Playback needs no Python: render.js draws each frame from the stores. Syncing the frame
    back cost a websocket message and a server round trip per frame (measured: 20.6 → 24 fps at
    N = 5000 without it), and its traffic slowed recomputes while playing. The server still
    sets ``end``, ``interval`` and ``loop_policy``; it never reads ``value``.
    """

    def _get_model(self, doc, root=None, parent=None, comm=None):
        model = super()._get_model(doc, root, parent, comm)
        model.syncable = False  # browser → server changes stay in the browser
        return model


class FlowViews(pn.viewable.Viewer):
    """Particles (Lagrangian) and density (Eulerian) of the same frame, side by side."""

    state = param.ClassSelector(class_=FlowState)
    which = param.Selector(default="a", objects=["a", "b"],
                           doc="Which run of a comparison these views show")  # fmt: skip

    def __init__(self, timeline: ColumnDataSource | None = None, **params):
        """``timeline``: a comparison's shared timeline (run B's views take run A's)."""
        super().__init__(**params)
        # run B's models are named b_particle_fig, b_grid_store, …: names are unique in a page
        self.prefix = "" if self.which == "a" else "b_"
        empty = {"x": [], "y": []}
        # A comparison's timeline (app/ui/compare/views.py): each run's frame at every step of
        # the player, {a: [(F,)], b: [(F,)]} (one row), empty outside compare mode; `at` the
        # player's step
        self.timeline = timeline if timeline is not None else ColumnDataSource(
            NO_TIMELINE, name="timeline")  # fmt: skip
        src = self._source
        self.pstore = src({"xy": [], "scale": [], "label": [], "n": [], "logp": [], "grid": []},
                          "particle_store")  # fmt: skip
        # busy = 1 while a newer run computes: the player holds the frame (see hold_while_busy)
        self.status = src({"busy": [0]}, "status")
        self.gstore = src({"t": [], "peak": [], "exact_peak": [], "pde_peak": [], "pde_mass": [],
                           "pde_tv": []}, "grid_store")  # fmt: skip
        self.istore = src({"density": [], "exact": [], "pde": [], "posterior": []},
                          "image_store")  # fmt: skip
        self.astore = src({"x": [], "y": []}, "arrow_store")
        self.cstore = src({"xs": [], "ys": []}, "contour_store")
        self.cursor = src({"frame": [0]}, "cursor")
        self.twins = False  # the overlaid comparison's twins are painted (see show_twins)
        self.settings = src(self._settings_data(), "display_settings")
        # the current frame's particles: drawn by render.js on the view's own canvas
        # (static/layer.js); this source serves hovering and clicking (and the overlaid
        # comparison), and is sent to its renderer only when that needs it (render.js)
        self.particles = src({"x": [], "y": [], "label": [], "shade": []}, "particles")
        self.heat = src({"image": []}, "heat")
        self.arrows = src({"x_start": [], "y_start": [], "x_end": [], "y_end": []})
        self.contour = src({"xs": [], "ys": []}, "contour")
        self.picked, self.hovered = src(empty, "picked"), src(empty)
        self.picked_index = src({"index": [-1]})
        # the reference run (models/run/reference.py), and the clicked particle's path in it
        self.rstore = src({"xy": [], "scale": []}, "reference_store")
        self.picked_ref = src(empty, "picked_reference")
        self.hovered_index = src({"index": [-1]})
        self.label = src({"x": [0], "y": [0], "text": [""]}, "time_label")
        self.peak_label = src({"x": [0], "y": [0], "text": [""]}, "peak_label")
        self.marks: list[Span] = []
        self.particle_fig = self._particle_figure()
        self.density_fig = self._density_figure()
        self._wire_picking()
        self.player = ClientPlayer(
            label="frame", start=0, end=1, value=0, interval=40, loop_policy="loop",
            # loop / bounce / stop live in the state (and URL), under the player (controls.py)
            # as wide as the views, which follow the window
            show_loop_controls=False, sizing_mode="stretch_width", max_width=2 * FRAME + 120,
            height=70, value_align="start",
        )  # fmt: skip
        PosteriorHover(self)  # hovering shows p(c | x_t)
        self.state.param.watch(self._push_run, ["result", "arrows"])
        self.state.param.watch(self._push_settings, ["trail"])
        self.state.param.watch(self._push_shade, ["shade", "result"])
        self.state.param.watch(self._push_shown, ["density_source", "overlay"])
        self.state.param.watch(self._push_contours, ["contours"])
        self.state.param.watch(self._push_player, ["fps", "loop"])
        self._push_player()
        if self.state.result is not None:
            self._push_result()

    def _source(self, data: dict, name: str | None = None) -> ColumnDataSource:
        """A source named ``name`` in the page (run B's with the prefix ``b_``)."""
        return ColumnDataSource(data, name=None if name is None else self.prefix + name)

    # --- figures (app/ui/view_figures.py) ------------------------------------------------
    def _particle_figure(self):
        fig, self.dots = particle_figure(
            self.prefix + "particle_fig", self.particles, self.hovered, self.picked,
            self.picked_ref, self.arrows)  # fmt: skip
        return fig

    def _wire_picking(self) -> None:
        """Hovering and clicking a particle redraw the frame with its path (once both views
        exist: the drawing callbacks paint both)."""
        fig, dots = self.particle_fig, self.dots
        args, now = self.js_args(), "cursor.data.frame[0]"
        fig.add_tools(HoverTool(renderers=[dots], tooltips=None,
                                callback=client.draw(args, now, before=("hovered",))))  # fmt: skip
        fig.add_tools(TapTool(renderers=[dots]))
        self.particles.selected.js_on_change("indices", client.draw(args, now, before=("picked",)))

    def _density_figure(self):
        fig, self.image = density_figure(self.prefix + "density_fig", self.particle_fig,
                                         self.heat, self.contour, self.arrows)  # fmt: skip
        return fig

    def js_args(self) -> dict:
        """The stores and sources ``render.js`` reads and writes, by the names it uses."""
        return dict(
            cursor=self.cursor, settings=self.settings, pstore=self.pstore, gstore=self.gstore,
            istore=self.istore,
            astore=self.astore, cstore=self.cstore, particles=self.particles,
            particle_fig=self.particle_fig, density_fig=self.density_fig,
            image_glyph=self.image.glyph, label_colors=list(LABEL_PALETTE),
            inferno=list(Inferno256), trail_alpha=list(TRAIL_ALPHA),
            heat=self.heat, arrows=self.arrows, contour=self.contour, picked=self.picked,
            hovered=self.hovered, picked_index=self.picked_index, rstore=self.rstore,
            picked_ref=self.picked_ref,
            hovered_index=self.hovered_index, label=self.label, peak_label=self.peak_label,
            marks=self.marks, status=self.status, timeline=self.timeline,
        )  # fmt: skip

    def fit_to_window(self) -> CustomJS:
        """The page's callback that sizes both views to the window, square (fit_views.js)."""
        return client.callback("fit_views", figs=[self.particle_fig, self.density_fig],
                               largest=FRAME, smallest=SMALLEST)  # fmt: skip

    def link_marks(self, marks: list[Span]) -> None:
        """Register time markers (non-syncable Spans) of other plots, and wire the callbacks.

        Call once, after every plot that shows the current time exists.
        """
        self.marks.extend(marks)
        args = self.js_args()
        # the player's step is the timeline's; "timeline moved" redraws run B's views
        moved = (
            "timeline.data.at[0] = timeline._flowscope_at = cb_obj.value;\n"
            "timeline.change.emit();\n"
        )
        self.player.jscallback(value=moved + client.draw_code(
            self.frame_at("cb_obj.value"), before=("hold_while_busy",)), args=args)  # fmt: skip
        self.player.jscallback(end=client.script("keep_frame_in_run"))
        self.timeline.js_on_change("data", client.callback("keep_step", timeline=self.timeline))
        self._redraw_on_new_data(args, then="timeline.change.emit();\n")

    def follow(self) -> None:
        """Run B's views: drawn whenever the timeline moves (run A's player or redraw), at
        B's own frame of the timeline's step."""
        args = self.js_args()
        self.timeline.js_on_change("change", CustomJS(args=args, code=client.draw_code(
            self.frame_at("timeline.data.at[0]"), before=("hold_while_busy",))))  # fmt: skip
        self._redraw_on_new_data(args)

    def _redraw_on_new_data(self, args: dict, then: str = "") -> None:
        redraw = CustomJS(args=args, code=client.script("keep_step") + then + client.draw_code(
            self.frame_at("timeline.data.at[0]")))  # fmt: skip
        # Only the stores pushed last trigger a redraw: the grid rows end every recompute
        # (_push_result), the settings end every display change (_push_shown, _push_contours).
        for src in (self.gstore, self.settings):
            src.js_on_change("data", redraw)

    def frame_at(self, step: str) -> str:
        """The JavaScript expression of this run's frame at step ``step`` (an expression) of
        the player: its frame of the comparison's timeline, or the step itself outside one."""
        return (f"((s, p) => s.length ? s[Math.max(0, Math.min(Math.round(p), s.length - 1))] "
                f": p)(timeline.data.{self.which}[0], {step})")  # fmt: skip

    # --- pushing data -----------------------------------------------------------------------
    def _settings_data(self) -> dict:
        s = self.state
        return {"trail": [s.trail], "trail_cap": [TRAIL_CAP], "density": [s.density_source],
                "posterior_class": [s.result.posterior_class if s.result is not None and
                                    s.result.posterior_class is not None else
                                    max(s.guidance_class, 0)],  # the map's class (render.js)
                "overlay": [s.overlay], "shade": [bool(s.shade)],
                "contours": [bool(s.contours)], "twins": [self.twins]}  # fmt: skip

    def _push_settings(self, *_events) -> None:
        self.settings.data = self._settings_data()

    def _arrow_data(self) -> dict:
        """The shown overlay kind of the current run, packed (empty while none is shown)."""
        s = self.state
        if s.result is None or s.arrows is None or s.overlay == "none":
            return {"x": [], "y": []}
        return pack_arrows(s.arrows, s.result.extent, ARROWS, kinds=(s.overlay,))

    def _push_shown(self, *events) -> None:
        """Ship the density stack or arrows just asked for (each travels only while shown)."""
        s = self.state
        changed = {e.name for e in events}
        if s.result is not None and "density_source" in changed:
            _, images = pack_grid(s.result, stacks=stacks_sent(s.density_source, s.result))
            self.istore.data = images
        if s.result is not None and "overlay" in changed:
            self.astore.data = self._arrow_data()
        self._push_settings()

    def _push_contours(self, *_events) -> None:
        result = self.state.result
        if self.state.contours and result is not None:
            self.cstore.data = pack_contours(result)
        self._push_settings()

    def _push_exact(self) -> None:
        """The exact density of the run on screen arrived after it: ship what shows it."""
        s, result = self.state, self.state.result
        if s.density_source == "exact":
            rows, images = pack_grid(result, stacks=("exact",))
            self.istore.data = images
            self.gstore.patch({"exact_peak": [(slice(len(rows["t"])), rows["exact_peak"])]})
        if s.contours:
            self.cstore.data = pack_contours(result)
        self._push_settings()  # redraws the current frame

    def _push_shade(self, *events) -> None:
        """Redraw in the particles' colours asked for (render.js shades them while asked for
        and the run carries densities)."""
        if any(e.name == "shade" for e in events):  # a new run redraws from its grid rows
            self._push_settings()

    def show_twins(self, on: bool) -> None:
        """Whether the particle view paints the overlaid comparison's twins (A's particles,
        B's and the segments joining them, set by difference.js) instead of A's particles."""
        if self.twins != on:
            self.twins = on
            self._push_settings()

    def hold_while_busy(self, busy: bool) -> None:
        """Tell the browser that a newer run is computing (True) or has landed (False)."""
        self.status.data = {"busy": [int(busy)]}

    def _push_player(self, *_events) -> None:
        self.player.param.update(interval=round(1000 / self.state.fps), loop_policy=self.state.loop)

    def _push_run(self, *events) -> None:
        changed, new = {e.name: e for e in events}, self.state.result
        if "result" in changed and (new is None or not new.same_particles(changed["result"].old)):
            self._push_result()
            return
        if "result" in changed:  # the same particles, with their exact density or reference
            old = changed["result"].old
            if new.exact_density is not old.exact_density:
                self._push_exact()
            shown = self.state.density_source == "posterior"
            if shown and new.posterior_map is not old.posterior_map:  # the class map arrived
                self.istore.data = pack_grid(new, stacks=("posterior",))[1]
                self._push_settings()  # redraws the current frame
            if new.reference is not old.reference:
                self.rstore.data = pack_reference(new)
                self._push_settings()  # redraws the current frame
        if "arrows" in changed:  # overlay fields arrived for the run on screen
            self.astore.data = self._arrow_data()
            self._push_settings()  # redraws the current frame

    def _push_result(self) -> None:
        s = self.state
        if s.result is None:
            return
        result = s.result
        n_frames = len(result.times)
        self.fit_extent(result.extent)
        self.pstore.data = pack_particles(result)
        if result.reference is not None or len(self.rstore.data["xy"]):  # else nothing to send
            self.rstore.data = pack_reference(result)
        # only what is shown travels: at most one density stack, one arrow field
        self.astore.data = self._arrow_data()
        self.cstore.data = pack_contours(result) if s.contours else {"xs": [], "ys": []}
        rows, images = pack_grid(result, stacks=stacks_sent(s.density_source, result))
        self.istore.data = images
        self.gstore.data = rows  # last: its length tells render.js the frame count
        self.fit_player(n_frames)

    def fit_extent(self, extent) -> None:
        """Both views show the run's box (RunConfig.extent): (−4, 4)² for most runs, wider where
        the noise end is (VE, EDM). Only when the box changes: a user's zoom survives reruns."""
        x0, x1, y0, y1 = (float(v) for v in extent)
        if getattr(self, "_extent", (-4.0, 4.0, -4.0, 4.0)) == (x0, x1, y0, y1):
            return
        self._extent = (x0, x1, y0, y1)
        fig = self.particle_fig  # the density view shares its ranges
        fig.x_range.update(start=x0, end=x1, reset_start=x0, reset_end=x1)
        fig.y_range.update(start=y0, end=y1, reset_start=y0, reset_end=y1)
        self.image.glyph.update(x=x0, y=y0, dw=x1 - x0, dh=y1 - y0)  # the heatmap's box too

    def fit_player(self, n_frames: int | None = None) -> None:
        """The player's last step: the run's last frame, or in compare mode the timeline's.
        Only the bound: the browser owns the frame (render.js clamps it to the new run)."""
        steps = len(self.timeline.data["a"][0])
        if not steps:
            result = self.state.result
            steps = n_frames or (len(result.times) if result is not None else 2)
        if self.player.end != steps - 1:
            self.player.end = steps - 1

    def __panel__(self):
        return pn.Column(pn.Row(self.particle_fig, self.density_fig), self.player)

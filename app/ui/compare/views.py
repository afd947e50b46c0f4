"""Compare mode's views: run B beside run A (particles and density each), or both overlaid in
one particle view beside the difference of their densities; one player drives both, each run
showing its own frame of the timeline (``models.compare.pair.match_frames``).

Run B's views, the difference view and their stores are made the first time compare mode is
switched on (a page that never compares pays nothing for them). They follow run A's player
through the shared timeline source: A's player and redraws emit its change, and B's views and
the difference script draw the timeline's step (``app/ui/static/difference.js``).
"""

from __future__ import annotations

import panel as pn
import param
from bokeh.models import ColumnDataSource, CustomJS, LinearColorMapper
from bokeh.plotting import figure

from app.session.compare import Comparison
from app.ui import client
from app.ui.compare.frames import DIVERGING, pack_pair, pack_rows
from app.ui.view_figures import BACKEND, FRAME
from app.ui.views import NO_TIMELINE, TRAIL_CAP, FlowViews

A_COLOUR, B_COLOUR, LINK_COLOUR = "#1f77b4", "#ff7f0e", "#999999"
TITLES = {"particle_fig": "Particles (Lagrangian view)", "density_fig": "Density (Eulerian view)"}


class CompareViews(pn.viewable.Viewer):
    """Run A's views alone, or A and B in the layout compare mode asks for."""

    comparison = param.ClassSelector(class_=Comparison)

    def __init__(self, views: FlowViews, later=None, **params):
        """``later(fn, ms)`` runs fn on the session thread ms from now (at once by default)."""
        super().__init__(**params)
        self.views = views
        self._later = later or (lambda fn, _ms: fn())
        self.views_b: FlowViews | None = None
        self.diff_fig = None
        self._shown = None  # the pair whose difference the page has
        self.note = pn.pane.Str("", name="compare_note", visible=False, margin=(0, 10),
                                styles={"font-size": "12px", "color": "#8a4b00"})  # fmt: skip
        self.dstore = ColumnDataSource({"diff": []}, name="difference_store")
        self.rows = ColumnDataSource({"t": [], "twin": [], "sw2": [], "scale": []},
                                     name="pair_rows")  # fmt: skip
        self.readout = ColumnDataSource({"x": [-3.9], "y": [-3.9], "text": [""]},
                                        name="pair_readout")  # fmt: skip
        self.layout_src = ColumnDataSource({"mode": ["side"], "cap": [TRAIL_CAP]},
                                           name="compare_layout")  # fmt: skip
        self.panel = pn.Column(pn.Row(views.particle_fig, views.density_fig), views.player,
                               self.note, sizing_mode="stretch_width")  # fmt: skip
        c = self.comparison
        c.param.watch(self._relayout, ["on", "layout"])
        c.param.watch(self._push_pair, ["pair"])
        c.param.watch(self._difference_if_shown, ["layout"])
        views.state.param.watch(self._push_pair, ["density_source"])
        if c.on:
            self._relayout()

    # --- figures -------------------------------------------------------------------------
    def _build(self) -> None:
        """Run B's views and the difference view, once, and their callbacks."""
        a = self.views
        self.views_b = FlowViews(state=self.comparison.b, timeline=a.timeline, which="b")
        self.views_b.follow()
        for fig in (self.views_b.particle_fig, self.views_b.density_fig):
            fig.frame_width = fig.frame_height = FRAME
        self.views_b.particle_fig.text(
            x="x", y="y", text="text", source=self.readout, text_font_size="12px",
            text_color="#333333", level="overlay", background_fill_color="#ffffff",
            background_fill_alpha=0.75)  # fmt: skip
        self.diff_fig = self._difference_figure()
        args = dict(timeline=a.timeline, dstore=self.dstore, rows=self.rows,
                    diff_fig=self.diff_fig, diff_image=self.diff_image,
                    diverging=list(DIVERGING), readout=self.readout, a_store=a.pstore,
                    b_store=self.views_b.pstore, twin_colors=[A_COLOUR, B_COLOUR, LINK_COLOUR],
                    layout=self.layout_src, a_fig=a.particle_fig,
                    figs=[self.views_b.particle_fig, self.views_b.density_fig,
                          self.diff_fig])  # fmt: skip
        # layer.js and paint.js: the canvases it paints (defined once per page, by whichever
        # script runs first)
        code = client.script("layer") + client.script("paint") + client.script("match_sizes") \
            + client.script("keep_step") + "const step = timeline.data.at[0];\n" \
            + client.script("difference")  # fmt: skip
        draw = CustomJS(args=args, code=code)
        a.timeline.js_on_change("change", draw)
        for src in (self.rows, self.layout_src):  # rows: pushed after the stack (_push_pair)
            src.js_on_change("data", draw)
        # and whenever fit_views.js resizes A's views (a window resized while paused)
        match = CustomJS(args={"a_fig": a.particle_fig, "figs": args["figs"]},
                         code=client.script("match_sizes"))  # fmt: skip
        a.particle_fig.js_on_change("frame_width", match)

    def _difference_figure(self):
        fig = figure(title="Density A − B (red: A more, blue: B)",
                     frame_width=FRAME, frame_height=FRAME, x_range=self.views.particle_fig.x_range,
                     y_range=self.views.particle_fig.y_range, name="difference_fig",
                     tools="pan,wheel_zoom,box_zoom,reset,save", output_backend=BACKEND,
                     toolbar_location="above")  # fmt: skip
        x0, x1, y0, y1 = self.comparison.a.config().extent
        # The image and the readout are painted on the view's own canvas (difference.js,
        # paint.js), as the density view's heatmap is; the glyph, never drawn, holds the place.
        mapper = LinearColorMapper(palette=list(DIVERGING), low=0, high=255)
        img = self.diff_image = fig.image(image="image", x=x0, y=y0, dw=x1 - x0, dh=y1 - y0,
                                          source=ColumnDataSource({"image": []}),
                                          color_mapper=mapper)  # fmt: skip
        img.nonselection_glyph = None
        img.glyph.global_alpha = 0
        fig.grid.visible = False  # it would draw over the picture, under the canvas's labels
        fig.background_fill_alpha = 0  # the canvas under the plot paints the paper
        return fig

    # --- layout and data -----------------------------------------------------------------
    def _relayout(self, *_events) -> None:
        if self.comparison.on and self.views_b is None:
            self._build()
            # B's figures and sources reach the page with the callbacks just added, a
            # document change sent when this callback ends; the layout's change is sent at
            # once (Panel's own). Sent now, it named B's figures before the page knew them
            # ("reference … isn't known", and no B). So the layout follows on the next tick.
            self._later(self._lay_out, 0)
            return
        self._lay_out()

    def _lay_out(self) -> None:
        c, a = self.comparison, self.views
        overlay = c.on and c.layout == "overlay"
        a.show_twins(overlay)  # A's view paints A and B and their twins' segments
        for name, fig in (("particle_fig", a.particle_fig), ("density_fig", a.density_fig)):
            fig.title.text = f"A: {TITLES[name]}" if c.on else TITLES[name]
        if self.views_b is not None:
            for name in TITLES:
                getattr(self.views_b, name).title.text = f"B: {TITLES[name]}"
        if not c.on:
            rows = [pn.Row(a.particle_fig, a.density_fig)]
            a.timeline.data = dict(NO_TIMELINE)
            a.fit_player()
        elif overlay:
            rows = [pn.Row(a.particle_fig, self.diff_fig)]
        else:
            b = self.views_b
            rows = [pn.Row(a.particle_fig, a.density_fig), pn.Row(b.particle_fig, b.density_fig)]
        self.layout_src.data = {"mode": [c.layout if c.on else "off"],
                                "cap": self.layout_src.data["cap"]}  # fmt: skip
        self.panel.objects = [*rows, a.player, self.note]

    def _push_pair(self, *events) -> None:
        """A new pair, or another density shown: its timeline, difference and readouts. The
        pair is published before the runs themselves (runner.py), so that each view meets its
        run with the timeline it is shown on. The same pair with more readouts (SW2, after
        the paint) sends its rows alone."""
        pair, a = self.comparison.pair, self.views
        if pair is None or self.views_b is None:
            self.note.visible = False
            self._shown = None
            return
        old = self._shown
        self._shown = pair
        self._fit_extent(pair.a.extent)
        difference = self.comparison.layout == "overlay"  # the only layout that shows it
        same = (
            old is not None
            and old.a.same_particles(pair.a)
            and old.b.same_particles(pair.b)
            and not any(e.name in ("density_source", "layout") for e in events)
        )
        if same:  # fmt: skip
            self.rows.data = pack_rows(pair, self.rows.data["scale"][0])
            return
        timeline, dstore, rows, note = pack_pair(pair, a.state.density_source, difference)
        if list(a.timeline.data["a"][0]) != list(timeline["a"][0]) or \
                list(a.timeline.data["b"][0]) != list(timeline["b"][0]):  # fmt: skip
            timeline["at"] = a.timeline.data["at"]
            a.timeline.data = timeline
        self.dstore.data = dstore
        # segments join twins only: none where the two runs did not start alike
        cap = TRAIL_CAP if pair.twin_distance is not None else 0
        if self.layout_src.data["cap"][0] != cap:
            self.layout_src.data = {"mode": self.layout_src.data["mode"], "cap": [cap]}
        self.rows.data = rows  # last: it redraws the step
        self.note.object, self.note.visible = note, bool(note)
        a.fit_player()

    def _fit_extent(self, extent) -> None:
        """The difference view and the readouts in the pair's box (A's and B's share one)."""
        x0, x1, y0, y1 = (float(v) for v in extent)
        self.diff_image.glyph.update(x=x0, y=y0, dw=x1 - x0, dh=y1 - y0)
        corner = [x0 + 0.0125 * (x1 - x0)], [y0 + 0.0125 * (y1 - y0)]
        if (self.readout.data["x"], self.readout.data["y"]) != corner:
            self.readout.data = {**self.readout.data, "x": corner[0], "y": corner[1]}

    def _difference_if_shown(self, event) -> None:
        """The overlaid layout shows the difference: make it for the pair on screen."""
        if event.new == "overlay" and self.comparison.pair is not None:
            self._push_pair(event)

    def hold_while_busy(self, busy: bool) -> None:
        """Tell both runs' views that a newer pair is computing."""
        self.views.hold_while_busy(busy)
        if self.views_b is not None:
            self.views_b.hold_while_busy(busy)

    def __panel__(self):
        return self.panel

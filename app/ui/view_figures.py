"""The two views' Bokeh figures: what Bokeh itself still draws of them (arrows, contours, the
hovered and picked paths, axes and tools), and the glyphs kept unpainted for hit-testing and
the colour bar. The particles, trails, heatmap and labels are painted on each figure's own
canvases by the page (static/layer.js, paint.js, render.js); ``app/ui/views.py`` wires both.
"""

from __future__ import annotations

from bokeh.models import Arrow, ColumnDataSource, CustomJSTickFormatter, LinearColorMapper, VeeHead
from bokeh.palettes import Inferno256
from bokeh.plotting import figure

from app.ui import client

# Inner plotting area of each view, in pixels: FRAME where the window has room, down to
# SMALLEST in a narrow one (a projector's 1024 pixels), always square (static/fit_views.js).
FRAME, SMALLEST = 400, 240
# What Bokeh still draws (arrows, contours, the picked paths) on its canvas backend: WebGL was
# measured 2-4x slower in headless Chromium (software GL). The particles, trails and heatmap are
# painted on the views' own canvases (static/layer.js, paint.js): 17.5 -> 58 fps at N = 5000.
BACKEND = "canvas"
ARROW_BODY, ARROW_OUTLINE = "#ffffff", "#111111"  # the overlay's arrows (see add_arrows)


def view_frame(title: str, name: str):
    """An empty square view over [-4, 4]², its tools above it."""
    fig = figure(
        # Equal inner frames in both views (the colour bar must not squeeze the density):
        # one data unit is the same length on screen, in x and y, left and right.
        title=title, frame_width=FRAME, frame_height=FRAME, x_range=(-4, 4), y_range=(-4, 4),
        # no "save": it would save Bokeh's canvas alone, without the particles and the
        # heatmap painted on the view's own (static/layer.js); the Export menu saves views
        tools="pan,wheel_zoom,box_zoom,reset", name=name,
        output_backend=BACKEND, toolbar_location="above",
    )  # fmt: skip
    fig.grid.grid_line_alpha = 0.25
    return fig


def particle_figure(name: str, particles: ColumnDataSource, hovered: ColumnDataSource,
                    picked: ColumnDataSource, picked_ref: ColumnDataSource,
                    arrows: ColumnDataSource):  # fmt: skip
    """(the particle view, its unpainted dots): the hovered path, the picked one and its
    reference (dashed), the overlay's arrows."""
    fig = view_frame("Particles (Lagrangian view)", name)
    # The particles, their trails and the time label are drawn on the view's own canvases
    # (static/layer.js, under and over Bokeh's); the plot's paper is that canvas's.
    fig.background_fill_alpha = 0
    # not drawn (fill_alpha 0): the renderer the hover and tap tools hit-test. On the overlay
    # level, its source's change (each new run, each paused frame) repaints only Bokeh's
    # overlay layer; on the glyph level it repainted the whole figure, axes and grid (10-30
    # ms, in the frame that paints the new particles).
    dots = fig.scatter(
        "x", "y", source=particles, size=4, line_color=None, marker="square", level="overlay",
        fill_alpha=0, selection_fill_alpha=0, nonselection_fill_alpha=0)  # fmt: skip
    fig.line("x", "y", source=hovered, line_color="#444444", line_width=1.5, line_alpha=0.7)
    fig.line("x", "y", source=picked, line_color="black", line_width=2.5)
    fig.line("x", "y", source=picked_ref, line_color="#d62728", line_width=2,
             line_dash="dashed")  # fmt: skip
    add_arrows(fig, arrows)
    # while the pointer is over the view, its particles' source follows every frame, so
    # that hovering finds the particle under it while the player plays (render.js)
    fig.js_on_event("mousemove", client.callback("pointer"))
    return fig, dots


def add_arrows(fig, arrows: ColumnDataSource) -> None:
    """Each arrow twice: a wide dark outline, then a light body on it. One of the two stands
    out on every background: the heatmap's near-black and its pale yellow, and the particle
    view's white (a single dark grey vanished on the dark heatmap)."""
    for colour, width, head in ((ARROW_OUTLINE, 3.2, 8), (ARROW_BODY, 1.4, 5)):
        fig.add_layout(Arrow(source=arrows, x_start="x_start", y_start="y_start",
                             x_end="x_end", y_end="y_end", line_color=colour,
                             line_width=width, line_alpha=0.9,
                             end=VeeHead(size=head, fill_color=colour, line_color=colour,
                                         line_alpha=0.9, fill_alpha=0.9)))  # fmt: skip


def density_figure(name: str, particle_fig, heat: ColumnDataSource, contour: ColumnDataSource,
                   arrows: ColumnDataSource):  # fmt: skip
    """(the density view, its unpainted image renderer): sharing the particle view's ranges,
    with the colour bar, the exact density's contours and the overlay's arrows."""
    fig = view_frame("Density (Eulerian view)", name)
    fig.x_range, fig.y_range = particle_fig.x_range, particle_fig.y_range
    mapper = LinearColorMapper(palette=Inferno256, low=0, high=255)
    img = fig.image(image="image", x=-4, y=-4, dw=8, dh=8, source=heat, color_mapper=mapper)
    img.nonselection_glyph = None  # measured: it would keep showing frame 0
    bar = img.construct_color_bar(
        title="density / frame peak", width=10,
        formatter=CustomJSTickFormatter(code=client.script("colorbar_ticks")),
    )  # fmt: skip
    fig.add_layout(bar, "right")
    fig.multi_line("xs", "ys", source=contour, line_color="#7fd3ff", line_width=1.2)
    add_arrows(fig, arrows)
    # the heatmap and its peak label are drawn on the view's own canvases (render.js);
    # the image stays, unpainted, for hovering (posterior_hover.py) and the colour bar
    img.glyph.global_alpha = 0
    fig.grid.visible = False  # the heatmap covered it (now it would draw over the heatmap)
    fig.background_fill_color = "#000004"
    fig.background_fill_alpha = 0
    return fig, img

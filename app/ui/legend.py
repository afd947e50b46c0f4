"""The legend under the views: what the particles' colours and the heatmap mean.

Particles are coloured by the class of the data they come from (or go to): the data set's own
classes, named, in the palette the views use (``LABEL_PALETTE``), or, with shading on, by the
density each one carries. The heatmap's scale is its colour bar; the legend names what it shows.
Everything is escaped: the names of your own classes come from a file or a link.
"""

from __future__ import annotations

import html

import panel as pn

from app.session.compare import Comparison
from app.session.state import FlowState
from app.ui.compare.views import A_COLOUR, B_COLOUR
from app.ui.frames import LABEL_PALETTE

HEATMAP = {
    "particles": "heatmap: the particles' histogram, each frame scaled to its peak (colour bar)",
    "pde": "heatmap: the density solved on the grid by the PDE, scaled to each frame's peak",
    "exact": "heatmap: the exact density p_t, scaled to each frame's peak",
    "posterior": "heatmap: p(class | x_t) of the guided class, from 0 to 1",
}
MAX_SWATCHES = 12  # the checkerboard has 8 classes, your points at most 10 colours
STYLE = {"font-size": "12px", "color": "var(--flowscope-muted, #333)"}  # theme.py sets it


def _swatch(colour: str, text: str) -> str:
    return (f'<span style="white-space:nowrap;margin-right:10px"><span style="display:'
            f"inline-block;width:10px;height:10px;background:{colour};margin-right:4px;"
            f'vertical-align:middle"></span>{html.escape(text, quote=True)}</span>')  # fmt: skip


OVERLAID = ("grey segments join each particle of A to its twin in B (the same noise at the "
            "start)<br>heatmap: density A − B, red where A has more, blue where B has more, "
            "each step on its own symmetric scale")  # fmt: skip


def legend_html(state: FlowState, comparison: Comparison | None = None) -> str:
    """The legend of the state's current settings (and, overlaid, of the comparison's), as
    HTML of escaped text."""
    if comparison is not None and comparison.on and comparison.layout == "overlay":
        return (f"particles: {_swatch(A_COLOUR, 'run A')}{_swatch(B_COLOUR, 'run B')}"
                f"{html.escape(OVERLAID).replace('&lt;br&gt;', '<br>')}")  # fmt: skip
    heatmap = html.escape(HEATMAP[state.density_source])
    if state.shade:
        particles = ("particles: coloured by the log-density each carries along its path, "
                     "in the heatmap's colours")  # fmt: skip
    else:
        classes = [(k, label.split(": ", 1)[-1])
                   for label, k in state.class_options().items() if k >= 0]  # fmt: skip
        if len(classes) <= 1:
            particles = "particles: one class"
        else:
            swatches = "".join(_swatch(LABEL_PALETTE[k % len(LABEL_PALETTE)], name)
                               for k, name in classes[:MAX_SWATCHES])  # fmt: skip
            more = "…" if len(classes) > MAX_SWATCHES else ""
            return f"particles by class: {swatches}{more}<br>{heatmap}"
    return f"{html.escape(particles)}<br>{heatmap}"


def legend(state: FlowState, comparison: Comparison | None = None) -> pn.pane.HTML:
    """The legend, redrawn when what it describes changes."""
    pane = pn.pane.HTML(legend_html(state, comparison), styles=STYLE, margin=(0, 10), name="legend",
                        css_classes=["flowscope-legend"], sizing_mode="stretch_width")  # fmt: skip

    def update(*_events) -> None:
        pane.object = legend_html(state, comparison)

    state.param.watch(update, ["shade", "density_source", "dataset", "points", "point_labels"])
    if comparison is not None:
        comparison.param.watch(update, ["on", "layout"])
    return pane

"""A standalone HTML page of a comparison: run A's two views and run B's, as the single-run
page draws them (``app/export/page.py``: the app's own figures and ``render.js``), and the
density A − B, driven by one slider and play button over the comparison's timeline. Step f
draws A's frame ``frames.a[f]`` and B's ``frames.b[f]``; a line under the views reads out t,
the twin distance and SW2. Plays from disk with no server and no network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, CustomJS, Div, LinearColorMapper, Slider, Toggle
from bokeh.plotting import figure

from app.export import ExportSettings
from app.export.caption import SOURCE, settings_text
from app.export.page import PAUSED, PLAYING, InlineCore, page_views
from app.export.pair_frames import DIVERGING, change_text, difference_codes, step_text
from app.ui import client

# Draws the difference panel of step `f` and the step's readout (args: dstore, diff, tops,
# readout, lines, source).
DIFFERENCE_JS = """
const f = cb_obj.value === undefined ? 0 : cb_obj.value;
const D = dstore.data.codes[0], h = D.shape[1], w = D.shape[2];
if (D.shape[0] > f) {
  const codes = new Uint8Array(D.buffer, D.byteOffset + f * h * w, h * w);
  diff.data.image = [new D.constructor(codes, [h, w])];
  diff.change.emit();
}
readout.text = lines[f] + (tops.length ? "   |A − B| up to " + tops[f].toPrecision(3) : "");
"""


def difference_stack(pair, source: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes (F, H, W) uint8 of A − B at every step and each step's largest |A − B| (F,), or
    None where the density grids differ (``pair_frames.difference_codes``)."""
    from models.compare.pair import density_difference

    try:
        diff = density_difference(pair, source)
    except ValueError:
        return None
    made = [difference_codes(d) for d in diff]
    return np.stack([c for c, _ in made]), np.array([top for _, top in made])


def difference_figure(pair, settings: ExportSettings, x_range, y_range):
    """The A − B figure, its store of every step's codes and each step's largest |A − B|."""
    made = difference_stack(pair, settings.density_source)
    h, w = pair.a.config.grid.shape
    codes, tops = made if made is not None else (np.zeros((0, h, w), np.uint8), np.zeros(0))
    source = SOURCE.get(settings.density_source, settings.density_source)
    title = f"A − B density ({source})" if made is not None else "A − B: different grids"
    fig = figure(title=title, frame_width=settings.size, frame_height=settings.size,
                 x_range=x_range, y_range=y_range, tools="pan,wheel_zoom,box_zoom,reset,save",
                 toolbar_location="above", name="difference_fig")  # fmt: skip
    palette = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in DIVERGING]
    mapper = LinearColorMapper(palette=palette, low=-0.5, high=255.5)  # code k → palette[k]
    x0, x1, y0, y1 = pair.a.extent
    first = codes[:1] if len(codes) else np.full((1, h, w), 128, np.uint8)
    shown = ColumnDataSource({"image": [first[0]]}, name="difference")
    fig.image(image="image", x=x0, y=y0, dw=x1 - x0, dh=y1 - y0, source=shown,
              color_mapper=mapper)  # fmt: skip
    fig.grid.grid_line_alpha = 0.25
    store = ColumnDataSource({"codes": [codes]}, name="difference_store")
    return fig, shown, store, tops


def standalone_pair_html(pair, settings: ExportSettings, arrows=None) -> str:
    """The page as a string; ``arrows`` is (A's overlay fields, B's), either None."""
    arrows_a, arrows_b = arrows or (None, None)
    views = [page_views(pair.a, settings, arrows_a), page_views(pair.b, settings, arrows_b)]
    for name, v in zip("AB", views, strict=True):
        v.particle_fig.title.text = f"{name}: particles"
        v.density_fig.title.text = f"{name}: density"
    views[1].particle_fig.x_range = views[1].density_fig.x_range = views[0].particle_fig.x_range
    views[1].particle_fig.y_range = views[1].density_fig.y_range = views[0].particle_fig.y_range
    diff_fig, diff, store, tops = difference_figure(pair, settings, views[0].particle_fig.x_range,
                                                    views[0].particle_fig.y_range)  # fmt: skip
    last = len(pair.frames.times) - 1
    slider = Slider(start=0, end=max(last, 1), value=0, step=1, title="step",
                    width=max(4 * settings.size, 200), disabled=last == 0)  # fmt: skip
    toggle = Toggle(label=PLAYING, active=last > 0, width=100, name="play")
    lines = [step_text(pair, f) for f in range(last + 1)]
    readout = Div(text=lines[0], render_as_text=True, styles={"font-family": "monospace"})
    shown = {"a": pair.frames.a.tolist(), "b": pair.frames.b.tolist()}
    draws = [client.draw({**v.js_args(), "shown": shown[k]}, "shown[cb_obj.value]")
             for k, v in zip("ab", views, strict=True)]  # fmt: skip
    step = CustomJS(args={"dstore": store, "diff": diff, "tops": tops.tolist(),
                          "readout": readout, "lines": lines}, code=DIFFERENCE_JS)  # fmt: skip
    for callback in (*draws, step):
        slider.js_on_change("value", callback)
    play = {"slider": slider, "toggle": toggle, "interval": round(1000 / settings.fps),
            "playing": PLAYING, "paused": PAUSED}  # fmt: skip
    toggle.js_on_change("active", client.callback("play", **play))
    text = (
        f"A: {settings_text(pair.a)}\nB: {settings_text(pair.b)}\n"
        f"{change_text(pair.changes)} · noise shared: {pair.shared}"
    )
    note = Div(text=text, render_as_text=True,
               styles={"color": "#555", "white-space": "pre-wrap"})  # fmt: skip
    doc = Document()
    figures = row(*(fig for v in views for fig in (v.particle_fig, v.density_fig)), diff_fig)
    doc.add_root(column(figures, row(toggle, slider), readout, note))
    # first paint (step 0 of each), then play (play.js goes first in A's: render.js may
    # return early, so it goes last)
    doc.js_on_event(
        "document_ready",
        client.draw({**views[0].js_args(), **play}, str(int(pair.frames.a[0])), before=("play",)),
    )
    doc.js_on_event("document_ready", client.draw(views[1].js_args(), str(int(pair.frames.b[0]))))
    changes = change_text(pair.changes)
    return file_html(doc, InlineCore(mode="inline"), title=f"flowscope: A vs B ({changes})")


def write_pair_html(pair, path: Path, settings: ExportSettings, arrows=None,
                    progress=None) -> None:  # fmt: skip
    """Write :func:`standalone_pair_html` to ``path`` (UTF-8)."""
    Path(path).write_text(standalone_pair_html(pair, settings, arrows), "utf-8")
    if progress is not None:
        progress(1, 1)

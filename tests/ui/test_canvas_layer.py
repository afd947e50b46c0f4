"""The views' own canvases (static/layer.js, paint.js) in a real Chromium, against what the page
holds: every particle is painted where its data coordinates fall in the plot's frame, each
heatmap cell in Bokeh's own colour for its code, and both follow a pan while paused."""

from __future__ import annotations

import io

import numpy as np
from bokeh.palettes import Inferno256
from PIL import Image

from app.ui.frames import LABEL_PALETTE

# the frame's box on the page and its data ranges, for a named figure
FRAME = """(n) => { const m = Bokeh.documents[0].get_model_by_name(n);
  for (const root of Bokeh.index.roots) { const v = root.owner.find_one(m);
    if (v) { const r = v.canvas_view.el.getBoundingClientRect(), b = v.frame.bbox;
      return {left: r.left + b.left, top: r.top + b.top, width: b.width, height: b.height,
              x0: m.x_range.start, x1: m.x_range.end, y0: m.y_range.start, y1: m.y_range.end};
    } } }"""


def window_pixels(page) -> np.ndarray:
    page.js("() => window.scrollTo(0, 0)")
    png = page.page.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def to_screen(frame: dict, x, y) -> tuple[np.ndarray, np.ndarray]:
    kx = frame["width"] / (frame["x1"] - frame["x0"])
    ky = frame["height"] / (frame["y1"] - frame["y0"])
    return frame["left"] + (np.asarray(x) - frame["x0"]) * kx, \
        frame["top"] + (frame["y1"] - np.asarray(y)) * ky  # fmt: skip


def rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[k : k + 2], 16) for k in (1, 3, 5)], np.int16)


def test_particles_are_painted_where_they_are_in_their_colours(app):
    page = app("?particles=100&steps=20&trail=0")
    page.pause_at(20)
    x, y = (np.array(page.model_data("particles", c)) for c in ("x", "y"))
    labels = np.array(page.model_data("particles", "label"))
    frame = page.js(FRAME, "particle_fig")
    pixels = window_pixels(page)
    sx, sy = to_screen(frame, x, y)
    inside = (sx > frame["left"] + 3) & (sx < frame["left"] + frame["width"] - 3) & \
        (sy > frame["top"] + 25) & (sy < frame["top"] + frame["height"] - 3)  # fmt: skip
    assert inside.sum() > 80
    white = np.array([255, 255, 255])
    colours = np.array([rgb(c) for c in LABEL_PALETTE])
    hits = 0
    for px, py, k in zip(sx[inside], sy[inside], labels[inside], strict=True):
        got = pixels[int(py), int(px)]
        assert np.abs(got - white).sum() > 60, (px, py, got)  # something is painted there
        # 85 % of the label's colour over white, unless another particle lies on top
        want = 0.85 * colours[k % len(colours)] + 0.15 * white
        hits += np.abs(got - want).max() <= 12
    assert hits >= 0.8 * inside.sum(), hits
    assert page.errors == []


def test_each_heatmap_cell_is_bokehs_colour_of_its_code_and_follows_a_pan(app):
    page = app("?steps=20&density_source=exact")
    page.pause_at(10)
    codes = np.array(page.js("() => Array.from(Bokeh.documents[0].get_model_by_name('heat')"
                             ".data.image[0])"), np.int64)  # fmt: skip
    h = w = round(np.sqrt(codes.size))
    codes = codes.reshape(h, w)  # row 0 at the bottom, as Bokeh's image
    x0, y0, dw, dh = page.js("() => { const g = [...Bokeh.documents[0].all_models].find((m) =>"
                             " m.type === 'Image'); const v = (a) => typeof a === 'number' ? a"
                             " : a.value; return [g.x, g.y, g.dw, g.dh].map(v); }")  # fmt: skip

    def check(frame) -> int:
        pixels = window_pixels(page)
        rows, cols = np.meshgrid(np.arange(2, h - 2, 7), np.arange(2, w - 2, 7), indexing="ij")
        cx, cy = x0 + (cols + 0.5) * dw / w, y0 + (rows + 0.5) * dh / h
        sx, sy = to_screen(frame, cx, cy)
        shown = (sx > frame["left"] + 2) & (sx < frame["left"] + frame["width"] - 2) & \
            (sy > frame["top"] + 40) & (sy < frame["top"] + frame["height"] - 2)  # fmt: skip
        good = 0
        for r, c, px, py in zip(rows[shown], cols[shown], sx[shown], sy[shown], strict=True):
            got = pixels[int(py), int(px)]
            good += np.abs(got - rgb(Inferno256[codes[r, c]])).max() <= 3
        assert good >= 0.95 * shown.sum() and shown.sum() > 30, (good, shown.sum())
        return good

    check(page.js(FRAME, "density_fig"))
    # a pan while paused: the layer paints again at the new ranges
    page.js(
        "() => { const m = Bokeh.documents[0].get_model_by_name('particle_fig');"
        " m.x_range.setv({start: m.x_range.start + 1, end: m.x_range.end + 1}); }"
    )
    page.page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('particle_fig').x_range.start > -3.5"
    )
    page.page.wait_for_timeout(300)
    check(page.js(FRAME, "density_fig"))
    assert page.errors == []

"""What the page draws over the views, for the exported frames: contour lines of the exact
density, the field overlay's arrows, and particles coloured by the density they carry.

The geometry is the page's own (``app/ui/frames.py``: ``pack_contours``, ``pack_arrows``), so
the lines and arrows are the ones the browser draws; the look follows ``app/ui/views.py``
(colours, widths, Bokeh's VeeHead) scaled from its 400 px view. Pillow draws the shapes into a
coverage mask that is then blended into the frame, so overlapping strokes blend once, as one
canvas stroke does.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from app.ui.frames import pack_arrows, pack_contours

CONTOUR_RGB = np.array([0x7F, 0xD3, 0xFF], np.float32)  # views.py: line_color="#7fd3ff"
# views.py draws each arrow twice: a wide dark outline, then a light body on it (alpha 0.9)
ARROW_PASSES = (  # (colour, line width, head size) at the page's 400 px view
    (np.array([0x11, 0x11, 0x11], np.float32), 3.2, 8),  # ARROW_OUTLINE
    (np.array([0xFF, 0xFF, 0xFF], np.float32), 1.4, 5),  # ARROW_BODY
)
ARROW_ALPHA = 0.9
LINE_PX = 1.2  # the contour lines' width in views.py, at its 400 px view
SHADE_ALPHA = 0.95  # the shaded particles' fill_alpha in views.py
APP_FRAME = 400


def blend(view: np.ndarray, mask: Image.Image, rgb: np.ndarray, alpha: float) -> None:
    """Paint ``rgb`` at ``alpha`` into ``view`` (H, W, 3) uint8 wherever ``mask`` is set."""
    rows, cols = np.nonzero(np.asarray(mask))
    if rows.size:
        old = view[rows, cols].astype(np.float32)
        view[rows, cols] = (old * (1 - alpha) + rgb * alpha).astype(np.uint8)


def data_to_pixels(x: np.ndarray, y: np.ndarray, extent, size: int) -> np.ndarray:
    """Data coordinates → Pillow's (x right, y down) pixel coordinates, (..., 2) float."""
    x0, x1, y0, y1 = extent
    return np.stack([(x - x0) * (size / (x1 - x0)), (y1 - y) * (size / (y1 - y0))], -1)


class Contours:
    """Contour lines of the exact density per frame (the page's levels), in pixels."""

    def __init__(self, result, size: int):
        lines = pack_contours(result)  # empty for a run without the exact density: none drawn
        self.size, self.width = size, max(1, round(LINE_PX * size / APP_FRAME))
        self.lines = [
            [data_to_pixels(x, y, result.extent, size) for x, y in zip(xs, ys, strict=True)]
            for xs, ys in zip(lines["xs"], lines["ys"], strict=True)
        ]

    def draw(self, view: np.ndarray, i: int) -> None:
        if i >= len(self.lines) or not self.lines[i]:
            return
        mask = Image.new("L", (self.size, self.size))
        pen = ImageDraw.Draw(mask)
        for line in self.lines[i]:
            pen.line([tuple(p) for p in line.tolist()], fill=255, width=self.width)
        blend(view, mask, CONTOUR_RGB, 1.0)


class Arrows:
    """The overlay's arrows of one kind per frame, scaled as the page scales them."""

    def __init__(self, arrows: dict, kind: str, extent, size: int):
        n = round(math.sqrt(len(arrows["points"])))  # the page's n x n grid of tails
        packed = pack_arrows(arrows, extent, n, kinds=(kind,))
        x, y = packed["x"][0], packed["y"][0]
        disp = packed[kind][0].reshape(-1, 2, len(x))  # (F, 2, P)
        self.tails = data_to_pixels(x, y, extent, size)  # (P, 2)
        self.tips = data_to_pixels(x + disp[:, 0], y + disp[:, 1], extent, size)  # (F, P, 2)
        self.size = size

    def draw(self, views: list[np.ndarray], i: int) -> None:
        """Draw frame i's arrows into each of ``views`` (the page draws them on both): the
        outline pass, then the body pass on it."""
        scale = self.size / APP_FRAME
        for rgb, width, head in ARROW_PASSES:
            mask = Image.new("L", (self.size, self.size))
            pen = ImageDraw.Draw(mask)
            for tail, tip in zip(self.tails.tolist(), self.tips[i].tolist(), strict=True):
                if tail != tip:  # a zero vector has no direction to point a head
                    pen.line([tuple(tail), tuple(tip)], fill=255,
                             width=max(1, round(width * scale)))  # fmt: skip
                    pen.polygon(vee(tail, tip, head * scale), fill=255)
            for view in views:
                blend(view, mask, rgb, ARROW_ALPHA)


def vee(tail, tip, size: float) -> list[tuple[float, float]]:
    """Bokeh's VeeHead at ``tip``: wings ``size`` back and ``size``/2 to each side, notched
    halfway back."""
    (x0, y0), (x1, y1) = tail, tip
    length = math.hypot(x1 - x0, y1 - y0)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length  # along the arrow
    px, py = -uy, ux  # across it
    back = (x1 - size * ux, y1 - size * uy)
    notch = (x1 - 0.5 * size * ux, y1 - 0.5 * size * uy)
    half = size / 2
    return [
        (x1, y1),
        (back[0] + half * px, back[1] + half * py),
        notch,
        (back[0] - half * px, back[1] - half * py),
    ]


def shade_codes(log_density: np.ndarray, peak: float) -> np.ndarray:
    """Inferno indices of particles carrying log p (N,), on the heatmap's scale of a frame
    whose peak is ``peak``, as render.js and the page's colour mapper compute them."""
    with np.errstate(over="ignore", invalid="ignore"):
        code = np.exp(log_density.astype(np.float64)) * (255 / peak if peak > 0 else 0.0)
    code = np.nan_to_num(np.minimum(code, 255), nan=0.0)
    # Bokeh's LinearColorMapper over 0..255 with 256 colours: floor(v · 256/255), top clamped
    return np.minimum(np.floor(code * 256 / 255), 255).astype(np.intp)

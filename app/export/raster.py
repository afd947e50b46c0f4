"""Frames of the side-by-side animation as RGB arrays, drawn with numpy (no browser).

Layout of one frame, (S + C, 2S, 3) uint8: the particle view (left, S x S) and the density view
(right, S x S) over the same extent, and a caption strip of C rows beneath with t and the
settings. Numpy rather than matplotlib's Agg: measured about 2 ms against 7 ms a frame
at 512², and drawing squares, 1-pixel trails and a nearest-neighbour heatmap needs nothing more.

What is drawn follows the app (app/ui/views.py, app/ui/static/render.js): particles as squares
coloured by label with ``LABEL_PALETTE``, trails through the last K positions of the first
``TRAIL_CAP`` particles in two layers (newer half brighter), the heatmap scaled to each frame's
own peak through Inferno, and y increasing upwards. Contour lines, the field overlay's arrows
and particles coloured by their carried log-density are drawn as the page draws them
(``app/export/overlays.py``), when asked for.
"""

from __future__ import annotations

import math

import numpy as np
from bokeh.palettes import Inferno256

from app.export.caption import Caption
from app.export.overlays import SHADE_ALPHA, Arrows, Contours, shade_codes
from app.ui.frames import LABEL_PALETTE, quantize
from models.run.result import RunResult

# The same as app/ui/views.py (which imports Panel, too heavy for the command line);
# tests/test_export_raster.py checks they agree.
TRAIL_CAP = 500
TRAIL_ALPHA = (0.45, 0.18)  # newer, older half of a trail
DOT_ALPHA = 0.85
APP_FRAME = 400  # the app's view is 400 px: dots and lines scale from there
DOT_PX = 4
GRID_RGB = (235, 235, 235)


def hex_rgb(colors) -> np.ndarray:
    """'#rrggbb' strings → (K, 3) uint8."""
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colors], np.uint8)


PALETTE = hex_rgb(LABEL_PALETTE)  # (10, 3)
INFERNO = hex_rgb(Inferno256)  # (256, 3)


def density_frames(result: RunResult, source: str) -> np.ndarray:
    """The density stack the app shows for ``source``: (T+1, H, W)."""
    stacks = {
        "particles": result.density,
        "exact": result.exact_density,
        "pde": result.pde_density,
        "posterior": result.posterior_map,
    }
    if source not in stacks:
        raise ValueError(f"density source must be one of {tuple(stacks)}, got {source!r}")
    if stacks[source] is None:
        raise ValueError(f"this run has no {source} density")
    return stacks[source]


def to_pixels(points: np.ndarray, extent, size: int) -> np.ndarray:
    """Positions (..., 2) → float pixel coordinates (..., 2) as (column, row), row 0 at the top."""
    x0, x1, y0, y1 = extent
    col = (points[..., 0] - x0) * (size / (x1 - x0))
    row = (y1 - points[..., 1]) * (size / (y1 - y0))
    return np.stack([col, row], axis=-1).astype(np.float32)


class Rasterizer:
    """Draws frame i of a run; set up once per export (pixel positions, maps, background).

    ``contours``: contour lines of the exact density (none for a run without it);
    ``overlay``: the kind of ``arrows`` (``FlowState.arrows``) drawn, "none" or a kind they
    lack draws none; ``shade``: particles in the heatmap's colours by their carried
    log-density (a run without one keeps its label colours). The page does the same.
    """

    def __init__(self, result: RunResult, size: int = 512, trail: int = 8,
                 density_source: str = "particles", *, contours: bool = False,
                 arrows: dict | None = None, overlay: str = "none",
                 shade: bool = False):  # fmt: skip
        if not 16 <= size <= 4096:
            raise ValueError(f"size must be in 16..4096 px, got {size}")
        if not 0 <= trail <= 1000:
            raise ValueError(f"trail must be in 0..1000 frames, got {trail}")
        self.result, self.size, self.trail = result, size, trail
        self.density_source = density_source
        frames = density_frames(result, density_source)
        if density_source == "posterior":  # a probability on one scale, 255 = 1 (as the page)
            levels, self.peaks = np.rint(frames * 255).astype(np.uint8), np.ones(len(frames))
        else:
            levels, self.peaks = quantize(frames)
        self.levels = levels  # (T+1, H, W) uint8, each frame scaled to its own peak
        h, w = levels.shape[1:]
        # row r of the picture (top = 0) shows grid row h-1-⌊r·h/S⌋: the grid's y goes up
        self.rows = h - 1 - (np.arange(size) * h) // size
        self.cols = (np.arange(size) * w) // size
        self.pix = to_pixels(result.trajectories, result.extent, size)  # (T+1, N, 2)
        self.labels = (result.labels % len(PALETTE)).astype(np.intp)
        self.dot = d = max(2, round(DOT_PX * size / APP_FRAME))
        self._square = (np.arange(d)[:, None] * (size + 2 * d) + np.arange(d)[None]).ravel()
        self._dot_rgb = np.repeat(PALETTE[self.labels].astype(np.float32) * DOT_ALPHA, d * d, 0)
        self.contours = Contours(result, size) if contours else None
        shown = overlay != "none" and arrows is not None and overlay in arrows
        self.arrows = Arrows(arrows, overlay, result.extent, size) if shown else None
        self.shade = shade and result.log_density is not None
        self.caption = Caption(result, size, density_source)
        self.background = self._background()
        self._canvas = np.empty((size + 2 * d, size + 2 * d, 3), np.uint8)
        self._stamp = np.empty(self._canvas.shape[0] * self._canvas.shape[1], np.intp)

    @property
    def n_frames(self) -> int:
        return len(self.result.times)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, 3) of every frame."""
        return self.size + self.caption.height, 2 * self.size, 3

    def _background(self) -> np.ndarray:
        """White particle view with light grid lines at whole units (as the app's 0.25-alpha
        grid), black density view (the app's #000004), white caption strip."""
        img = np.full(self.shape, 255, np.uint8)
        s = self.size
        x0, x1, y0, y1 = self.result.extent
        for v in range(math.ceil(x0), math.floor(x1) + 1):
            c = int((v - x0) * s / (x1 - x0))
            img[:s, min(c, s - 1)] = GRID_RGB
        for v in range(math.ceil(y0), math.floor(y1) + 1):
            r = int((y1 - v) * s / (y1 - y0))
            img[min(r, s - 1), :s] = GRID_RGB
        img[:s, s:] = (0, 0, 4)
        self.caption.draw_fixed(img[s:])
        return img

    def frame(self, i: int) -> np.ndarray:
        """Frame i, (S + C, 2S, 3) uint8."""
        img = self.background.copy()
        s, d = self.size, self.dot
        canvas = self._canvas  # the particle view with a margin of d px (see _draw_dots)
        canvas[d : d + s, d : d + s] = img[:s, :s]
        self._draw_trails(canvas, i)
        self._draw_dots(canvas, i, self._dot_rgb, DOT_ALPHA)
        if self.shade:  # the page draws the shaded squares over the label-coloured ones
            rgb = INFERNO[shade_codes(self.result.log_density[i], float(self.peaks[i]))]
            self._draw_dots(canvas, i, np.repeat(rgb.astype(np.float32) * SHADE_ALPHA,
                                                 d * d, 0), SHADE_ALPHA)  # fmt: skip
        img[:s, :s] = canvas[d : d + s, d : d + s]
        # colour the small grid, then repeat rows and columns (6x faster than the other order)
        np.take(INFERNO[self.levels[i]][self.rows], self.cols, axis=1, out=img[:s, s:])
        if self.contours is not None:
            self.contours.draw(img[:s, s:], i)
        if self.arrows is not None:
            self.arrows.draw([img[:s, :s], img[:s, s:]], i)
        self.caption.draw(img[s:], i, float(self.peaks[i]))
        return img

    def _draw_dots(self, view: np.ndarray, i: int, rgb: np.ndarray, alpha: float) -> None:
        """Squares of side ``dot`` px centred on every particle, alpha-blended as in the app:
        ``rgb`` (N·dot², 3) float32 is each square's colour times ``alpha``.

        ``view`` is the particle view with a margin of ``dot`` px on every side, so that squares
        at the border need no clipping: each square is ``dot²`` flat indices from its corner.
        """
        d, width = self.dot, view.shape[1]
        corner = np.floor(self.pix[i] - d / 2).astype(np.intp) + d  # (N, 2) (col, row)
        np.clip(corner, 0, width - d, out=corner)  # far outside: parked in the margin
        idx = ((corner[:, 1] * width + corner[:, 0])[:, None] + self._square[None]).ravel()
        flat = view.reshape(-1, 3)
        flat[idx] = (flat[idx] * np.float32(1 - alpha) + rgb).astype(np.uint8)

    def _draw_trails(self, canvas: np.ndarray, i: int) -> None:
        """Two layers per the app's render.js: frames [i-half, i] at 0.45 over [i-len, i-half]
        at 0.18, len = min(trail, i), each layer blended once per pixel (one canvas stroke)."""
        length = min(self.trail, i)
        if length == 0:
            return
        half = math.ceil(length / 2)
        nt = min(len(self.labels), TRAIL_CAP)
        for (f0, f1), alpha in reversed(list(zip(((i - half, i), (i - length, i - half)),
                                                 TRAIL_ALPHA, strict=True))):  # fmt: skip
            if f1 > f0:
                self._draw_layer(canvas, self.pix[f0 : f1 + 1, :nt], alpha)

    def _draw_layer(self, canvas: np.ndarray, pts: np.ndarray, alpha: float) -> None:
        """Polylines through pts (K+1, n, 2), sampled densely enough to leave no gaps, blended
        into the view inside ``canvas`` (margin ``dot``) once per pixel, the last stroke's
        colour winning where strokes cross."""
        s, d, width = self.size, self.dot, canvas.shape[1]
        a, b = pts[:-1], pts[1:]  # (K, n, 2) segment ends
        longest = float(np.abs(b - a).max()) if a.size else 0.0
        steps = int(min(max(math.ceil(longest) + 1, 2), 2 * s))
        u = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
        p = np.floor(a[:, :, None] + (b - a)[:, :, None] * u)  # (K, n, steps, 2)
        c, r = p[..., 0], p[..., 1]
        inside = (c >= 0) & (c < s) & (r >= 0) & (r < s)
        lab = np.broadcast_to(self.labels[None, : pts.shape[1], None], inside.shape)[inside]
        idx = (r[inside].astype(np.intp) + d) * width + c[inside].astype(np.intp) + d
        order = np.arange(idx.size)
        self._stamp[idx] = order  # one survivor per pixel, without sorting
        last = self._stamp[idx] == order
        idx, lab = idx[last], lab[last]
        flat = canvas.reshape(-1, 3)
        flat[idx] = (flat[idx] * np.float32(1 - alpha) + PALETTE[lab] * np.float32(alpha)).astype(
            np.uint8
        )


def frames(raster: Rasterizer, progress=None):
    """Yield every frame in order; ``progress(done, total)`` after each (it may raise to stop)."""
    total = raster.n_frames
    for i in range(total):
        yield raster.frame(i)
        if progress is not None:
            progress(i + 1, total)

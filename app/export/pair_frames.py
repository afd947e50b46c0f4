"""Frames of a comparison (``models.compare.pair.RunPair``) as RGB arrays: run A and run B as
the single-run export draws each (``app/export/raster.py``), side by side, and a third panel,
density A − B, beneath all of which a caption strip names A, what B changes, the noise the two
share, and the step's t, twin distance and SW2.

Layout of one frame, (S + C + P, 5S, 3) uint8 (one more white column when 5S is odd: H.264's
yuv420p needs an even width):

    | A particles | A density | B particles | B density | A − B |   S rows
    | A's own caption strip   | B's own caption strip   | scale |   C rows
    | the comparison's strip: A, B's changes, the noise; t, twin distance, SW2 |  P rows

Step f of the timeline (``pair.frames``) shows A's frame ``frames.a[f]`` and B's frame
``frames.b[f]``. The difference panel is diverging (blue: B denser, white: equal, red: A
denser) on a symmetric scale, each step to its own largest |A − B|: a B equal to A draws it
all white.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.export.caption import INK, SOURCE, settings_text
from app.export.raster import Rasterizer, density_frames

NO_DIFFERENCE_RGB = (225, 225, 225)  # the panel where A and B have different density grids
BLUE, WHITE, RED = (33, 102, 172), (255, 255, 255), (178, 24, 43)
ZERO = 128  # the code of A − B = 0: white


def diverging_palette() -> np.ndarray:
    """(256, 3) uint8: blue at 0, white at exactly ``ZERO``, red at 255."""
    out = np.empty((256, 3), np.float64)
    low = np.linspace(0, 1, ZERO + 1)[:, None]  # 0..128: blue → white
    out[: ZERO + 1] = np.array(BLUE) * (1 - low) + np.array(WHITE) * low
    high = np.linspace(0, 1, 256 - ZERO)[:, None]  # 128..255: white → red
    out[ZERO:] = np.array(WHITE) * (1 - high) + np.array(RED) * high
    return np.rint(out).astype(np.uint8)


DIVERGING = diverging_palette()


def difference_codes(diff: np.ndarray) -> tuple[np.ndarray, float]:
    """One frame of A − B (H, W) → uint8 codes on a symmetric scale (0 → ``ZERO``, ±its largest
    |value| → 255 / 1), and that largest |value| (0 where A equals B: all ``ZERO``)."""
    top = float(np.abs(diff).max()) if diff.size else 0.0
    if not top > 0:
        return np.full(diff.shape, ZERO, np.uint8), 0.0
    codes = ZERO + np.rint(diff.astype(np.float64) * (127.0 / top))
    return np.clip(codes, 1, 255).astype(np.uint8), top


def change_text(changes, limit: int = 8) -> str:
    """B's changes as 'solver euler -> heun, steps 100 -> 10' (``solver_requested`` only where it
    says more than ``solver``)."""
    by_name = {name: (va, vb) for name, va, vb in changes}
    shown = [(name, va, vb) for name, va, vb in changes
             if not (name == "solver_requested" and by_name.get("solver") == (va, vb))]  # fmt: skip
    if not shown:
        return "B changes nothing (B = A)"

    def value(v) -> str:
        return f"{v:g}" if isinstance(v, float) else "none" if v is None else str(v)

    parts = [f"{name.replace('_', '-')} {value(va)} -> {value(vb)}" for name, va, vb in shown]
    more = f", and {len(parts) - limit} more" if len(parts) > limit else ""
    return "B changes " + ", ".join(parts[:limit]) + more


def step_text(pair, f: int) -> str:
    """Step f's readout: t, the step, each run's frame, twin distance and SW2."""
    frames = pair.frames
    last = len(frames.times) - 1
    twin = pair.twin_distance
    twin_text = f"{twin[f]:.4g}" if twin is not None else "none (N differs)"
    return (f"t = {frames.times[f]:.3f}   step {f}/{last}   A frame {frames.a[f]}, "
            f"B frame {frames.b[f]}   twin distance {twin_text}   "
            f"SW2(A, B) {pair.sw2[f]:.4g}")  # fmt: skip


class Text:
    """Lines of text in a font scaled to the view size (as ``app.export.caption.Caption``).
    Pillow's default font lacks '−' and '→': the text drawn here keeps to '-' and '->'."""

    def __init__(self, size: int, lines: int):
        px = max(10, round(size / 32))
        self.font = ImageFont.load_default(size=px)
        self.line = px + px // 3
        self.margin = max(3, px // 3)
        self.height = lines * self.line + 2 * self.margin
        self.height += self.height % 2  # the frame's height stays even (H.264)

    def write(self, band: np.ndarray, lines, fill=INK, background=None) -> None:
        """Write ``lines`` into ``band`` (rows, W, 3) in place, from its top-left margin."""
        image = Image.fromarray(band)
        draw = ImageDraw.Draw(image)
        for k, text in enumerate(lines):
            xy = (self.margin, self.margin + k * self.line)
            if background is not None:
                draw.rectangle(draw.textbbox(xy, text, font=self.font), fill=background)
            draw.text(xy, text, fill=fill, font=self.font)
        band[...] = np.asarray(image)


def pair_shape(pair, size: int, density_source: str) -> tuple[int, int, int]:
    """(height, width, 3) of a comparison's frames at ``size`` px a view, without drawing."""
    from app.export.caption import Caption

    height = size + Caption(pair.a, size, density_source).height + Text(size, 3).height
    return height, 5 * size + (5 * size) % 2, 3


class PairRasterizer:
    """Draws step f of a comparison's timeline; set up once per export. The settings are the
    single-run export's (``Rasterizer``), the same for both runs; ``arrows`` is (A's, B's)
    overlay fields, either None."""

    def __init__(self, pair, size: int = 512, trail: int = 8, density_source: str = "particles",
                 *, contours: bool = False, arrows=(None, None), overlay: str = "none",
                 shade: bool = False):  # fmt: skip
        self.pair, self.size = pair, size
        self.runs = [Rasterizer(run, size, trail, density_source, contours=contours,
                                arrows=field, overlay=overlay, shade=shade)
                     for run, field in zip((pair.a, pair.b), arrows or (None, None),
                                           strict=True)]  # fmt: skip
        self.source = density_source
        self.stacks = self._stacks(density_source)
        h, w = density_frames(pair.a, density_source).shape[1:]
        self.rows = h - 1 - (np.arange(size) * h) // size  # as Rasterizer: y goes up
        self.cols = (np.arange(size) * w) // size
        self.view_height = self.runs[0].shape[0]  # S + C, the same for both (same size)
        self.text = Text(size, 3)
        self.tag = Text(size, 1)
        self.key = Text(size, 2)
        self.background = self._background()

    def _stacks(self, source: str):
        """(A's, B's) density stacks of ``source``, or None where the grids differ."""
        a, b = density_frames(self.pair.a, source), density_frames(self.pair.b, source)
        if a.shape[1:] != b.shape[1:] or tuple(self.pair.a.extent) != tuple(self.pair.b.extent):
            return None
        return a, b

    @property
    def n_frames(self) -> int:
        return len(self.pair.frames.times)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, 3) of every frame: both even."""
        return pair_shape(self.pair, self.size, self.source)

    def _background(self) -> np.ndarray:
        """White, the fixed text written: the comparison's first two lines (and, where the
        grids differ, the difference panel grey, saying why)."""
        img = np.full(self.shape, 255, np.uint8)
        s, pair = self.size, self.pair
        settings_a = settings_text(pair.a).replace("η", "eta ")  # not in Pillow's font
        fixed = [f"A: {settings_a}",
                 f"{change_text(pair.changes)}   ·   noise shared: {pair.shared}"]  # fmt: skip
        self.text.write(img[self.view_height :], fixed)
        if self.stacks is None:
            img[:s, 4 * s : 5 * s] = NO_DIFFERENCE_RGB
            self.key.write(img[s : self.view_height, 4 * s : 5 * s],
                           ["A - B: none", "(different density grids)"])  # fmt: skip
        return img

    def difference(self, f: int) -> tuple[np.ndarray, float] | None:
        """Density A − B at step f as codes (H, W) uint8 and its largest |value|; None where
        the grids differ. ``models.compare.pair.density_difference``, one step at a time."""
        if self.stacks is None:
            return None
        a, b = self.stacks
        frames = self.pair.frames
        return difference_codes(a[frames.a[f]] - b[frames.b[f]])

    def frame(self, f: int) -> np.ndarray:
        """Step f of the timeline, ``shape`` uint8."""
        img = self.background.copy()
        s, v = self.size, self.view_height
        frames = self.pair.frames
        img[:v, : 2 * s] = self.runs[0].frame(int(frames.a[f]))
        img[:v, 2 * s : 4 * s] = self.runs[1].frame(int(frames.b[f]))
        made = self.difference(f)
        if made is not None:
            codes, top = made
            np.take(DIVERGING[codes][self.rows], self.cols, axis=1, out=img[:s, 4 * s : 5 * s])
            self.key.write(img[s:v, 4 * s : 5 * s],
                           [f"A - B density {SOURCE.get(self.source, self.source)}, ±{top:.3g}",
                            "red: A denser · blue: B denser"])  # fmt: skip
        for x0, text in ((0, "A"), (2 * s, "B")):
            self.tag.write(img[: self.tag.height, x0 : x0 + s], [text], background=WHITE)
        bottom = img[v + 2 * self.text.line : v + 3 * self.text.line + self.text.margin]
        self.text.write(bottom, [step_text(self.pair, f)])
        return img

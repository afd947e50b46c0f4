"""Packing a comparison for the browser: its timeline, the difference of the two densities in
diverging colours, and the readouts of every step (sent once per pair)."""

from __future__ import annotations

import numpy as np

from app.export.pair_frames import ZERO, diverging_palette
from models.compare.pair import RunPair, density_difference

# the export's palette and codes (app/export/pair_frames.py): the page and the files agree
CENTRE = ZERO  # the code of a zero difference: white
DIVERGING = tuple("#{:02x}{:02x}{:02x}".format(*rgb) for rgb in diverging_palette())


def diverging_codes(diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, H, W) signed differences → uint8 codes, each frame on its own symmetric scale
    s = max |difference| (``difference_codes``: 0 → 128, ±s → 255 / 1; a frame of zeros all
    128), and s (F,)."""
    scale = np.abs(diff).reshape(len(diff), -1).max(1).astype(np.float64) if diff.size \
        else np.zeros(len(diff))  # fmt: skip
    unit = 127.0 / np.where(scale > 0, scale, np.inf)[:, None, None]
    codes = np.clip(CENTRE + np.rint(diff.astype(np.float64) * unit), 1, 255)
    return codes.astype(np.uint8), scale


def pack_pair(pair: RunPair, source: str, difference: bool = True) -> tuple[dict, dict, dict, str]:
    """(timeline {a, b, at}, difference {diff: [uint8 (F, H, W)]}, rows, note): the difference
    of the density ``source`` shows (particles, exact or PDE), made only where it is shown
    (``difference``; it costs the server both runs' histograms and the page ~1 MB), with the
    readouts of every step (:func:`pack_rows`, its ``scale`` column the difference's, NaN
    when none is made). The note says why no difference is drawn ("" when one is)."""
    frames = pair.frames
    timeline = {"a": [frames.a.astype(np.int32)], "b": [frames.b.astype(np.int32)], "at": [0]}
    scale = np.full(len(frames.times), np.nan)
    codes, note = np.zeros((0, 1, 1), np.uint8), ""
    if difference:
        try:
            codes, scale = diverging_codes(density_difference(pair, source))
        except ValueError as exc:
            note = f"No difference drawn: {exc}."
    return timeline, {"diff": [codes]}, pack_rows(pair, scale), note


def pack_rows(pair: RunPair, scale: np.ndarray) -> dict:
    """One-row columns t, twin, sw2, scale (F,) of every step of the timeline: NaN where not
    known (no twins; SW2 between A and B before it is computed, after the paint)."""
    n = len(pair.frames.times)
    nan = np.full(n, np.nan)
    twin = pair.twin_distance if pair.twin_distance is not None else nan
    sw2 = pair.sw2 if pair.sw2_known else nan
    rows = {"t": pair.frames.times, "twin": twin, "sw2": sw2, "scale": scale}
    return {k: [np.asarray(v, np.float64)] for k, v in rows.items()}

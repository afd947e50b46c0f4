"""Packing a comparison for the browser: its timeline, the difference of the two densities in
diverging colours, and the readouts of every step (sent once per pair)."""

from __future__ import annotations

import numpy as np

from models.compare.pair import RunPair, density_difference

CENTRE = 128  # the code of a zero difference: white in DIVERGING


def _diverging() -> tuple[str, ...]:
    """256 colours: blue (B has more) → white at code 128 → red (A has more)."""
    out = []
    for code in range(256):
        v = (code - CENTRE) / (127 if code >= CENTRE else 128)  # −1 … 1
        blue, red = np.array([33, 102, 172]), np.array([178, 24, 43])
        end = red if v > 0 else blue
        rgb = np.rint(255 + abs(v) * (end - 255)).astype(int)
        out.append("#{:02x}{:02x}{:02x}".format(*rgb))
    return tuple(out)


DIVERGING = _diverging()


def diverging_codes(diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, H, W) signed differences → uint8 codes (128 = 0; 255 = +s, 0 = −s), each frame on
    its own symmetric scale s = max |difference| (0 for a frame of zeros), and s (F,)."""
    scale = np.abs(diff).reshape(len(diff), -1).max(1).astype(np.float64)
    safe = np.where(scale > 0, scale, 1.0)[:, None, None]
    unit = diff / safe
    codes = np.where(unit >= 0, CENTRE + np.rint(127 * unit), CENTRE + np.rint(128 * unit))
    return np.clip(codes, 0, 255).astype(np.uint8), scale


def pack_pair(pair: RunPair, source: str) -> tuple[dict, dict, dict, str]:
    """(timeline {a, b, at}, difference {diff: [uint8 (F, H, W)]}, rows, note): the difference
    of the density ``source`` shows (particles, exact or PDE), with the readouts of every step
    (:func:`pack_rows`, its ``scale`` column the difference's). The note says why no
    difference is drawn ("" when one is)."""
    frames = pair.frames
    timeline = {"a": [frames.a.astype(np.int32)], "b": [frames.b.astype(np.int32)], "at": [0]}
    scale = np.zeros(len(frames.times))
    try:
        codes, scale = diverging_codes(density_difference(pair, source))
        note = ""
    except ValueError as exc:
        codes, note = np.zeros((0, 1, 1), np.uint8), f"No difference drawn: {exc}."
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

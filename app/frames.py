"""Packing a run into the columns the browser animates from (sent once per recompute).

Particles travel as float32 columns ``x{i}``, ``y{i}`` (one per frame, N long); density frames
as uint8 images scaled to their own peak (with the peak kept, so nothing is lost for the colour
bar); overlay arrows pre-scaled for display; contours as ragged line lists. All are numpy arrays,
which Bokeh sends as binary buffers.
"""

from __future__ import annotations

import contourpy
import numpy as np
from bokeh.palettes import Category10_10

from models.simulate import RunResult

CONTOUR_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)  # fractions of each frame's peak density
ARROW_CELLS = 0.9  # the longest (90th percentile) arrow spans this many grid cells


LABEL_PALETTE = tuple(Category10_10)  # label k is drawn in LABEL_PALETTE[k % 10]


def pack_particles(result: RunResult) -> dict[str, np.ndarray]:
    """{'x0', 'y0', …, 'x{T}', 'y{T}': (N,) float32, 'label': (N,) float32 colour index}."""
    traj = np.ascontiguousarray(result.trajectories, dtype=np.float32)
    data = {"label": (result.labels % len(LABEL_PALETTE)).astype(np.float32)}
    for i, frame in enumerate(traj):
        data[f"x{i}"] = np.ascontiguousarray(frame[:, 0])
        data[f"y{i}"] = np.ascontiguousarray(frame[:, 1])
    return data


def quantize(frames: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """(F, H, W) densities → F uint8 images scaled to each frame's peak, and the peaks (F,)."""
    peaks = frames.reshape(len(frames), -1).max(1).astype(np.float32)
    scale = np.where(peaks > 0, 255.0 / np.maximum(peaks, 1e-30), 0.0)[:, None, None]
    images = np.rint(frames * scale).astype(np.uint8)
    return list(images), peaks


def pack_grid(result: RunResult) -> dict[str, object]:
    """One row per frame: 't', 'density', 'peak', 'exact', 'exact_peak'."""
    density, peak = quantize(result.density)
    exact_frames = result.exact_density if result.exact_density is not None else result.density
    exact, exact_peak = quantize(exact_frames)
    return {"t": result.times.astype(np.float64), "density": density, "peak": peak,
            "exact": exact, "exact_peak": exact_peak}  # fmt: skip


def pack_arrows(arrows: dict, extent, n: int) -> dict[str, np.ndarray]:
    """Arrow tails 'x', 'y' (P,) and, per kind and frame, display vectors '{kind}_u{i}', '_v{i}'.

    Each frame is scaled on its own so that its 90th-percentile arrow spans ``ARROW_CELLS``
    cells, longer ones clipped to twice that: the overlay shows direction and relative size at
    every t, although score magnitudes range over orders of magnitude (1/c²).
    """
    cell = (extent[1] - extent[0]) / n
    pts = arrows["points"]
    data = {"x": pts[:, 0].astype(np.float32), "y": pts[:, 1].astype(np.float32)}
    for kind, frames in arrows.items():
        if kind == "points":
            continue
        norms = np.linalg.norm(frames, axis=-1)  # (F, P)
        ref = np.percentile(norms, 90, axis=1)[:, None]
        scale = np.where(ref > 0, ARROW_CELLS * cell / np.maximum(ref, 1e-30), 0.0)
        length = np.minimum(norms * scale, 2 * ARROW_CELLS * cell)
        unit = frames / np.maximum(norms, 1e-30)[..., None]
        disp = (unit * length[..., None]).astype(np.float32)
        for i, frame in enumerate(disp):
            data[f"{kind}_u{i}"] = np.ascontiguousarray(frame[:, 0])
            data[f"{kind}_v{i}"] = np.ascontiguousarray(frame[:, 1])
    return data


def pack_contours(result: RunResult) -> dict[str, list]:
    """Contour lines of the exact density per frame: 'xs', 'ys', each F lists of arrays."""
    frames = result.exact_density if result.exact_density is not None else result.density
    h, w = frames.shape[1:]
    x0, x1, y0, y1 = result.extent
    xs = x0 + (x1 - x0) * (np.arange(w) + 0.5) / w
    ys = y0 + (y1 - y0) * (np.arange(h) + 0.5) / h
    all_xs, all_ys = [], []
    for frame in frames:
        gen = contourpy.contour_generator(xs, ys, frame, line_type="Separate")
        peak = float(frame.max())
        lines = (
            [ln for level in CONTOUR_LEVELS for ln in gen.lines(level * peak)] if peak > 0 else []
        )
        all_xs.append([ln[:, 0].astype(np.float32) for ln in lines])
        all_ys.append([ln[:, 1].astype(np.float32) for ln in lines])
    return {"xs": all_xs, "ys": all_ys}


def nbytes(data: dict) -> int:
    """Bytes of the array payload of a packed dict (lists of arrays counted element-wise)."""
    total = 0
    for value in data.values():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, list):
                total += sum(np.asarray(v).nbytes for v in item)
            else:
                total += np.asarray(item).nbytes
    return total

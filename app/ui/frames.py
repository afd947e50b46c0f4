"""Packing a run into the arrays the browser animates from (sent once per recompute).

Few, large arrays: Bokeh sends each array as its own binary websocket buffer, and a thousand
small ones (a column per frame) measured 1.3 s slower than a handful of big ones. So particles
travel as one int16 array laid out (T+1, 2, N) with one scale, frame i's x and y being contiguous
slices that the browser decodes; overlay arrows as one (T+1, 2, P) array per kind; density
stacks as one uint8 (F, H, W) array each, every frame scaled to its own peak (peaks kept for the
colour bar); contours as
ragged line lists (only when shown).
"""

from __future__ import annotations

import contourpy
import numpy as np
from bokeh.palettes import Category10_10

from models.current import CURRENT_KINDS
from models.run.result import RunResult

CONTOUR_LEVELS = (0.1, 0.3, 0.5, 0.7, 0.9)  # fractions of each frame's peak density
ARROW_CELLS = 0.9  # the longest (90th percentile) arrow spans this many grid cells


LABEL_PALETTE = tuple(Category10_10)  # label k is drawn in LABEL_PALETTE[k % 10]


def quantize_positions(positions: np.ndarray) -> tuple[np.ndarray, float]:
    """float positions → (int16 codes, scale), position = code · scale, error ≤ scale / 2.

    One scale for the whole run (the largest |coordinate| maps to 32767): at the app's 8 data
    units per 400 px the error is under 0.01 px, and the payload halves against float32.
    """
    scale = position_step(positions) or 1.0
    # divided in float64 straight from the (often transposed) float32 view: a float64 copy
    # first took 3 ms of the session thread per run (N = 2000, T = 100), this 0.5 ms
    codes = np.divide(positions, scale, dtype=np.float64)
    return np.rint(codes, out=codes).astype(np.int16), scale


def position_step(positions: np.ndarray) -> float:
    """The int16 codes' step for these positions: the largest |coordinate| / 32767 (0 if none)."""
    return float(np.abs(positions).max()) / 32767 if positions.size else 0.0


def positions_fine_enough(result: RunResult, share: float = 0.01) -> bool:
    """Whether the page's histogram of the int16 positions is the server's density: their
    rounding step (largest |coordinate| / 32767) is under ``share`` of a density cell, so that
    hardly a particle changes cell. False for runs that flew far out of the view (a step or
    two at a large β_max: |x| ~ 80 makes the step 3% of a cell), whose stack is then sent."""
    x0, x1, y0, y1 = result.extent
    h, w = result.config.grid.shape
    return position_step(result.trajectories) < share * min((x1 - x0) / w, (y1 - y0) / h)


def pack_particles(result: RunResult) -> dict[str, list]:
    """One-row columns: 'xy' [(T+1)·2·N int16, laid out (T+1, 2, N)] and its 'scale' (position =
    code · scale), 'label' [(N,) float32], 'n' [N], 'logp' [(T+1)·N float32, the carried
    log-density, empty when the run has none], and 'grid' [(x0, x1, y0, y1, bandwidth)
    float64]: with the density frames' (H, W), what the browser needs to histogram the
    particles as ``models.density.histogram_density`` does (render.js)."""
    xy, scale = quantize_positions(result.trajectories.transpose(0, 2, 1))
    labels = (result.labels % len(LABEL_PALETTE)).astype(np.float32)
    logp = np.zeros(0, np.float32)
    if result.log_density is not None:
        logp = np.ascontiguousarray(result.log_density, dtype=np.float32).reshape(-1)
    bandwidth = result.config.bandwidth
    grid = np.array([*result.extent, bandwidth], np.float64)
    return {"xy": [np.ascontiguousarray(xy).reshape(-1)], "scale": [scale], "label": [labels],
            "n": [len(labels)], "logp": [logp], "grid": [grid]}  # fmt: skip


def pack_reference(result: RunResult) -> dict[str, list]:
    """The run's reference trajectories as one-row columns 'xy' [(T+1)·2·N int16, laid out
    (T+1, 2, N) like ``pack_particles``] and 'scale'; empty columns for a run without one."""
    if result.reference is None:
        return {"xy": [], "scale": []}
    xy, scale = quantize_positions(result.reference.transpose(0, 2, 1))
    return {"xy": [np.ascontiguousarray(xy).reshape(-1)], "scale": [scale]}


def quantize(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(F, H, W) densities → uint8 (F, H, W), each frame scaled to its own peak, and peaks (F,)."""
    peaks = frames.reshape(len(frames), -1).max(1).astype(np.float32)
    scale = np.where(peaks > 0, 255.0 / np.maximum(peaks, 1e-30), 0.0)[:, None, None]
    return np.rint(frames * scale).astype(np.uint8), peaks


def total_variation(p: np.ndarray, q: np.ndarray, cell_area: float) -> np.ndarray:
    """½ Σ |p − q| dA per frame of two (F, H, W) densities, (F,)."""
    return 0.5 * np.abs(p.astype(np.float64) - q).sum((1, 2)) * cell_area


def pack_grid(
    result: RunResult, stacks=("density", "exact")
) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """Per-frame rows {'t', 'peak', 'exact_peak', 'pde_peak', 'pde_mass', 'pde_tv'} (F,), and
    one-row image stacks {'density', 'exact', 'pde'}: [uint8 (F, H, W)], only those named in
    ``stacks`` ((0, H, W) else). ``pde_tv`` is the total variation between the particles'
    density and the PDE's, ``pde_mass`` the PDE's mass inside the box (NaN without a PDE).
    'peak', that of the particles' density, is NaN where the page makes this density itself
    (``positions_fine_enough``), unless its stack is asked for or a PDE is compared with it:
    the server then never histograms the particles (~10-20 ms a run)."""
    nan = np.full(len(result.times), np.nan)
    # keeps every column one row long
    empty = np.zeros((0, *result.config.grid.shape), np.uint8)
    density, peak = empty, nan
    if "density" in stacks or result.pde_density is not None or \
            not positions_fine_enough(result):  # fmt: skip
        density, peak = quantize(result.density)
    # a run computed while the exact density was not shown has none: nothing is drawn for it
    # until the rerun that computes it lands (never the particles' density in its place)
    exact, exact_peak = (empty, nan) if result.exact_density is None else \
        quantize(result.exact_density)  # fmt: skip
    rows = {"t": result.times.astype(np.float64), "peak": peak, "exact_peak": exact_peak,
            "pde_peak": nan, "pde_mass": nan, "pde_tv": nan}  # fmt: skip
    images = {"density": [density if "density" in stacks else empty],
              "exact": [exact if "exact" in stacks else empty], "pde": [empty],
              "posterior": [empty]}  # fmt: skip
    if "posterior" in stacks and result.posterior_map is not None:
        # on one scale for every frame, 255 = 1: a probability, not a density
        images["posterior"] = [np.rint(result.posterior_map * 255).astype(np.uint8)]
    if result.pde_density is not None:
        x0, x1, y0, y1 = result.extent
        h, w = result.pde_density.shape[1:]
        cell = (x1 - x0) * (y1 - y0) / (h * w)
        pde, rows["pde_peak"] = quantize(result.pde_density)
        rows["pde_mass"] = np.asarray(result.pde_mass, np.float64)
        rows["pde_tv"] = total_variation(result.density, result.pde_density, cell)
        if "pde" in stacks:
            images["pde"] = [pde]
    return rows, images


def pack_arrows(arrows: dict, extent, n: int, kinds=None) -> dict[str, list[np.ndarray]]:
    """One-row columns: tails 'x', 'y' [(P,)] and, per kind, display vectors [(T+1)·2·P float32]
    laid out (T+1, 2, P).

    Each frame is scaled on its own so that its 90th-percentile arrow spans ``ARROW_CELLS``
    cells, longer ones clipped to twice that: the overlay shows direction and relative size at
    every t, although score magnitudes range over orders of magnitude (1/c²). The difference
    (learned − exact velocity) takes the velocity's scale of its frame, so that an arrow is
    as long as that velocity error would be in the velocity overlay: scaled on its own, a
    near-perfect network's errors of 1e-3 drew as long as the velocity itself.

    The drift and diffusion parts of the probability current (docs/MATH.md §6.1) share one scale
    per frame, whichever is shown, so the two can be compared by switching: the longest arrow
    of either spans twice ``ARROW_CELLS`` cells, and none is clipped. The current J itself is
    scaled alike but on its own: it is the small difference of two large, opposing parts (under
    1 % of them late in a VP run), and on their scale its arrows vanished, with them what the
    picture is for, the direction mass flows. (A percentile would not do: the currents vanish
    wherever the density does, on most of the grid near the data end.)
    """
    cell = (extent[1] - extent[0]) / n
    pts = arrows["points"]
    data = {"x": [pts[:, 0].astype(np.float32)], "y": [pts[:, 1].astype(np.float32)]}
    parts = [arrows[k] for k in CURRENT_KINDS if k in arrows and k != "current"]
    for kind, frames in arrows.items():
        if kind == "points" or (kinds is not None and kind not in kinds):
            continue
        norms = np.linalg.norm(frames, axis=-1)  # (F, P)
        if kind in CURRENT_KINDS:
            scale = _shared_scale([frames] if kind == "current" else parts, 2 * ARROW_CELLS * cell)
        else:
            scale = _frame_scale(arrows["velocity"] if kind == "difference" else frames, cell)
        length = np.minimum(norms * scale, 2 * ARROW_CELLS * cell)
        unit = frames / np.maximum(norms, 1e-30)[..., None]
        disp = (unit * length[..., None]).astype(np.float32)  # (F, P, 2)
        data[kind] = [np.ascontiguousarray(disp.transpose(0, 2, 1)).reshape(-1)]
    return data


def _frame_scale(frames: np.ndarray, cell: float) -> np.ndarray:
    """(F, 1) display scale per frame of (F, P, 2) vectors: the 90th-percentile length →
    ``ARROW_CELLS`` cells (0 for a frame of zero vectors)."""
    ref = np.percentile(np.linalg.norm(frames, axis=-1), 90, axis=1)[:, None]
    return np.where(ref > 0, ARROW_CELLS * cell / np.maximum(ref, 1e-30), 0.0)


def _shared_scale(kinds: list[np.ndarray], longest: float) -> np.ndarray:
    """(F, 1) display scale per frame shared by several (F, P, 2) vector fields: the longest
    vector of any of them → ``longest`` (0 for a frame where all are zero)."""
    ref = np.max([np.linalg.norm(k, axis=-1).max(1) for k in kinds], axis=0)[:, None]
    return np.where(ref > 0, longest / np.maximum(ref, 1e-30), 0.0)


def pack_contours(result: RunResult) -> dict[str, list]:
    """Contour lines of the exact density per frame: 'xs', 'ys', each F lists of arrays
    (empty lists for a run without the exact density)."""
    frames = result.exact_density
    if frames is None:
        return {"xs": [], "ys": []}
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

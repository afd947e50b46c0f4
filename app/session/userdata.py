"""A user's own data set: brush strokes to points, checks, fitting into the view, and the
compact text that carries it in a link. Pure numpy, no Panel: tested without a browser.

Why a link and not a short code kept on the server: a link needs no server-side store, so it
survives a server restart, works unchanged behind several server processes (no store to share
between them), keeps one class member's data out of every other session, and *is* the data a
teacher hands out. Its cost is length: positions travel as int16 with one scale (error below
1e-4 of the data's extent, far under the kernel width σ_d), deflated and base64url-encoded,
about 5 characters a point, so links carry at most ``LINK_MAX_POINTS``. Points with classes
(drawn with a brush class, or uploaded with a label column) add one byte a point.
"""

from __future__ import annotations

import base64
import io
import zlib

import numpy as np

from models.datasets import MAX_COORD
from models.pointfiles import MAX_LABEL, MAX_POINTS

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # 5 MB: ~200,000 CSV rows, more than any toy data set
MIN_POINTS = 2
LINK_MAX_POINTS = 3000  # ~15 KB of link: well inside every browser's and Tornado's limits
VIEW_MARGIN = 0.75  # fitting leaves this much of the view box free on each side
SQUEEZED = 0.01  # fitting refuses when the middle half of the points spans less of the box
_LINK_VERSION, _LABELLED_VERSION = b"\x01", b"\x02"  # positions; positions and labels


def stroke_points(xs, ys, width: float, density: float, seed: int = 0) -> np.ndarray:
    """Points laid down by one brush stroke, shape (n, 2).

    Args:
        xs, ys: the stroke's polyline (as a freehand tool records it), any length ≥ 1.
        width: brush diameter in data units; points fall uniformly in a disc of this width
            around the stroke.
        density: points per unit length of stroke (a click lays down density x width points).
        seed: for reproducible offsets.
    """
    line = np.column_stack([np.asarray(xs, float), np.asarray(ys, float)])
    line = line[np.isfinite(line).all(1)]
    if len(line) == 0:
        return np.zeros((0, 2))
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    length = float(arc[-1])
    rng = np.random.default_rng(seed)
    n = max(1, round(density * max(length, width)))
    at = rng.uniform(0.0, length, n) if length > 0 else np.zeros(n)
    centre = np.column_stack([np.interp(at, arc, line[:, 0]), np.interp(at, arc, line[:, 1])])
    radius = 0.5 * width * np.sqrt(rng.uniform(0.0, 1.0, n))  # uniform in the disc
    angle = rng.uniform(0.0, 2 * np.pi, n)
    return centre + radius[:, None] * np.column_stack([np.cos(angle), np.sin(angle)])


def check_points(
    points: np.ndarray, what: str = "the data set", bounded: bool = True
) -> np.ndarray:
    """``points`` as float64 (M, 2) if usable as a data set; ValueError (one line) if not.

    ``bounded``: coordinates must lie within ±``MAX_COORD`` (False for points about to be
    fitted into the view, which may come in any units)."""
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{what}: expected points of shape (M, 2), got {arr.shape}")
    if len(arr) < MIN_POINTS:
        raise ValueError(f"{what}: {len(arr)} point(s); a data set needs at least {MIN_POINTS}")
    if len(arr) > MAX_POINTS:
        raise ValueError(f"{what}: {len(arr):,} points; at most {MAX_POINTS:,} are accepted")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: some points are NaN or infinite")
    largest = float(np.abs(arr).max())
    if bounded and largest > MAX_COORD:
        raise ValueError(f"{what}: a coordinate of {largest:.3g}; points must lie within "
                         f"±{MAX_COORD:g} (the view is ±4; tick 'fit into the view' for "
                         "other units)")  # fmt: skip
    return arr


def outside_share(points: np.ndarray, extent) -> float:
    """Share of the points outside the view box ``extent`` = (xmin, xmax, ymin, ymax)."""
    x0, x1, y0, y1 = extent
    inside = (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & \
        (points[:, 1] <= y1)  # fmt: skip
    return float(1.0 - inside.mean())


def fit_into_view(points: np.ndarray, extent) -> np.ndarray:
    """Points moved and scaled uniformly (aspect kept) so they fill the view box less a margin.

    ValueError (one line) where that would squeeze the points onto one spot: a few points far
    from the rest (a stray 1e308 among pixel coordinates) set the scale, and the others would
    all land within ``SQUEEZED`` of the box's size of each other, closer than the kernel width.
    """
    x0, x1, y0, y1 = extent
    pts = np.asarray(points, dtype=np.float64)
    lo, hi = pts.min(0), pts.max(0)
    target = min(x1 - x0, y1 - y0) - 2 * VIEW_MARGIN
    with np.errstate(all="ignore"):  # a squeeze underflows; it is refused below
        # halves first: hi - lo and lo + hi overflow for coordinates near ±1.8e308
        half_span = float((0.5 * hi - 0.5 * lo).max())
        scale = 0.5 * target / half_span if half_span > 0 else 1.0
        centre_from = 0.5 * lo + 0.5 * hi
        centre_to = np.array([0.5 * (x0 + x1), 0.5 * (y0 + y1)])
        fitted = (pts - centre_from) * scale + centre_to
        finite = np.isfinite(fitted).all()
        quartiles = np.percentile(fitted, [25, 75], axis=0) if finite else None
    bulk = float((quartiles[1] - quartiles[0]).max()) if quartiles is not None else 0.0
    if half_span > 0 and bulk < SQUEEZED * target:
        raise ValueError(
            f"fitting into the view would squeeze most points onto one spot: a few lie far from "
            f"the rest (a coordinate of {float(np.abs(pts).max()):.3g}); remove them and upload "
            "again")  # fmt: skip
    return fitted


def check_labels(labels, n: int, what: str = "the data set") -> np.ndarray | None:
    """Class labels (n,) int64 of n points, or None where there are none or all are 0 (one
    class); ValueError (one line) unless one whole number 0..63 per point."""
    if labels is None:
        return None
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise ValueError(f"{what}: {arr.shape} labels for {n} points; give one per point")
    if arr.dtype.kind not in "iu" or (n and not (0 <= arr.min() and arr.max() <= MAX_LABEL)):
        raise ValueError(f"{what}: labels must be whole numbers 0..{MAX_LABEL}")
    return arr.astype(np.int64) if arr.any() else None


def encode_points(points: np.ndarray, labels: np.ndarray | None = None) -> str:
    """Compact, URL-safe text for (M, 2) points and their labels (M,) if any (see the module
    docstring); ValueError if too many for a link."""
    if len(points) > LINK_MAX_POINTS:
        raise ValueError(f"{len(points):,} points are too many for a link (at most "
                         f"{LINK_MAX_POINTS:,}); download them as CSV to keep them")  # fmt: skip
    labels = check_labels(labels, len(points), "the points for a link")
    largest = float(np.abs(points).max()) if len(points) else 0.0
    scale = largest / 32767 if largest > 0 else 1.0
    codes = np.rint(points / scale).astype("<i2")
    version = _LINK_VERSION if labels is None else _LABELLED_VERSION
    raw = version + np.float64(scale).astype("<f8").tobytes() + codes.tobytes()
    if version == _LABELLED_VERSION:
        raw += np.asarray(labels, np.uint8).tobytes()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii").rstrip("=")


def decode_points(text: str) -> np.ndarray:
    """The points of :func:`decode_labelled_points`, (M, 2)."""
    return decode_labelled_points(text)[0]


def decode_labelled_points(text: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverse of :func:`encode_points`: (points (M, 2), labels (M,) or None); ValueError (one
    line) for anything malformed."""
    try:
        padded = text + "=" * (-len(text) % 4)
        blob = base64.urlsafe_b64decode(padded.encode("ascii"))
        # the output bound stops a small "zip bomb" link from taking the server's memory
        inflater = zlib.decompressobj()
        raw = inflater.decompress(blob, 9 + 5 * LINK_MAX_POINTS + 1)
        if inflater.unconsumed_tail or len(raw) > 9 + 5 * LINK_MAX_POINTS:
            raise ValueError("too long")
    except Exception:
        raise ValueError("the points in this link are damaged") from None
    per_point = {_LINK_VERSION: 4, _LABELLED_VERSION: 5}.get(raw[:1])
    if per_point is None or (len(raw) - 9) % per_point or len(raw) < 9:
        raise ValueError("the points in this link are damaged")
    scale = float(np.frombuffer(raw[1:9], "<f8")[0])
    if not (np.isfinite(scale) and 0 < scale < 1e6):
        raise ValueError("the points in this link are damaged")
    m = (len(raw) - 9) // per_point
    codes = np.frombuffer(raw[9 : 9 + 4 * m], "<i2").reshape(-1, 2)
    points = check_points(codes.astype(np.float64) * scale, "the points in this link")
    if per_point == 4:
        return points, None
    labels = np.frombuffer(raw[9 + 4 * m :], np.uint8)
    return points, check_labels(labels, m, "the points in this link")


def points_csv(points: np.ndarray, labels: np.ndarray | None = None) -> str:
    """CSV text "x,y" (or "x,y,label") with a header row, as the upload reads it back."""
    out = io.StringIO()
    if labels is None:
        out.write("x,y\n")
        np.savetxt(out, points, delimiter=",", fmt="%.9g")
    else:
        out.write("x,y,label\n")
        for (x, y), label in zip(points.tolist(), np.asarray(labels).tolist(), strict=True):
            out.write(f"{x:.9g},{y:.9g},{label}\n")
    return out.getvalue()

"""Reading a user's 2D points from .npy, .npz or .csv/.txt files: never unpickled, one clear
line naming the file for anything wrong with it.

Formats are recognised by their first bytes, not trusted from the name: a .npy file starts with
``\\x93NUMPY`` and a .npz with the zip signature ``PK\\x03\\x04``. Without that check, numpy takes
any other bytes for a pickle and advises ``allow_pickle=True``, which is exactly what must not be
done with a stranger's file. CSV files may start with a UTF-8 byte-order mark and a header row
(``x,y``): both are common in files saved by spreadsheets, and both are accepted.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


class PointFileError(ValueError):
    """A user's point file cannot be used; the message is one line and names the file."""


def _fail(path, what: str):
    raise PointFileError(f"{Path(path).name}: {what}")


def _from_npy(path, data: bytes) -> np.ndarray:
    if not data.startswith(NPY_MAGIC):
        _fail(path, "not a .npy file (it does not start with the NumPy signature)")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            _fail(path, "holds Python objects (a pickle), which flowscope never loads; "
                        "save plain numbers, e.g. np.save(file, points.astype(float))")  # fmt: skip
        _fail(path, f"not a readable .npy file ({str(exc).splitlines()[0]})")


def _from_npz(path, data: bytes) -> np.ndarray:
    if not data.startswith(ZIP_MAGIC) and data[:4] != b"PK\x05\x06":  # 05 06: empty archive
        _fail(path, "not a .npz file (it is not a zip archive)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            names = archive.files
            if not names:
                _fail(path, "holds no arrays; save the points with np.savez(file, points=...)")
            return archive["points" if "points" in names else names[0]]
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as exc:
        if isinstance(exc, PointFileError):
            raise
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            _fail(path, "holds Python objects (a pickle), which flowscope never loads")
        _fail(path, f"not a readable .npz file ({str(exc).splitlines()[0]})")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _from_text(path, data: bytes, comma: bool) -> np.ndarray:
    if b"\x00" in data[:4096]:
        _fail(path, "is a binary file, not text; expected two columns of numbers")
    try:
        text = data.decode("utf-8-sig")  # strips a byte-order mark
    except UnicodeDecodeError:
        _fail(path, "is not UTF-8 text; expected two columns of numbers")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = [t.strip() for t in (line.split(",") if comma else line.replace(",", " ").split())]
        if not rows and not any(_is_number(t) for t in tokens):
            continue  # a header row such as "x,y"
        if len(tokens) != 2:
            _fail(path, f"line {number} has {len(tokens)} columns; expected 2 (x, y)")
        if not all(_is_number(t) for t in tokens):
            _fail(path, f"line {number} is not two numbers: {line[:40]!r}")
        rows.append([float(t) for t in tokens])
    if not rows:
        _fail(path, "holds no points; expected two columns of numbers (x, y)")
    return np.asarray(rows, dtype=np.float64)


def load_points(path: str) -> np.ndarray:
    """Read user points from a .npy, .npz (``points`` or its first array) or .csv/.txt file.

    Returns float64 (M, 2), M ≥ 1, all finite. Raises :class:`PointFileError` (a ValueError)
    with one line naming the file, or OSError if it cannot be read at all.
    """
    return read_points(Path(path).read_bytes(), str(path))


def read_points(data: bytes, path: str) -> np.ndarray:
    """:func:`load_points` for the bytes of a file named ``path`` (an upload, say)."""
    suffix = Path(path).suffix.lower()
    if not data:
        _fail(path, "is empty")
    if suffix == ".npy":
        arr = _from_npy(path, data)
    elif suffix == ".npz":
        arr = _from_npz(path, data)
    else:
        arr = _from_text(path, data, comma=suffix == ".csv")
    arr = np.asarray(arr)
    if arr.dtype.kind == "c":
        _fail(path, "holds complex numbers; expected real (x, y) points")
    if arr.dtype.kind not in "iuf":
        _fail(path, f"holds {arr.dtype} values; expected numbers")
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) == 0:
        _fail(path, f"expected an array of shape (M, 2), got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(1).sum())
        _fail(path, f"{bad} point(s) are NaN or infinite")
    return arr

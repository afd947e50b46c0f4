"""Reading a user's 2D points from .npy, .npz or .csv/.txt files: never unpickled, one clear
line naming the file for anything wrong with it.

The suffix names the format and the first bytes must confirm it: a .npy file starts with
``\\x93NUMPY`` and a .npz with the zip signature ``PK\\x03\\x04``. Without that check, numpy takes
any other bytes for a pickle and advises ``allow_pickle=True``, which is exactly what must not be
done with a stranger's file. CSV files may start with a UTF-8 byte-order mark and a header row
(``x,y``): both are common in files saved by spreadsheets, and both are accepted.

A third column (``x,y,label``; an (M, 3) array; or a ``labels`` array beside ``points`` in a
.npz) gives each point its class, an integer 0..``MAX_LABEL`` (:func:`read_labelled_points`):
the classes guidance steers toward (docs/MATH.md §12).

Sizes are measured before data is read: only a regular file is opened (a device such as
``/dev/zero`` or a FIFO never ends), at most ``MAX_FILE_BYTES`` of it are read, a .npy header's
shape and type are checked before its data, and a .npz member is inflated only up to what
``MAX_POINTS`` points can take, so a small compressed file that would expand to gigabytes
(a "decompression bomb") is refused after reading a few kilobytes.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
MAX_POINTS = 100_000  # a user's data set: more than any toy set needs; its field sums them all
MAX_FILE_BYTES = 16 * 2**20  # 100,000 rows of CSV at full precision take ~4 MB
MAX_HEADER_BYTES = 4096  # a .npy header of an (M, 2) array takes ~120 bytes
# a .npy of MAX_POINTS (M, 2) values of the widest real type (16 bytes), with its header
MAX_ARRAY_BYTES = MAX_POINTS * 3 * 16 + MAX_HEADER_BYTES  # (M, 3): points with labels
MAX_LABEL = 63  # classes 0..63: as many as the page has colours for, and more


class PointFileError(ValueError):
    """A user's point file cannot be used; the message is one line and names the file."""


def _fail(path, what: str):
    raise PointFileError(f"{Path(path).name}: {what}")


def _check_npy_header(path, data: bytes, labels: bool = False) -> None:
    """Refuse a .npy by its header alone: type, shape and the length its data must have."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        read = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}.get(version)  # fmt: skip
        if read is None:
            _fail(path, f"a .npy file of an unknown version {version}")
        shape, _fortran, dtype = read(stream, max_header_size=MAX_HEADER_BYTES)
    except PointFileError:
        raise
    except Exception as exc:  # numpy's header parser raises ValueError and others
        _fail(path, f"not a readable .npy file ({str(exc).splitlines()[0][:80]})")
    if dtype.hasobject:
        _fail(path, "holds Python objects (a pickle), which flowscope never loads; "
                    "save plain numbers, e.g. np.save(file, points.astype(float))")  # fmt: skip
    if dtype.kind not in "iuf":
        _fail(path, f"holds {dtype} values; expected real numbers")
    if labels and len(shape) != 1:
        _fail(path, f"expected its labels as an array of shape (M,), got {shape}")
    if not labels and (len(shape) != 2 or shape[1] not in (2, 3) or shape[0] == 0):
        _fail(path, f"expected an array of shape (M, 2), or (M, 3) with labels, got {shape}")
    if shape[0] > MAX_POINTS:
        _fail(path, f"{shape[0]:,} points; at most {MAX_POINTS:,} are accepted")
    needed = shape[0] * (1 if labels else shape[1]) * dtype.itemsize
    if len(data) - stream.tell() < needed:
        _fail(path, f"is cut short: its header promises {needed:,} bytes of data")


def _from_npy(path, data: bytes, labels: bool = False) -> np.ndarray:
    """The array of a .npy's bytes (a .npz's ``labels`` member: ``labels``, shape (M,))."""
    if not data.startswith(NPY_MAGIC):
        _fail(path, "not a .npy file (it does not start with the NumPy signature)")
    _check_npy_header(path, data, labels)
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            _fail(path, "holds Python objects (a pickle), which flowscope never loads; "
                        "save plain numbers, e.g. np.save(file, points.astype(float))")  # fmt: skip
        _fail(path, f"not a readable .npy file ({str(exc).splitlines()[0]})")


def _npz_member(path, archive: zipfile.ZipFile, name: str, labels: bool = False) -> np.ndarray:
    """One array of the archive, inflated at most to what MAX_POINTS points take (the sizes a
    zip declares can lie)."""
    with archive.open(name) as member:
        member_bytes = member.read(MAX_ARRAY_BYTES + 1)
    if len(member_bytes) > MAX_ARRAY_BYTES:
        _fail(path, f"its array {name[:-4]!r} holds more than {MAX_POINTS:,} points")
    return _from_npy(path, member_bytes, labels)


def _from_npz(path, data: bytes) -> np.ndarray:
    if not data.startswith(ZIP_MAGIC) and data[:4] != b"PK\x05\x06":  # 05 06: empty archive
        _fail(path, "not a .npz file (it is not a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.endswith(".npy")]
            if not names:
                _fail(path, "holds no arrays; save the points with np.savez(file, points=...)")
            others = [n for n in names if n != "labels.npy"] or names
            name = "points.npy" if "points.npy" in names else others[0]
            points = _npz_member(path, archive, name)
            if "labels.npy" not in names or points.ndim != 2:
                return points
            labels = _npz_member(path, archive, "labels.npy", labels=True)
        if points.shape[1] != 2:
            _fail(
                path,
                f"holds labels twice: a labels array beside points of shape "
                f"{points.shape}; give points (M, 2) with labels (M,), or (M, 3)",
            )
        if labels.shape != (len(points),):
            _fail(path, f"its labels {labels.shape} must hold one label per point "
                        f"({len(points)},)")  # fmt: skip
        return np.column_stack([points.astype(np.float64), labels.astype(np.float64)])
    except (ValueError, zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        if isinstance(exc, PointFileError):
            raise
        if "pickle" in str(exc).lower() or "object" in str(exc).lower():
            _fail(path, "holds Python objects (a pickle), which flowscope never loads")
        _fail(path, f"not a readable .npz file ({str(exc).splitlines()[0]})")


def _is_number(token: str) -> bool:
    """A plain decimal number ("1_0", which Python's float() reads as 10, is not one)."""
    if "_" in token:
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


def _tokens(line: str, comma: bool) -> list[str]:
    """A row's fields: split at commas or semicolons (a CSV; semicolons where the comma is the
    decimal mark's neighbour in a spreadsheet's locale), else at whitespace too; a field may be
    quoted."""
    fields = re.split(r"[,;]" if comma else r"[,;\s]+", line)
    return [f.strip().strip("\"'").strip() for f in fields]


def _from_text(path, data: bytes, comma: bool) -> np.ndarray:
    if b"\x00" in data[:4096]:
        _fail(path, "is a binary file, not text; expected two columns of numbers")
    try:
        text = data.decode("utf-8-sig")  # strips a byte-order mark
    except UnicodeDecodeError:
        _fail(path, "is not UTF-8 text; expected two columns of numbers")
    rows, seen_header = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if len(rows) > MAX_POINTS:  # stop reading: the rest is refused anyway
            _fail(path, f"more than {MAX_POINTS:,} points; at most {MAX_POINTS:,} are accepted")
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = _tokens(line, comma)
        if not rows and not seen_header and not any(_is_number(t) for t in tokens):
            seen_header = True  # one header row, such as "x,y"
            continue
        width = len(rows[0]) if rows else len(tokens)
        if len(tokens) not in (2, 3) or len(tokens) != width:
            _fail(path, f"line {number} has {len(tokens)} columns; expected {width} (x, y"
                        f"{', label' if width == 3 else ''})" if width in (2, 3) else
                  f"line {number} has {len(tokens)} columns; expected 2 (x, y) or 3 (x, y, "
                  "label)")  # fmt: skip
        if not all(_is_number(t) for t in tokens):
            count = "two" if len(tokens) == 2 else "three"
            _fail(path, f"line {number} is not {count} numbers: {line[:40]!r}")
        rows.append([float(t) for t in tokens])
    if not rows:
        _fail(path, "holds no points; expected two columns of numbers (x, y)")
    return np.asarray(rows, dtype=np.float64)


def load_points(path: str) -> np.ndarray:
    """:func:`load_labelled_points` without the labels: float64 (M, 2)."""
    return load_labelled_points(path)[0]


def load_labelled_points(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Read user points from a .npy, .npz (``points`` or its first array) or .csv/.txt file.

    Returns (float64 (M, 2), M ≥ 1, all finite; int64 labels (M,) or None without a label
    column). Raises :class:`PointFileError` (a ValueError)
    with one line naming the file, or OSError if it cannot be read at all. Only a regular file
    (or a link to one) of at most ``MAX_FILE_BYTES`` is read.
    """
    mode = os.stat(path).st_mode  # never opened first: a FIFO would block the open
    if not stat.S_ISREG(mode):
        _fail(path, "not a regular file (a device, a FIFO or a folder); give a file of points")
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        _fail(path, f"larger than {MAX_FILE_BYTES // 2**20} MB; a file of points is far smaller")
    return read_labelled_points(data, str(path))


def read_points(data: bytes, path: str) -> np.ndarray:
    """:func:`read_labelled_points` without the labels: float64 (M, 2)."""
    return read_labelled_points(data, path)[0]


def read_labelled_points(data: bytes, path: str) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`load_labelled_points` for the bytes of a file named ``path`` (an upload, say)."""
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
    if arr.ndim != 2 or arr.shape[1] not in (2, 3) or len(arr) == 0:
        _fail(path, f"expected an array of shape (M, 2), or (M, 3) with labels, got {arr.shape}")
    if len(arr) > MAX_POINTS:
        _fail(path, f"{len(arr):,} points; at most {MAX_POINTS:,} are accepted")
    with np.errstate(over="ignore"):  # long doubles past float64's range: said below
        wide = arr.astype(np.float64)
    if not np.isfinite(wide).all():
        bad = int((~np.isfinite(wide)).any(1).sum())
        if np.isfinite(arr).all():
            _fail(path, f"{bad} point(s) lie beyond the range of float64 (about ±1.8e308)")
        _fail(path, f"{bad} point(s) are NaN or infinite")
    if wide.shape[1] == 2:
        return wide, None
    labels = wide[:, 2]
    if not ((labels == np.round(labels)) & (labels >= 0) & (labels <= MAX_LABEL)).all():
        _fail(path, f"its third column must hold class labels, whole numbers 0..{MAX_LABEL}")
    return wide[:, :2].copy(), labels.astype(np.int64)

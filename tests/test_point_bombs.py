"""Point files measured before they are read: a .npy refused by its header's shape, a .npz
member inflated no further than ``MAX_POINTS`` points take, only regular files opened, at most
``MAX_FILE_BYTES`` read. Each case is a file made here, in a temporary folder."""

from __future__ import annotations

import io
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

from app.cli import main
from models.pointfiles import (
    MAX_ARRAY_BYTES,
    MAX_FILE_BYTES,
    MAX_POINTS,
    PointFileError,
    load_points,
    read_points,
)
from tests.nodes import special_file

QUICK = ["sample", "--steps", "3", "--particles", "100", "--resolution", "16"]


def npy_header(shape, dtype="<f8") -> bytes:
    """The bytes of a version 1.0 .npy header for ``shape``, with no data after it."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return out.getvalue()


def zip_bomb(path, rows: int, declared_rows: int | None = None) -> None:
    """A .npz whose one member is a .npy of ``rows`` x 2 zeros (header: ``declared_rows``),
    written in chunks so the test never holds the whole array."""
    header = npy_header((rows if declared_rows is None else declared_rows, 2))
    chunk = bytes(2**20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("points.npy", "w", force_zip64=True) as member:
            member.write(header)
            left = rows * 16
            while left > 0:
                member.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_a_npy_header_promising_1e11_points_is_refused_by_its_shape(tmp_path, capsys):
    bomb = tmp_path / "bomb.npy"
    bomb.write_bytes(npy_header((10**11, 2)))
    assert bomb.stat().st_size < 200
    with pytest.raises(PointFileError, match="at most 100,000"):
        load_points(str(bomb))
    assert main([*QUICK, "--points", str(bomb), "--out", str(tmp_path / "o.npz")]) == 2
    assert "bomb.npy" in one_line(capsys)


@pytest.mark.parametrize("shape, words", [
    ((3,), "shape"), ((4, 4), "shape"), ((0, 2), "shape"), ((2, 2, 2), "shape"),
])  # fmt: skip
def test_a_npy_of_the_wrong_shape_is_refused_by_its_header(shape, words):
    with pytest.raises(PointFileError, match=words):
        read_points(npy_header(shape), "x.npy")


def test_a_npy_cut_short_is_refused():
    with pytest.raises(PointFileError, match="cut short"):
        read_points(npy_header((1000, 2)) + bytes(100), "x.npy")


def test_an_object_npy_is_refused_by_its_header():
    with pytest.raises(PointFileError, match="pickle"):
        read_points(npy_header((3, 2), dtype="|O"), "x.npy")


@pytest.mark.parametrize("declared", [None, 10])
def test_a_npz_bomb_is_refused_without_inflating_it(tmp_path, declared):
    """10M points of zeros (160 MB inflated) in a file of well under 1 MB, its header honest or
    lying: refused, with the memory of at most the bounded read (a few MB)."""
    bomb = tmp_path / "bomb.npz"
    zip_bomb(bomb, rows=10_000_000, declared_rows=declared)
    assert bomb.stat().st_size < 2**20
    data = bomb.read_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(PointFileError, match="points"):
            read_points(data, "bomb.npz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_ARRAY_BYTES, f"peak {peak / 2**20:.0f} MB while refusing"


def test_a_npz_of_exactly_max_points_is_read(tmp_path):
    path = tmp_path / "big.npz"
    points = np.random.default_rng(0).uniform(-1, 1, (MAX_POINTS, 2))
    np.savez_compressed(path, points=points)
    assert np.array_equal(load_points(str(path)), points)
    np.savez_compressed(path, points=np.zeros((MAX_POINTS + 1, 2)))
    with pytest.raises(PointFileError, match="100,000"):
        load_points(str(path))


def test_a_csv_of_too_many_rows_is_refused():
    text = "x,y\n" + "0.5,0.5\n" * (MAX_POINTS + 1)
    with pytest.raises(PointFileError, match="100,000"):
        read_points(text.encode(), "rows.csv")


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_only_regular_files_are_read(tmp_path, capsys, kind):
    node = special_file(tmp_path, kind)
    codes: list[int] = []
    out = str(tmp_path / "o.npz")
    worker = threading.Thread(target=lambda: codes.append(
        main([*QUICK, "--points", str(node), "--out", out])), daemon=True)  # fmt: skip
    worker.start()
    worker.join(60)
    assert codes == [2], "blocked or read without end"
    assert "not a regular file" in one_line(capsys)


def test_a_file_larger_than_the_cap_is_refused_after_reading_the_cap(tmp_path):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 10)  # sparse: no disk used
    with pytest.raises(PointFileError, match="larger than"):
        load_points(str(big))


@pytest.mark.parametrize("text, want", [
    (b'x,y\n"1","2"\n"3","4"\n', [[1, 2], [3, 4]]),  # quoted fields
    (b"x;y\n1;2\n3;4\n", [[1, 2], [3, 4]]),  # semicolons
])  # fmt: skip
def test_csv_rows_quoted_or_with_semicolons_are_read(text, want):
    assert read_points(text, "p.csv").tolist() == want


@pytest.mark.parametrize("text, words", [
    (b"1_0,2\n3,4\n", "line 1 is not two numbers"),  # float() would read 10
    (b"a,b\nc,d\n1,2\n", "line 2 is not two numbers"),  # one header row, not any number
])  # fmt: skip
def test_csv_oddities_are_refused_with_the_line(text, words):
    with pytest.raises(PointFileError, match=words):
        read_points(text, "p.csv")


def test_long_doubles_past_float64_are_named_without_a_warning(recwarn):
    big = np.full((3, 2), np.longdouble(10) ** 400)
    if not np.isfinite(big).all():
        pytest.skip("this platform's long double is float64")
    buffer = io.BytesIO()
    np.save(buffer, big)
    with pytest.raises(PointFileError, match="beyond the range of float64"):
        read_points(buffer.getvalue(), "f128.npy")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]

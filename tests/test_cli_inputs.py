"""The command line as a new user and an attacker would use it: --out paths, point files,
what the metadata records, and ``serve``'s port. Every failure is one line and exit code 2."""

from __future__ import annotations

import json
import os
import socket
import time

import numpy as np
import pytest

from app.cli import main
from models.pointfiles import PointFileError, load_points

QUICK = ["sample", "--steps", "3", "--particles", "100", "--resolution", "16"]


def one_line_error(capsys, code: int = 2) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("name", ["run.npz", "x.txt", "no_suffix"])
def test_out_writes_exactly_the_path_given_and_says_so(tmp_path, capsys, name):
    out = tmp_path / name
    assert main([*QUICK, "--out", str(out)]) == 0
    assert sorted(os.listdir(tmp_path)) == [name], "nothing else (no .npz added, no temp left)"
    assert capsys.readouterr().out.startswith(f"wrote {out}:")
    with np.load(out) as f:  # a real npz whatever its name
        assert f["trajectories"].shape == (4, 100, 2)
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("make, words", [
    (lambda d: str(d), "is a folder"),
    (lambda d: str(d) + "/", "names a folder"),
    (lambda d: str(d / "new") + "/", "names a folder"),
    (lambda d: "", "empty"),
    (lambda d: str(d / "missing" / "x.npz"), "does not exist"),
])  # fmt: skip
def test_bad_out_paths_are_refused_and_nothing_is_written(tmp_path, capsys, make, words):
    before = sorted(os.listdir(tmp_path))
    assert main([*QUICK, "--out", make(tmp_path)]) == 2
    assert words in one_line_error(capsys)
    assert sorted(os.listdir(tmp_path)) == before
    assert not (tmp_path.parent / f"{tmp_path.name}.npz").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write in a read-only folder")
def test_an_unwritable_folder_is_refused_before_the_run(tmp_path, capsys):
    tmp_path.chmod(0o500)
    try:
        assert main([*QUICK, "--out", str(tmp_path / "x.npz")]) == 2
    finally:
        tmp_path.chmod(0o700)
    assert "not writable" in one_line_error(capsys)


def test_a_path_that_cannot_be_written_fails_before_computing(capsys):
    start = time.perf_counter()
    code = main(["sample", "--steps", "1000", "--particles", "20000", "--out", "/proc/x.npz"])
    assert code == 2 and time.perf_counter() - start < 2.0, "checked before the (long) run"
    assert "/proc/x.npz" in one_line_error(capsys)


def test_a_failed_run_leaves_no_file(tmp_path, monkeypatch, capsys):
    import models.run.simulate

    def explode(*_a, **_k):
        raise ValueError("boom in the middle of the run")

    monkeypatch.setattr(models.run.simulate, "simulate", explode)
    assert main([*QUICK, "--out", str(tmp_path / "x.npz")]) == 2
    assert "boom" in one_line_error(capsys)
    assert os.listdir(tmp_path) == []


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


BAD_FILES = {
    "empty.npz": (lambda p: np.savez(p), "holds no arrays"),
    "empty.csv": (lambda p: _write(p, b""), "is empty"),
    "blank.csv": (lambda p: _write(p, b"x,y\n\n"), "holds no points"),
    "complex.npy": (lambda p: np.save(p, np.ones((3, 2)) + 1j), "complex"),
    "random.npy": (lambda p: _write(p, bytes(range(256)) * 3), "not a .npy file"),
    "random.npz": (lambda p: _write(p, b"\x01" * 300), "not a .npz file"),
    "binary.csv": (lambda p: _write(p, bytes(range(256)) * 3), "binary"),
    "latin1.csv": (lambda p: _write(p, "1,2\n3,é\n".encode("latin-1")), "UTF-8"),
    "four.csv": (lambda p: _write(p, b"1,2,3,4\n"), "line 1 has 4 columns"),
    "text.csv": (lambda p: _write(p, b"1,2\n3,abc\n"), "line 2 is not two numbers"),
    "nan.csv": (lambda p: _write(p, b"1,2\nnan,4\n"), "NaN or infinite"),
    "pickle.npy": (
        lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "pickle",
    ),
    "shape.npy": (lambda p: np.save(p, np.zeros((4, 4))), "(M, 2)"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_point_files_get_one_line_naming_the_file(tmp_path, capsys, name):
    make, words = BAD_FILES[name]
    make(tmp_path / name)
    assert main([*QUICK, "--points", str(tmp_path / name), "--out", str(tmp_path / "o")]) == 2
    line = one_line_error(capsys)
    assert name in line and words in line, line
    assert not (tmp_path / "o").exists()


def test_a_pickled_npy_payload_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.save(tmp_path / "evil.npy", np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(PointFileError, match="pickle"):
        load_points(str(tmp_path / "evil.npy"))
    assert not marker.exists()


@pytest.mark.parametrize("text", [
    "x,y\n0.5,1\n-1,2\n",              # a header row, as spreadsheets write
    "\ufeffx,y\n0.5,1\n-1,2\n",         # and a UTF-8 byte-order mark
    "\ufeff0.5,1\r\n-1,2\r\n",          # Windows line ends, no header
    "# my points\n0.5, 1\n-1, 2\n",     # a comment and spaces
])  # fmt: skip
def test_csv_with_header_or_bom_is_read(tmp_path, text):
    path = tmp_path / "p.csv"
    path.write_bytes(text.encode("utf-8"))
    np.testing.assert_array_equal(load_points(str(path)), [[0.5, 1.0], [-1.0, 2.0]])


def test_metadata_records_the_solver_that_ran(tmp_path, capsys):
    out = tmp_path / "s.npz"
    args = [*QUICK, "--kind", "sde", "--eta", "0.5", "--direction", "forward"]
    assert main([*args, "--out", str(out)]) == 0
    with np.load(out) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["solver"] == "euler-maruyama" and meta["solver_requested"] == "euler"
    assert main([*QUICK, "--solver", "heun", "--kind", "sde", "--direction", "forward",
                 "--out", str(out)]) == 0  # fmt: skip
    with np.load(out) as f:  # η = 1 forward: the exact transition, no solver steps
        meta = json.loads(str(f["meta"]))
    assert meta["solver"] == "exact-transition" and meta["solver_requested"] == "heun"
    assert "exact-transition" in capsys.readouterr().err
    assert main([*QUICK, "--solver", "heun", "--out", str(out)]) == 0
    with np.load(out) as f:
        assert json.loads(str(f["meta"]))["solver"] == "heun"


@pytest.mark.parametrize("args, named", [
    (["--solver", "heun", "--kind", "sde", "--eta", "0.5", "--direction", "forward"], "heun"),
    (["--kind", "ode", "--eta", "0.5"], "--kind sde"),
    (["--kind", "conditional", "--eta", "1"], "--kind sde"),
])  # fmt: skip
def test_one_noise_rule_settings_that_cannot_apply_are_refused(tmp_path, capsys, args, named):
    """η is the SDE's alone and a solver without a stochastic form cannot step it: the same
    rule as the app's controls (``models.run.config``), refused in one line, nothing written."""
    out = tmp_path / "s.npz"
    assert main([*QUICK, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and named in err and not out.exists()


def test_a_run_whose_particles_leave_the_view_says_why(tmp_path, capsys):
    assert main([*QUICK, "--steps", "1", "--kind", "sde", "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "left the view" in err and "too few steps" in err


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_serve_refuses_a_port_out_of_range_before_saying_serving(capsys, port):
    assert main(["serve", "--port", port]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.strip().splitlines() == [
        f"flowscope: error: --port must be in 1..65535, got {port}"
    ]


def test_serve_on_a_busy_port_is_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port), "--address", "127.0.0.1"]) == 2
    captured = capsys.readouterr()
    assert "serving" not in captured.out
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1

"""``flowscope solvers``: the CSV it writes, its bounds, and the files it refuses to write."""

from __future__ import annotations

import csv
import os
import stat

import pytest
import torch

from app.cli import main
from models.evaluation.solver_error import COLUMNS
from tests.nodes import special_file

QUICK = [
    "solvers", "--process", "vp", "--dataset", "8gaussians", "--nfe", "4,8", "--particles", "32",
    "--solvers", "euler,heun,dopri5", "--time-grid", "uniform",
]  # fmt: skip


@pytest.fixture(autouse=True)
def restore_threads():
    before = torch.get_num_threads()  # the command sets one thread for itself
    yield
    torch.set_num_threads(before)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_writes_the_table_as_csv_and_prints_it(tmp_path, capsys):
    out = tmp_path / "table.csv"
    assert main([*QUICK, "--out", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    fixed = [(r["solver"], r["grid"], int(r["steps"]), int(r["nfe"])) for r in rows[:4]]
    assert fixed == [("euler", "uniform", 4, 4), ("euler", "uniform", 8, 8),
                     ("heun", "uniform", 2, 4), ("heun", "uniform", 4, 8)]  # fmt: skip
    assert {r["grid"] for r in rows[4:]} == {"adaptive"} and len(rows) == 4 + 5
    assert all(float(r["endpoint_error"]) > 0 and float(r["seconds"]) >= 0 for r in rows)
    printed = capsys.readouterr().out
    assert "endpoint_error" in printed and f"wrote {out}: 9 rows" in printed


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--nfe", ""], "at least one NFE"),
        (["--nfe", "4,x"], "not a list of whole numbers"),
        (["--nfe", "0,4"], "1..1000"),
        (["--nfe", "4,2000"], "1..1000"),
        (["--nfe", ",".join(str(n) for n in range(1, 14))], "at most 12"),
        (["--particles", "0"], "1..4000"),
        (["--particles", "5000"], "1..4000"),
        (["--particles", "4000", "--nfe", "500,1000"], "ask for less"),
        (["--solvers", "euler,leapfrog"], "unknown solver 'leapfrog'"),
        (["--time-grid", "cubic"], "unknown time grid"),
        (["--process", "sde"], "invalid choice"),
        (["--weights", "w.safetensors"], "--weights needs --field learned"),
        (["--field", "learned", "--weights", "missing.safetensors"], "missing.safetensors"),
    ],
)
def test_bad_inputs_are_one_line_errors_with_exit_code_2(tmp_path, capsys, extra, message):
    out = tmp_path / "table.csv"
    assert exit_code([*QUICK, *extra, "--out", str(out)]) == 2
    assert message in _one_line(capsys)
    assert not out.exists()


def exit_code(argv) -> int:
    """main's return value, or the code argparse exits with (bad option values)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("kind", ["null", "fifo", "socket"])
def test_special_files_are_refused_before_any_work(tmp_path, capsys, kind):
    target = special_file(tmp_path, kind)
    before = os.lstat(target)
    assert main([*QUICK, "--out", str(target)]) == 2
    assert "not a regular file" in _one_line(capsys)
    after = os.lstat(target)
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name], "no temporary file left"


def test_learned_field_runs_from_the_shipped_weights(tmp_path):
    out = tmp_path / "learned.csv"
    args = [
        "solvers", "--process", "fm", "--field", "learned", "--nfe", "8", "--particles", "16",
        "--solvers", "heun,dpmpp2m", "--time-grid", "logsnr", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["solver"] for r in rows] == ["heun", "dpmpp2m"]
    assert all(float(r["endpoint_error"]) < 1.0 for r in rows)

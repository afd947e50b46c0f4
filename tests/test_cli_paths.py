"""``flowscope sample`` with the processes, schedules and sources of docs/MATH.md §2.1-2.2,
§5.1: the files carry what ran, and a bad drawing or source is refused in one line."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from app.cli import main
from models.schedules import LinearSchedule, format_points, sample_log_snr

SMALL = ["--steps", "20", "--particles", "300"]


def _run(tmp_path, *args) -> tuple[dict, np.lib.npyio.NpzFile]:
    out = tmp_path / "run.npz"
    assert main(["sample", *SMALL, *args, "--out", str(out)]) == 0
    f = np.load(out, allow_pickle=False)
    return json.loads(str(f["meta"])), f


def test_ve_writes_its_sigmas_and_a_box_that_holds_its_noise_end(tmp_path):
    meta, f = _run(tmp_path, "--process", "ve", "--sigma-max", "6")
    assert meta["process"] == "ve" and meta["sigma_max"] == 6 and meta["sigma_min"] == 0.01
    half = math.ceil(4 + 3.5 * 6)
    assert f["extent"].tolist() == [-half, half, -half, half]
    start = f["trajectories"][0]
    assert 5 < start.std() < 7  # N(0, 6² I) at t = 1
    assert f["exact_density"].shape[1:] == (128, 128)


def test_a_drawn_schedule_from_the_command_line_runs_as_the_schedule_it_copies(tmp_path):
    points = format_points(sample_log_snr(LinearSchedule(), 32, spacing="lambda"), digits=8)
    drawn, f = _run(tmp_path, "--process", "vp", "--schedule", "points",
                    "--schedule-points", points)  # fmt: skip
    x_drawn = f["trajectories"][-1]
    linear, g = _run(tmp_path, "--process", "vp", "--schedule", "linear")
    assert drawn["schedule_points"] == points and linear["schedule"] == "linear"
    assert np.abs(x_drawn - g["trajectories"][-1]).sum(-1).mean() < 5e-2


def test_subvp_and_edm_and_the_new_schedules_run(tmp_path):
    for args in (["--process", "subvp", "--schedule", "sigmoid"],
                 ["--process", "edm"],
                 ["--process", "vp", "--schedule", "shifted-cosine", "--shift", "3"]):  # fmt: skip
        meta, f = _run(tmp_path, *args)
        assert np.isfinite(f["trajectories"]).all(), args
    assert meta["shift"] == 3


def test_flow_from_a_source_data_set(tmp_path):
    meta, f = _run(tmp_path, "--process", "fm", "--source", "8gaussians", "--dataset", "moons")
    assert meta["source"] == "8gaussians"
    radius = np.linalg.norm(f["trajectories"][0], axis=1)
    assert np.median(np.abs(radius - 2)) < 0.3  # the 8 gaussians sit on a circle of radius 2


@pytest.mark.parametrize(
    "args, words",
    [
        (["--schedule", "points", "--schedule-points", "0:1,1:2"], "must fall"),
        (["--schedule", "points", "--schedule-points", "zz"], "cannot read schedule point"),
        (["--schedule", "points"], "needs its control points"),
        (["--sigma-max", "-1", "--process", "ve"], "sigma-max"),
        (["--source", "moons", "--kind", "sde"], "run the ODE or the conditional paths"),
    ],
)
def test_bad_paths_exit_2_with_one_line(tmp_path, capsys, args, words):
    process = "fm" if "--source" in args else "vp"  # a later --process in args wins
    code = main(["sample", *SMALL, "--process", process, *args, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1, err

"""The ``flowscope sample`` command: the file it writes, and the arguments it refuses."""

import json
import subprocess
import sys

import numpy as np
import pytest

from app.cli import main


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120
    )


def test_sample_writes_the_documented_file(tmp_path):
    out = tmp_path / "run.npz"
    proc = run_cli(
        "sample",
        "--process",
        "vp",
        "--dataset",
        "moons",
        "--direction",
        "reverse",
        "--kind",
        "sde",
        "--steps",
        "20",
        "--particles",
        "300",
        "--seed",
        "3",
        "--schedule",
        "cosine",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    with np.load(out, allow_pickle=False) as f:
        assert f["trajectories"].shape == (21, 300, 2) and f["trajectories"].dtype == np.float32
        assert f["times"].shape == (21,) and f["times"][0] == 1.0 and f["times"][-1] == 0.0
        assert f["density"].shape == (21, 128, 128) and f["exact_density"].shape == (21, 128, 128)
        assert f["extent"].tolist() == [-4.0, 4.0, -4.0, 4.0]
        meta = json.loads(str(f["meta"]))
        assert np.isfinite(f["trajectories"]).all()
        # index 0 is where the run starts: noise for a reverse run
        assert 0.7 < f["trajectories"][0].std() < 1.3
    assert meta["process"] == "vp" and meta["eta"] == 1.0 and meta["schedule"] == "cosine"
    assert meta["steps"] == 20 and meta["particles"] == 300 and meta["seed"] == 3


def test_forward_run_starts_at_the_data(tmp_path):
    out = tmp_path / "fwd.npz"
    assert (
        main(
            [
                "sample",
                "--direction",
                "forward",
                "--kind",
                "conditional",
                "--steps",
                "5",
                "--particles",
                "100",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with np.load(out) as f:
        radii = np.linalg.norm(f["trajectories"][0], axis=1)
        assert np.allclose(radii.mean(), 2.0, atol=0.1)  # 8 gaussians on the circle of radius 2
        assert f["times"][0] == 0.0 and f["times"][-1] == 1.0


def test_user_points_from_a_file(tmp_path):
    pts = np.array([[1.0, 1.0], [-1.0, 1.0], [0.0, -1.0]] * 10)
    src, out = tmp_path / "pts.csv", tmp_path / "u.npz"
    np.savetxt(src, pts, delimiter=",")
    assert (
        main(
            [
                "sample",
                "--points",
                str(src),
                "--steps",
                "50",
                "--particles",
                "500",
                "--solver",
                "heun",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    with np.load(out) as f:
        final = f["trajectories"][-1]
        nearest = np.min(np.linalg.norm(final[:, None] - pts[None, :3], axis=-1), axis=1)
        assert np.median(nearest) < 0.15
        assert json.loads(str(f["meta"]))["dataset"] == "points"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--steps", "0"], "steps"),
        (["--particles", "0"], "particles"),
        (["--particles", "10000000"], "particles"),
        (["--dataset", "nosuch"], "dataset"),
        (["--process", "nope"], "process"),
        (["--beta-min", "5", "--beta-max", "1"], "beta-min"),
        (["--beta-max", "inf"], "finite"),
        (["--eta", "nan"], "finite"),
        (["--eta", "1.5"], "eta"),
        (["--steps", "ten"], "steps"),
        (["--kind", "sde", "--solver", "heun"], "heun"),
        (["--points", "/nonexistent.npy"], "nonexistent"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, words):
    proc = run_cli("sample", "--out", str(tmp_path / "x.npz"), *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert words in lines[0]
    assert not (tmp_path / "x.npz").exists()


def test_pickled_points_are_refused(tmp_path):
    bad = tmp_path / "evil.npy"
    np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    proc = run_cli("sample", "--points", str(bad), "--out", str(tmp_path / "x.npz"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "pickle" in proc.stderr.lower()


def test_malformed_points_are_refused(tmp_path):
    bad = tmp_path / "four.npy"
    np.save(bad, np.zeros((4, 4)))
    proc = run_cli("sample", "--points", str(bad), "--out", str(tmp_path / "x.npz"))
    assert proc.returncode == 2 and "(M, 2)" in proc.stderr


def test_serve_refuses_a_bad_thread_count_before_serving():
    proc = run_cli("serve", "--threads", "0", "--port", "1")
    assert proc.returncode == 2
    expected = "flowscope: error: --threads must be in 1..256, got 0"
    assert proc.stderr.strip().splitlines() == [expected]

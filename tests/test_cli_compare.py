"""``flowscope compare``: two runs on the same noise written to a file; the options shared by
both, those of ``--a`` and ``--b`` over them, and the inputs it refuses (one line, exit 2, no
file, before any run)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from app.cli.compare import glue_side_values

SHARED = ("--dataset", "moons", "--particles", "300", "--resolution", "32", "--steps", "20")
SOLVERS = ("--a", "--solver euler --steps 100", "--b", "--solver heun --steps 10")


def compare(out, *options) -> None:
    assert main(["compare", *SHARED, *options, "--out", str(out)]) == 0


def load(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def test_each_run_takes_its_own_options_over_the_shared_ones(tmp_path, capsys):
    out = tmp_path / "pair.npz"
    compare(out, *SOLVERS)
    said = capsys.readouterr().out
    assert said.startswith(f"wrote {out}: npz, A 300 particles x 100 steps (euler)")
    assert "B 300 particles x 10 steps (heun)" in said and said.count("\n") == 1
    data = load(out)
    for key in ("trajectories", "times", "labels", "density", "exact_density", "extent"):
        assert f"a_{key}" in data and f"b_{key}" in data
    assert data["a_trajectories"].shape == (101, 300, 2) and data["a_times"].shape == (101,)
    assert data["b_trajectories"].shape == (11, 300, 2) and data["b_labels"].shape == (300,)
    for key in ("frames_a", "frames_b", "frame_times", "twin_distance", "sw2_ab"):
        assert data[key].shape == (101,)
    k = np.arange(11)
    np.testing.assert_array_equal(data["frames_b"][10 * k], k)
    np.testing.assert_array_equal(data["frames_a"], np.arange(101))
    # both start from the same noise: twins at the start, apart by the end
    assert data["twin_distance"][0] == 0 and data["twin_distance"][-1] > 0
    np.testing.assert_array_equal(data["a_trajectories"][0], data["b_trajectories"][0])
    meta = json.loads(str(data["meta"]))
    assert meta["a"]["solver"] == "euler" and meta["b"]["solver"] == "heun"
    assert meta["a"]["dataset"] == meta["b"]["dataset"] == "moons"
    assert ["steps", 100, 10] in meta["changes"] and ["solver", "euler", "heun"] in meta["changes"]
    assert meta["shared"].startswith("the same noise")


@pytest.mark.parametrize("kind", ["ode", "sde"])
def test_b_equal_to_a_is_the_same_run_bit_for_bit(kind, tmp_path):
    out = tmp_path / "twin.npz"
    compare(out, "--kind", kind)  # --a and --b default to nothing: B = A
    data = load(out)
    a_keys = sorted(k for k in data if k.startswith("a_"))
    assert a_keys == sorted("a_" + k[2:] for k in data if k.startswith("b_"))
    for key in a_keys:
        a, b = data[key], data["b_" + key[2:]]
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), key
    assert not data["twin_distance"].any() and not data["sw2_ab"].any()
    meta = json.loads(str(data["meta"]))
    assert meta["changes"] == [] and meta["a"] == meta["b"]


def test_an_option_alone_in_a_side_is_its_value(tmp_path):
    """``--b --log-density`` (a value argparse would take for an option) is B's option."""
    assert glue_side_values(["compare", "--b", "--log-density"]) == ["compare", "--b=--log-density"]
    out = tmp_path / "pair.npz"
    compare(out, "--steps", "5", "--b", "--log-density")
    data = load(out)
    assert data["b_log_density"].shape == (6, 300) and "a_log_density" not in data


def test_csv_has_both_runs_behind_a_run_column(tmp_path):
    out = tmp_path / "pair.csv"
    compare(out, "--steps", "6", "--b", "--particles 200 --steps 4")
    lines = out.read_text().splitlines()
    assert lines[0] == "run,frame,t,particle,x,y,label"
    runs = [line.split(",", 1)[0] for line in lines[1:]]
    assert set(runs) == {"a", "b"} and runs == sorted(runs)  # A's rows, then B's
    assert len(lines) - 1 == 7 * 300 + 5 * 200
    rows = np.loadtxt(lines[1:], delimiter=",", usecols=range(1, 7))
    assert rows[runs.index("b"), 0] == 0 and rows[-1, 0] == 4 and rows[-1, 2] == 199


@pytest.mark.parametrize("fmt", ["gif", "mp4"])
def test_pictures_have_a_frame_per_step_and_are_wider_than_one_run(fmt, tmp_path):
    from tests.test_export_files import read_gif, read_mp4

    out, single = tmp_path / f"pair.{fmt}", tmp_path / f"one.{fmt}"
    compare(out, "--size", "64", "--trail", "2", "--a", "--steps 12", "--b", "--steps 4")
    assert main(["export", *SHARED, "--size", "64", "--out", str(single)]) == 0
    if fmt == "gif":
        (image, _), (alone, _) = read_gif(out), read_gif(single)
        frames, size, single_size = image.n_frames, image.size, alone.size
    else:
        (meta, pictures), (alone, _) = read_mp4(out), read_mp4(single)
        frames, size, single_size = len(pictures), meta["size"], alone["size"]
    assert frames == 13  # A's 13 frames; B shows its frame k at A's 3k
    assert size[0] == 5 * 64 > single_size[0] == 2 * 64


def test_b_equal_to_a_draws_a_white_difference_panel(tmp_path):
    out = tmp_path / "twin.gif"
    compare(out, "--size", "64", "--steps", "6", "--kind", "sde")
    image = Image.open(out)
    assert image.n_frames == 7
    for i in range(image.n_frames):
        image.seek(i)
        panel = np.asarray(image.convert("RGB"))[:64, 4 * 64 : 5 * 64]
        assert (panel >= 250).all()


def test_html_is_written(tmp_path):
    out = tmp_path / "pair.html"
    compare(out, "--size", "80", "--steps", "5", "--b", "--solver midpoint")
    text = out.read_text()
    assert "B: particles" in text and "<script src=" not in text


def no_compute(*_args, **_kwargs):
    raise AssertionError("computed before refusing")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (("--a", "--bogus 1"), "--bogus"),
        (("--a", "--out x.npz"), "--out"),
        (("--b", "--size 64"), "--size"),
        (("--a", '--solver "heun'), "--a"),  # unbalanced quotes
        (("--b", "--steps 0"), "run B: steps must be in 1.."),
        (("--a", "--solver rk5"), "--solver"),
        (("--b", "--steps"), "--steps"),
        (("--a", "heun"), "heun"),
        (("--b", "--kind sde --reference"), "run B: --reference"),
    ],
)
def test_bad_side_options_are_one_line_exit_2_before_any_run(options, named, tmp_path,
                                                             monkeypatch, capsys):  # fmt: skip
    monkeypatch.setattr("models.compare.pair.simulate_pair", no_compute)
    out = tmp_path / "pair.npz"
    assert main(["compare", *SHARED, *options, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowscope: error: ") and err.count("\n") == 1
    assert named in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [("--out", "pair.png"), ("--format", "gif", "--out", "p.mp4"),
                                  ("--size", "8", "--out", "p.gif")])  # fmt: skip
def test_bad_outputs_are_one_line_exit_2(args, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("models.compare.pair.simulate_pair", no_compute)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", *SHARED, *args]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_command_from_a_shell(tmp_path):
    out = tmp_path / "pair.npz"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "compare", *SHARED, "--kind", "sde", "--a", "--steps 8",
         "--b", "--steps 4 --time-grid quadratic", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Brownian path on B's grid" in proc.stdout
    assert load(out)["b_trajectories"].shape == (5, 300, 2)

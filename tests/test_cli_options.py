"""Command-line options as a careless user or an attacker types them: every refusal is one line
naming the option, exit code 2, nothing silently ignored; ``train`` takes the schedules the page
trains on; what the page says of the command line is what the command line does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors import safe_open

from app.cli import main as cli_main
from app.cli.options import SEED_MAX
from models.datasets import BANDWIDTH_RANGE, Points
from models.run.config import MAX_PARTICLES

QUICK = ["sample", "--steps", "3", "--particles", "100", "--resolution", "16"]
TRAIN = ["train", "--steps", "2", "--batch", "8"]


def main(argv) -> int:
    """The exit code, whether main returns it or argparse exits with it."""
    try:
        return cli_main(argv)
    except SystemExit as exit_:
        return exit_.code


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("command", [QUICK, TRAIN], ids=["sample", "train"])
@pytest.mark.parametrize("seed", ["99999999999999999999", str(SEED_MAX + 1), "-1", "1.5"])
def test_a_seed_out_of_range_names_the_option(tmp_path, capsys, command, seed):
    assert main([*command, "--seed", seed, "--out", str(tmp_path / "o")]) == 2
    assert "--seed" in one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_the_largest_seed_runs(tmp_path):
    assert main([*QUICK, "--seed", str(SEED_MAX), "--out", str(tmp_path / "o.npz")]) == 0


@pytest.fixture
def points_file(tmp_path):
    path = tmp_path / "p.csv"
    np.savetxt(path, np.random.default_rng(0).normal(size=(30, 2)), delimiter=",")
    return str(path)


@pytest.mark.parametrize("command", [QUICK, TRAIN], ids=["sample", "train"])
@pytest.mark.parametrize("width", ["1e-300", "0", "-1", "0.000999", "10.01", "nan"])
def test_a_bandwidth_out_of_range_names_the_option(tmp_path, capsys, command, points_file, width):
    out = str(tmp_path / "o")
    assert main([*command, "--points", points_file, "--bandwidth-points", width,
                 "--out", out]) == 2  # fmt: skip
    assert "--bandwidth-points" in one_line(capsys)


@pytest.mark.parametrize("width", [str(BANDWIDTH_RANGE[0]), str(BANDWIDTH_RANGE[1])])
def test_bandwidths_at_the_limits_run(tmp_path, points_file, width):
    out = str(tmp_path / "o.npz")
    assert main([*QUICK, "--points", points_file, "--bandwidth-points", width, "--out", out]) == 0
    with np.load(out) as f:
        assert np.isfinite(f["trajectories"]).all()


@pytest.mark.parametrize("width", [1e-300, 0.0, np.nextafter(BANDWIDTH_RANGE[0], 0)])
def test_points_refuse_a_bandwidth_below_the_range(width):
    with pytest.raises(ValueError, match="bandwidth"):
        Points(np.zeros((3, 2)), bandwidth=width)


@pytest.mark.parametrize("command", [QUICK, TRAIN], ids=["sample", "train"])
def test_points_and_dataset_together_are_refused(tmp_path, capsys, command, points_file):
    out = str(tmp_path / "o")
    assert main([*command, "--points", points_file, "--dataset", "moons", "--out", out]) == 2
    assert "--points and --dataset" in one_line(capsys)


def test_points_alone_are_the_data_set(tmp_path, points_file):
    out = str(tmp_path / "o.npz")
    assert main([*QUICK, "--points", points_file, "--out", out]) == 0
    with np.load(out) as f:
        assert json.loads(str(f["meta"]))["dataset"] == "points"


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_train_takes_the_schedules_the_page_trains_on(tmp_path, schedule):
    out = tmp_path / "w.safetensors"
    assert main([*TRAIN, "--process", "vp", "--schedule", schedule, "--beta-min", "0.2",
                 "--beta-max", "10", "--out", str(out)]) == 0  # fmt: skip
    with safe_open(str(out), "pt") as f:
        arch = json.loads(f.metadata()["architecture"])
    assert arch["schedule"] == schedule
    # and the weights run with that schedule, and are refused for another
    run = [*QUICK, "--process", "vp", "--field", "learned", "--weights", str(out),
           "--schedule", schedule, "--beta-min", "0.2", "--beta-max", "10"]  # fmt: skip
    assert main([*run, "--out", str(tmp_path / "a.npz")]) == 0
    assert main([*QUICK, "--process", "vp", "--field", "learned", "--weights", str(out),
                 "--schedule", "linear", "--out", str(tmp_path / "b.npz")]) == 2  # fmt: skip


def test_what_the_page_says_of_the_command_line_is_true():
    """The capped-run notice names the command line's real limit."""
    from app.session.state import MAX_PARTICLE_FRAMES, FlowState

    state = FlowState(steps=1000, particles=20_000)
    config = state.config()
    assert config.particles * (config.steps + 1) <= MAX_PARTICLE_FRAMES

    class Run:
        warnings, meta = (), "{}"

    Run.config = config
    text = state.run_notice(Run())
    assert f"up to {MAX_PARTICLES:,}" in text and "no cap" not in text


@pytest.mark.parametrize("threads", ["0", "100000"])
def test_train_threads_out_of_range_are_refused_before_training(tmp_path, capsys, threads):
    assert main([*TRAIN, "--threads", threads, "--out", str(tmp_path / "w")]) == 2
    assert "--threads must be in 1..256" in one_line(capsys)


def test_density_frames_past_the_memory_bound_are_refused_before_the_run(tmp_path, capsys):
    """1,000 steps at 512² made 1 GB density stacks and took 7.5 GB: refused in one line."""
    out = tmp_path / "big.npz"
    assert main([*QUICK[:1], "--steps", "1000", "--particles", "100", "--resolution", "512",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "lower the resolution or the steps" in one_line(capsys)
    assert not out.exists()
    from models.run.config import MAX_GRID_CELLS, RunConfig

    RunConfig(steps=1000, resolution=256).validate()  # the edge itself passes
    assert 1001 * 256**2 == MAX_GRID_CELLS


def test_a_gif_whose_frames_would_not_fit_in_memory_is_refused(tmp_path, capsys):
    out = tmp_path / "g.gif"
    assert main(["export", "--size", "2048", "--steps", "100", "--particles", "100",
                 "--resolution", "16", "--out", str(out)]) == 2  # fmt: skip
    assert "GIF" in one_line(capsys)
    assert not out.exists()

"""``flowscope train`` and ``flowscope sample --field learned``: files written, files refused."""

import json
import pickle

import numpy as np
import pytest
import torch

from app.cli import main
from models.learned.checkpoint import load, pretrained_path

FAST = ["--steps", "30", "--batch", "64", "--seed", "1"]
SAMPLE = ["sample", "--steps", "10", "--particles", "200", "--resolution", "16"]


@pytest.fixture(autouse=True)
def keep_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("w") / "my weights"  # any name, no extension needed
    assert main(["train", "--process", "vp", "--dataset", "moons", *FAST, "--out", str(out)]) == 0
    return out


def test_train_writes_exactly_the_named_file_with_its_manifest(weights):
    assert sorted(p.name for p in weights.parent.iterdir()) == ["my weights"]
    _, arch, manifest = load(weights)
    assert arch.process == "vp" and arch.predicts == "eps"
    assert manifest["dataset"] == "moons" and manifest["steps_done"] == 30
    assert manifest["config"]["seed"] == 1 and np.isfinite(manifest["final_loss"])


def test_train_shows_one_progress_line_and_the_cpu_notice(tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    argv = ["train", "--process", "fm", "--dataset", "8gaussians", *FAST, "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    if not torch.cuda.is_available():
        assert "no CUDA device, training on the CPU" in err
    bar = err.rstrip("\n").split("\n")[-1]  # one line, redrawn in place with carriage returns
    assert bar.startswith("\r") and bar.split("\r")[-1].startswith("train fm 8gaussians (cpu)")
    assert "30/30" in bar and "loss" in bar


def test_sample_with_learned_weights(weights, tmp_path):
    out = tmp_path / "run.npz"
    args = [*SAMPLE, "--process", "vp", "--dataset", "moons", "--out", str(out)]
    assert main([*args, "--field", "learned", "--weights", str(weights)]) == 0
    with np.load(out, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        assert f["trajectories"].shape == (11, 200, 2) and np.isfinite(f["trajectories"]).all()
        assert set(np.unique(f["labels"])) <= {0, 1}  # coloured by the exact field's moons
    assert meta["field"] == "learned" and meta["weights"] == str(weights)


@pytest.mark.parametrize("process", ["fm", "vp"])
def test_sample_learned_defaults_to_the_shipped_model(tmp_path, process):
    out = tmp_path / "run.npz"
    args = [*SAMPLE, "--process", process, "--dataset", "circles", "--field", "learned"]
    assert main([*args, "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
    assert meta["weights"] == pretrained_path("circles", process)


def _refused(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("flowscope: error: ") and match in err
    return err


def test_bad_weights_exit_2_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 5)
    out = tmp_path / "run.npz"
    base = [*SAMPLE, "--dataset", "moons", "--field", "learned", "--out", str(out)]
    _refused(capsys, [*base, "--weights", str(bad)], "truncated")
    _refused(capsys, [*base, "--weights", str(tmp_path / "absent")], "no such weights file")
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"w": 1}, protocol=4))
    _refused(capsys, [*base, "--weights", str(evil)], "pickle")
    assert not out.exists()


def test_weights_for_another_process_or_schedule_refused(weights, tmp_path, capsys):
    out = tmp_path / "run.npz"
    base = [*SAMPLE, "--dataset", "moons", "--field", "learned", "--weights", str(weights)]
    _refused(capsys, [*base, "--process", "fm", "--out", str(out)], "trained for process vp")
    cosine = [*base, "--process", "vp", "--schedule", "cosine", "--out", str(out)]
    _refused(capsys, cosine, "linear schedule")
    _refused(capsys, [*SAMPLE, "--weights", str(weights), "--out", str(out)], "--field learned")
    assert not out.exists()


def test_train_refuses_bad_settings(tmp_path, capsys):
    out = tmp_path / "w"
    _refused(capsys, ["train", "--steps", "0", "--out", str(out)], "steps")
    _refused(capsys, ["train", "--lr", "-1", "--out", str(out)], "lr")
    assert not out.exists()

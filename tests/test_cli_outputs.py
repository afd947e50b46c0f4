"""Where the command line writes: only a regular file or a new name, never over a device, a
FIFO or a socket (a rename would replace them), a link followed to its file, and every
destination checked before any work (training included).

Special files are made in a temporary folder (``mknod``, ``mkfifo``, a bound socket), never the
machine's own devices.
"""

from __future__ import annotations

import os
import stat
import threading
import time

import numpy as np
import pytest

from app.cli import main
from app.output import atomic_output
from tests.nodes import special_file

QUICK = ["sample", "--steps", "3", "--particles", "100", "--resolution", "16"]
TRAIN = ["train", "--steps", "2", "--batch", "8"]
EXPORT = ["export", "--format", "npz", "--steps", "3", "--particles", "100",
          "--resolution", "16"]  # fmt: skip


SPECIAL = {"character device": "null", "FIFO": "fifo", "socket": "socket"}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("command", [QUICK, EXPORT, TRAIN], ids=["sample", "export", "train"])
@pytest.mark.parametrize("kind", list(SPECIAL))
def test_special_files_are_refused_and_left_as_they_are(tmp_path, capsys, command, kind):
    target = special_file(tmp_path, SPECIAL[kind])
    before = os.lstat(target)
    assert main([*command, "--out", str(target)]) == 2
    assert "not a regular file" in _one_line(capsys)
    after = os.lstat(target)
    assert stat.S_IFMT(after.st_mode) == stat.S_IFMT(before.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name], "no temporary file left"


def test_a_link_is_followed_to_its_file_and_stays_a_link(tmp_path, capsys):
    real = tmp_path / "real.npz"
    real.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    assert main([*QUICK, "--out", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    with np.load(real) as f:
        assert f["trajectories"].shape == (4, 100, 2)


def test_a_link_to_a_device_is_refused(tmp_path, capsys):
    device = special_file(tmp_path, "null")
    link = tmp_path / "link"
    link.symlink_to(device)
    assert main([*QUICK, "--out", str(link)]) == 2
    assert "character device" in _one_line(capsys)
    assert stat.S_ISCHR(os.lstat(device).st_mode) and link.is_symlink()


def test_a_dangling_link_is_refused(tmp_path, capsys):
    link = tmp_path / "link.npz"
    link.symlink_to(tmp_path / "nowhere" / "x.npz")
    assert main([*QUICK, "--out", str(link)]) == 2
    assert "link to nothing" in _one_line(capsys)
    assert link.is_symlink()


def test_a_fifo_made_during_the_run_is_not_renamed_over(tmp_path):
    """Checked again just before the rename: what appeared at the path meanwhile is kept."""
    out = tmp_path / "run.npz"
    with pytest.raises(ValueError, match="FIFO"):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"data")
            os.mkfifo(out)
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.npz"]


def test_no_open_of_a_fifo_blocks_the_check(tmp_path, capsys):
    """A FIFO with no writer would block an open() for ever: the check never opens it."""
    fifo = special_file(tmp_path, "fifo")
    codes = []
    worker = threading.Thread(target=lambda: codes.append(main([*QUICK, "--out", str(fifo)])),
                              daemon=True)  # fmt: skip
    worker.start()
    worker.join(60)
    assert codes == [2]


@pytest.mark.parametrize("make, words", [
    (lambda d: str(d / "missing" / "w.safetensors"), "does not exist"),
    (lambda d: str(d), "is a folder"),
])  # fmt: skip
def test_train_checks_out_before_training(tmp_path, capsys, make, words, monkeypatch):
    from models.learned import training

    started = []
    monkeypatch.setattr(training.Trainer, "run", lambda self, **k: started.append(1))
    start = time.perf_counter()
    assert main([*TRAIN, "--out", make(tmp_path)]) == 2
    assert words in _one_line(capsys)
    assert not started, "training ran before the destination was checked"
    assert time.perf_counter() - start < 30


def test_checkpoint_save_never_replaces_a_special_file(tmp_path):
    from models.learned.checkpoint import CheckpointError, save
    from models.learned.network import build_network
    from models.learned.training import TrainConfig

    arch = TrainConfig().architecture()
    fifo = special_file(tmp_path, "fifo")
    with pytest.raises(CheckpointError, match="not a regular file"):
        save(fifo, build_network(arch, 0), arch)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_sigterm_during_an_export_leaves_no_temporary_file(tmp_path):
    """Killed politely (``timeout``'s SIGTERM) mid-write: like Ctrl-C, nothing is left."""
    import subprocess
    import sys

    out = tmp_path / "term.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "app", "export", "--steps", "400",
                             "--particles", "3000", "--size", "512", "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".term") for p in
                                             tmp_path.iterdir()):  # fmt: skip
        time.sleep(0.1)
    proc.terminate()
    assert proc.wait(60) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == []

"""Weights files as an attacker hands them over: only regular files are read (a device never
ends, a FIFO blocks), a safetensors header whose length starts with the pickle byte still loads,
and a manifest that is not a JSON object is one line. Special files are made in a temporary
folder, never the machine's own."""

from __future__ import annotations

import json
import struct
import threading

import pytest
from safetensors.torch import save as st_save

from app.cli import main
from models.learned.checkpoint import CheckpointError, load, parse, to_bytes
from models.learned.network import build_network
from models.learned.training import TrainConfig
from tests.nodes import special_file

QUICK = ["sample", "--steps", "3", "--particles", "100", "--resolution", "16",
         "--field", "learned"]  # fmt: skip


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_weights_that_are_not_a_regular_file_are_refused(tmp_path, capsys, kind):
    node = special_file(tmp_path, kind)
    codes: list[int] = []
    out = str(tmp_path / "o.npz")
    worker = threading.Thread(target=lambda: codes.append(
        main([*QUICK, "--weights", str(node), "--out", out])), daemon=True)  # fmt: skip
    worker.start()
    worker.join(60)
    assert codes == [2], "blocked, or read without end"
    assert "not a regular file" in one_line(capsys)


def _weights(manifest) -> bytes:
    arch = TrainConfig().architecture()
    return to_bytes(build_network(arch, 0), arch, manifest)


def test_a_header_length_starting_with_the_pickle_byte_still_loads(tmp_path):
    """Grow the manifest until the header's length is 128 modulo 256: its first byte is 0x80."""
    for pad in range(0, 600, 1):
        data = _weights({"note": "x" * pad})
        if data[0] == 0x80:
            break
    else:
        pytest.fail("no header length of 128 modulo 256 found")
    assert struct.unpack("<Q", data[:8])[0] % 256 == 128
    path = tmp_path / "w.safetensors"
    path.write_bytes(data)
    _, _, manifest = load(path)
    assert manifest["note"] == "x" * pad


def test_a_real_pickle_is_still_refused():
    import pickle

    with pytest.raises(CheckpointError, match="pickle"):
        parse(pickle.dumps({"a": 1}, protocol=4), "p.pt")


@pytest.mark.parametrize("manifest", [json.dumps([1]), "not json"])
def test_a_manifest_that_is_not_an_object_is_one_line(tmp_path, capsys, manifest):
    arch = TrainConfig().architecture()
    net = build_network(arch, 0)
    good = _weights({})
    _, meta = parse(good)
    path = tmp_path / "list.safetensors"
    listed = {**meta, "manifest": manifest}
    path.write_bytes(st_save(dict(net.state_dict()), metadata=listed))
    with pytest.raises(CheckpointError, match="manifest"):
        load(path)
    assert main([*QUICK, "--weights", str(path), "--out", str(tmp_path / "o.npz")]) == 2
    assert "manifest" in one_line(capsys)

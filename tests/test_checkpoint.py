"""Checkpoints: bit-for-bit round trips; bad files refused in one line, pickles never run."""

import io
import json
import os
import pickle
import struct

import pytest
import torch
from safetensors.torch import save as st_save

from models.learned.checkpoint import CheckpointError, load, save, to_bytes
from models.learned.network import Architecture, build_network

ARCH = Architecture(width=16, depth=2, n_freq=4, predicts="eps", process="vp")


@pytest.fixture
def good(tmp_path):
    net = build_network(ARCH, seed=3)
    path = tmp_path / "any name.weights"  # any file name is fine
    save(path, net, ARCH, {"dataset": "moons", "steps": 7})
    return net, path


def _assert_one_line(exc, path):
    message = str(exc.value)
    assert "\n" not in message and str(path) in message
    assert isinstance(exc.value, ValueError)


def test_round_trip_is_bit_for_bit(good):
    net, path = good
    field, arch, manifest = load(path)
    assert arch == ARCH and manifest == {"dataset": "moons", "steps": 7}
    for name, value in net.state_dict().items():
        assert torch.equal(field.net.state_dict()[name], value), name
    x = torch.randn(32, 2)
    tt = torch.full((32,), 0.4)
    assert torch.equal(field.net(x, tt), net(x, tt))
    assert field.predicts == "eps" and field.path.name == "vp"


def test_save_writes_exactly_the_name_and_leaves_no_temporary(good, tmp_path):
    assert sorted(os.listdir(tmp_path)) == ["any name.weights"]


def test_missing_file_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such weights file") as exc:
        load(tmp_path / "nope.safetensors")
    _assert_one_line(exc, tmp_path / "nope.safetensors")


def test_folder_refused(tmp_path):
    with pytest.raises(CheckpointError, match="folder"):
        load(tmp_path)


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1])
def test_truncated_file_refused(good, keep):
    _, path = good
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(CheckpointError) as exc:
        load(path)
    _assert_one_line(exc, path)


def test_flipped_weight_bit_refused_as_corrupt(good):
    _, path = good
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01  # inside the tensor bytes, which safetensors does not check
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt") as exc:
        load(path)
    _assert_one_line(exc, path)


def test_garbage_header_refused(good):
    _, path = good
    data = bytearray(path.read_bytes())
    data[8:20] = b"not json!!!!"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="not a valid safetensors") as exc:
        load(path)
    _assert_one_line(exc, path)


def test_random_bytes_refused(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(struct.pack("<Q", 40) + os.urandom(40))
    with pytest.raises(CheckpointError):
        load(path)


def test_mismatched_architecture_refused(tmp_path):
    """Weights of a 16-wide network under a header that claims 32 wide."""
    net = build_network(ARCH, seed=0)
    path = tmp_path / "w.safetensors"
    data = to_bytes(net, ARCH)
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    arch = json.loads(header["__metadata__"]["architecture"])
    arch["width"] = 32
    header["__metadata__"]["architecture"] = json.dumps(arch)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + data[8 + n :])
    with pytest.raises(CheckpointError, match="do not match their architecture") as exc:
        load(path)
    _assert_one_line(exc, path)


def test_foreign_safetensors_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    path.write_bytes(st_save({"w": torch.zeros(3)}))
    with pytest.raises(CheckpointError, match="not a flowscope field checkpoint"):
        load(path)


def test_non_finite_weights_refused(tmp_path):
    net = build_network(ARCH, seed=0)
    with torch.no_grad():
        net.net[0].weight[0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    save(path, net, ARCH)
    with pytest.raises(CheckpointError, match="NaN"):
        load(path)


class _Payload:
    """Unpickling this would create a file: the proof that a pickle ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_pickle_refused_and_its_payload_never_runs(tmp_path, how):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.safetensors"
    if how == "pickle":
        path.write_bytes(pickle.dumps({"w": _Payload(str(marker))}, protocol=2))
    else:
        buf = io.BytesIO()
        torch.save({"w": _Payload(str(marker))}, buf)
        path.write_bytes(buf.getvalue())
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="pickle") as exc:
        load(path)
    _assert_one_line(exc, path)
    assert not marker.exists()


def test_saved_file_has_the_usual_permissions(good):
    _, path = good
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask

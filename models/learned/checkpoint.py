"""Checkpoints of learned fields as safetensors: weights, architecture and manifest, never pickles.

A checkpoint is a safetensors file whose string metadata holds ``format`` (``flowscope-field``),
``version``, ``architecture`` (JSON of :class:`~models.learned.network.Architecture`, with
``n_classes`` for a class-conditional network; files without it are unconditional),
``manifest`` (JSON:
what was trained, how long, how well) and ``sha256`` (of the tensor bytes in name order, because
safetensors itself has no checksum: a flipped bit in the weights would load silently).

Reading refuses, with one line (:class:`CheckpointError`, a ValueError): a missing file, a
pickle or ``torch.save`` archive (recognised by its first bytes and never unpickled), a file too
short or too large, a malformed header, a checksum mismatch, tensors that do not fit the
architecture, and non-finite weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import uuid

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from models.learned.network import Architecture, FieldMLP, LearnedField

FORMAT = "flowscope-field"
VERSION = "1"
MAX_BYTES = 64 * 2**20  # a 2D field is well under 1 MB; refuse anything absurd before reading it
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol ≥ 2, zip (torch.save) archives


class CheckpointError(ValueError):
    """A weights file that cannot be used; the message is one line naming the file."""

    exit_code = 2


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def to_bytes(net: FieldMLP, arch: Architecture, manifest: dict | None = None) -> bytes:
    """The safetensors bytes of a network, its architecture and manifest."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": json.dumps(arch.to_dict(), sort_keys=True),
        "manifest": json.dumps(manifest or {}, sort_keys=True),
        "sha256": _digest(tensors),
    }
    return st_save(tensors, metadata=meta)


def save(path: str | os.PathLike, net: FieldMLP, arch: Architecture, manifest=None) -> None:
    """Write a checkpoint to exactly ``path`` (any name), atomically: a temporary file in the
    same folder, then ``os.replace``, so a crash never leaves a half-written file there.
    Anything at ``path`` that is not a regular file (a device, a FIFO) is refused: a rename
    would replace it."""
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        raise CheckpointError(f"{os.fspath(path)}: not a regular file; give the name of a file")
    data = to_bytes(net, arch, manifest)
    folder = os.path.dirname(os.path.abspath(path))
    # a fresh name opened exclusively (not mkstemp: its 0600 mode would stick to the result)
    tmp = os.path.join(folder, f".flowscope-{os.getpid()}-{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read(path: str | os.PathLike) -> bytes:
    """The file's bytes: only a regular file (a device has no size and never ends, a FIFO blocks
    the open), and at most ``MAX_BYTES`` of it."""
    name = os.fspath(path)
    try:
        if not stat.S_ISREG(os.stat(name).st_mode):
            raise CheckpointError(f"{name}: not a regular file (a device, a FIFO or a folder)")
        with open(name, "rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise CheckpointError(f"{name}: larger than {MAX_BYTES // 2**20} MB, too large for a "
                                  "flowscope checkpoint")  # fmt: skip
        return data
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such weights file") from None
    except IsADirectoryError:
        raise CheckpointError(f"{name}: is a folder, not a weights file") from None
    except OSError as exc:
        raise CheckpointError(f"{name}: cannot read ({exc.strerror or exc})") from None


def parse(data: bytes, name: str = "weights") -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of checkpoint bytes; anything unusable raises CheckpointError."""
    # a safetensors file starts with its header's length (8 bytes, little-endian), then "{": its
    # first byte is 0x80, a pickle's, whenever that length is 128 modulo 256
    if data.startswith(PICKLE_MAGIC) and data[8:9] != b"{":
        raise CheckpointError(
            f"{name}: looks like a pickle or torch.save file; only safetensors checkpoints are "
            "read (pickles can run code and are never loaded)"
        )
    if len(data) < 8:
        raise CheckpointError(f"{name}: truncated ({len(data)} bytes), not a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise CheckpointError(f"{name}: truncated or not a safetensors file (header overruns)")
    try:
        header = json.loads(data[8 : 8 + header_len])
        meta = header.get("__metadata__") or {}
        tensors = st_load(data)
    except Exception as exc:  # safetensors raises its own error types for every bad layout
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{name}: not a valid safetensors file ({first})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{name}: a safetensors file, but not a flowscope field checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{name}: checkpoint version {meta.get('version')!r} is unsupported")
    if meta.get("sha256") != _digest(tensors):
        raise CheckpointError(f"{name}: corrupt (the weights do not match their checksum)")
    return tensors, meta


def load(path: str | os.PathLike, labeler=None) -> tuple[LearnedField, Architecture, dict]:
    """Read a checkpoint: (its learned field on the CPU, its architecture, its manifest)."""
    name = os.fspath(path)
    tensors, meta = parse(_read(name), name)
    try:
        arch = Architecture.from_dict(json.loads(meta["architecture"]))
        net = FieldMLP(arch)
        net.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        message = f"{name}: weights do not match their architecture ({first})"
        raise CheckpointError(message) from None
    try:
        manifest = json.loads(meta.get("manifest", "{}"))
    except ValueError:
        raise CheckpointError(f"{name}: its manifest is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{name}: its manifest is not a JSON object")
    if not all(bool(torch.isfinite(t).all()) for t in tensors.values()):
        raise CheckpointError(f"{name}: contains NaN or infinite weights")
    net.requires_grad_(False).eval()
    return LearnedField.from_network(net, arch, labeler), arch, manifest


# the repository's assets/weights: models/learned/ is two folders below the root
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIGHTS_DIR = os.path.join(ROOT, "assets", "weights")


def pretrained_key(dataset: str, process: str, conditional: bool = False) -> str:
    """The shipped model's name: its file's stem and its key in ``manifest.json``."""
    return f"{dataset}-{process}" + ("-cond" if conditional else "")


def pretrained_path(dataset: str, process: str, conditional: bool = False) -> str:
    """Where the shipped model of a built-in data set and process lives (it may be absent);
    ``conditional``: its class-conditional model (``…-cond.safetensors``)."""
    return os.path.join(WEIGHTS_DIR, pretrained_key(dataset, process, conditional) + ".safetensors")


def check_matches(
    arch: Architecture,
    process: str,
    schedule: str,
    beta_min: float,
    beta_max: float,
    name: str = "weights",
) -> None:
    """Refuse (CheckpointError) weights trained for another process or VP schedule."""
    if arch.process != process:
        raise CheckpointError(
            f"{name}: trained for process {arch.process}, but this run uses {process}"
        )
    if process == "vp" and (arch.schedule, arch.beta_min, arch.beta_max) != (
        schedule,
        beta_min,
        beta_max,
    ):
        raise CheckpointError(
            f"{name}: trained for the {arch.schedule} schedule (beta {arch.beta_min:g}.."
            f"{arch.beta_max:g}), but this run uses {schedule} (beta {beta_min:g}..{beta_max:g})"
        )

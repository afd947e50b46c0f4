"""Output files (``sample --out``, ``export --out``, the app's exports): checked before any
work, written whole or not at all.

``--out`` is the exact path written: no suffix is added (numpy's ``savez`` appends ``.npz`` to
a name without it, so ``--out x.txt`` once wrote ``x.txt.npz`` and reported ``x.txt``). The
destination is checked, with a real file created in its folder, *before* computing, so a bad
path fails in a second rather than after a long run; a file appears at its destination only
once complete (a temporary file in the same folder, renamed over it), so a failure or a
cancel leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def check_output(path: str | os.PathLike) -> Path:
    """The destination as a Path, or ValueError (one line) if it cannot be written.

    Checked before computing: the folder must exist and take a new file (tried), the path must
    not be a folder, and an existing file must be replaceable.
    """
    out = Path(path).expanduser()
    if not str(path).strip():
        raise ValueError("the output path is empty")
    if str(path).endswith(("/", os.sep)):
        raise ValueError(f"{path} names a folder; give a file name")
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give a file name")
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ValueError(f"cannot write {out}: the folder {folder} does not exist")
    try:  # a real file, not os.access: root passes os.access on read-only file systems
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(
            f"cannot write {out}: the folder {folder} is not writable ({reason})"
        ) from None
    if out.exists() and not os.access(out, os.W_OK):
        raise ValueError(f"cannot write {out}: the file exists and is read-only")
    return out


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    ``suffix`` ends the temporary name (writers such as ffmpeg pick the format from it). On any
    exception, the cancel of an export included, the temporary file is removed and nothing is
    left at ``path``.
    """
    out = check_output(path)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=f".tmp{suffix}")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # as open() would have made it (mkstemp: 0600)
        os.replace(tmp_path, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

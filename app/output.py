"""Output files (``sample --out``, ``export --out``, the app's exports): checked before any
work, written whole or not at all.

``--out`` is the exact path written: no suffix is added (numpy's ``savez`` appends ``.npz`` to
a name without it, so ``--out x.txt`` once wrote ``x.txt.npz`` and reported ``x.txt``). The
destination is checked, with a real file created in its folder, *before* computing, so a bad
path fails in a second rather than after a long run; a file appears at its destination only
once complete (a temporary file in the same folder, renamed over it), so a failure or a
cancel leaves no partial file behind.

Only a regular file or a new name is ever written. A rename replaces whatever is at the path, so
``--out /dev/null`` once turned the null device into a plain file: a device, a FIFO, a socket or
anything else that is not a regular file is refused, before the run and again just before the
rename. A symbolic link is followed to the file it names (as a shell's ``>`` would), and that
file is replaced, not the link.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


def check_output(path: str | os.PathLike) -> Path:
    """The destination as a Path, or ValueError (one line) if it cannot be written.

    Checked before computing: the folder must exist and take a new file (tried), the path must
    be new or a regular file (a link is followed to its file), and an existing file must be
    replaceable. The Path returned is the one to replace: a link's target, not the link.
    """
    if not str(path).strip():
        raise ValueError("the output path is empty")
    if str(path).endswith(("/", os.sep)):
        raise ValueError(f"{path} names a folder; give a file name")
    out = Path(path).expanduser()
    if out.is_symlink():
        if not out.exists():
            raise ValueError(f"cannot write {out}: it is a link to nothing ({os.readlink(out)})")
        out = Path(os.path.realpath(out))
    if out.is_dir():
        raise ValueError(f"{out} is a folder; give a file name")
    _refuse_special(out)
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


def _refuse_special(out: Path) -> None:
    """ValueError if ``out`` exists and is not a regular file (lstat: never opened, so a FIFO
    cannot block)."""
    try:
        mode = os.lstat(out).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ValueError(f"cannot write {out} ({exc.strerror or type(exc).__name__})") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"cannot write {out}: it is {_kind(mode)}, not a regular file; "
                         "give the name of a file")  # fmt: skip


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISLNK, "a link"), (stat.S_ISDIR, "a folder"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "a special file")


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
        _refuse_special(out)  # again: something else may have appeared there during the run
        os.replace(tmp_path, out)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

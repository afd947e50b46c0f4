"""Output files of the command line: checked before any work, written whole or not at all.

``--out`` is the exact path written: no suffix is added (numpy's ``savez`` would append
``.npz`` to a name without it, so ``--out x.txt`` wrote ``x.txt.npz`` and reported ``x.txt``).
The path is checked, and a temporary file opened beside it, *before* computing, so a bad path
fails in a second rather than after a long run; the result is written to the temporary file and
renamed over the path, so a failure never leaves a partial file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputFile:
    """A file to be written at ``path``: ``open`` checks it, ``commit`` moves it in place.

    Usage::

        out = OutputFile(args.out).open()      # ValueError / OSError: one line, exit 2
        try:
            write(out.handle)                  # a binary file object
            out.commit()
        finally:
            out.discard()                      # no-op after commit
    """

    def __init__(self, path: str):
        self.path = path
        self.handle = None
        self._temp: str | None = None

    def open(self) -> OutputFile:
        if not self.path or not self.path.strip():
            raise ValueError("--out needs a file name, got an empty one")
        target = Path(self.path)
        if self.path.endswith(("/", os.sep)) or target.is_dir():
            raise ValueError(f"--out {self.path}: is a directory; give a file name")
        parent = target.parent
        if not parent.is_dir():
            raise ValueError(f"--out {self.path}: folder {str(parent)!r} does not exist")
        try:
            fd, self._temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                              dir=parent)  # fmt: skip
        except OSError as exc:
            raise OSError(f"--out {self.path}: cannot write in {str(parent)!r} "
                          f"({exc.strerror or exc})") from None  # fmt: skip
        self.handle = os.fdopen(fd, "wb")
        return self

    def commit(self) -> str:
        """Close the temporary file and rename it to the path; returns the path written."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._temp, 0o666 & ~umask)  # as a plain open() would have made it (mkstemp: 600)
        os.replace(self._temp, self.path)
        self._temp = None
        return self.path

    def discard(self) -> None:
        """Remove the temporary file if it was not committed."""
        if self.handle is not None and not self.handle.closed:
            self.handle.close()
        if self._temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._temp)
            self._temp = None

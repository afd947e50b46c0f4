"""Special files for the tests of what flowscope refuses to read or write, made in a test's own
temporary folder: never the machine's own devices."""

from __future__ import annotations

import os
import socket
import stat

import pytest

DEVICES = {"null": (1, 3), "zero": (1, 5)}  # the numbers of /dev/null and /dev/zero


def special_file(folder, kind: str):
    """A FIFO ("fifo"), a bound UNIX socket ("socket"), or a character device node like
    /dev/null or /dev/zero ("null", "zero") in ``folder``; skips the test where device nodes
    cannot be made (not root)."""
    path = folder / kind
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))
    else:
        try:
            os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(*DEVICES[kind]))
        except OSError as exc:
            pytest.skip(f"cannot make a device node here ({exc})")
    return path

"""Ctrl-C and SIGTERM end a command as KeyboardInterrupt, raised where Python can carry it.

Both signals end a command the same way, so that a half-written output's temporary file is
removed and the exit status is 130 (SIGTERM's default action would have left the file).

Python runs a signal's handler between any two bytecodes of the main thread, and at three kinds
of place an exception raised there does not travel as one:

- inside an import, an extension module's initialisation turns it into ``ImportError:
  initialization failed`` (a traceback and exit status 1);
- inside code run by ``exec`` or ``eval`` of a string (dataclasses and named tuples make their
  methods so when their module is imported), CPython records the interrupt as unhandled even
  when it is caught, and a ``python -m`` process then ends by SIGINT (status -2) whatever it
  returned;
- inside the callbacks that run around a fork (``subprocess`` starting ffmpeg with a
  ``preexec_fn``), the exception is printed and dropped, and the run goes on to its end.

Each was seen when a test stopped an export at a random moment. There the handler only notes
the request and looks again RETRY_SECONDS later (SIGALRM), until the main thread is elsewhere:
a stop is deferred by the length of the import or fork, never lost. Each new signal raises
again (a second Ctrl-C stops what a command does on the first: train saves its weights).
An exception dropped elsewhere (by an object's ``__del__``) is not raised again: the run then
ends as if not stopped.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from types import FrameType

RETRY_SECONDS = 0.02

_FORK_CALLERS = (subprocess.Popen._execute_child.__code__,)


def carries_an_exception(frame: FrameType | None) -> bool:
    """False while ``frame`` or any frame that called it is an import, string-``exec``'d code or
    a process start (see the module's docstring); True elsewhere."""
    while frame is not None:
        code = frame.f_code
        if (code.co_filename.startswith("<frozen importlib") or code.co_filename == "<string>"
                or code in _FORK_CALLERS):  # fmt: skip
            return False
        frame = frame.f_back
    return True


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise KeyboardInterrupt in the main thread at the
    first point that carries it. SIGINT is left alone where it was ignored (a background job's),
    and the previous handlers come back afterwards.

    Does nothing in another thread: signals reach the main thread only (tests call the command
    line's ``main`` from others).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    deferred = False

    def interrupt(signum, frame):
        nonlocal deferred
        if signum == signal.SIGALRM and not deferred:
            return  # not ours to act on
        if not carries_an_exception(frame):
            deferred = True
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)  # look again (SIGALRM)
            return
        deferred = False
        raise KeyboardInterrupt

    signums = [signal.SIGTERM, signal.SIGALRM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signums.append(signal.SIGINT)
    previous = {signum: signal.signal(signum, interrupt) for signum in signums}
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # disarmed before SIGALRM's handler goes
        for signum, handler in previous.items():
            signal.signal(signum, handler)

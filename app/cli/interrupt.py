"""Ctrl-C and SIGTERM end a command as KeyboardInterrupt, raised where Python can carry it.

Both signals end a command the same way, so that a half-written output's temporary file is
removed and the exit status is 130 (SIGTERM's default action would have left the file).

Python runs a signal's handler between any two bytecodes of the main thread, and at three kinds
of place an exception raised there does not travel as one:

- inside an import, an extension module's initialisation turns it into ``ImportError:
  initialization failed`` (a traceback and exit status 1);
- inside the top level of code run by ``exec`` or ``eval`` of a string (dataclasses and named
  tuples run such code to make their methods), CPython records an interrupt that leaves it as
  unhandled even when it is caught further out, and a ``python -m`` process then ends by
  SIGINT (status -2) whatever it returned;
- inside the callbacks that run around a fork (``subprocess`` starting ffmpeg with a
  ``preexec_fn``), and in finalizers (``__del__``, ``weakref.finalize``), the exception is
  printed and dropped, and the run goes on to its end.

The import, the exec'd code and the fork's callbacks were each seen when a test stopped an
export at a random moment. In all of these places the handler only notes the request and
looks again RETRY_SECONDS later (SIGALRM), until the main thread is elsewhere: a stop is
deferred by the length of the import or fork, and one still noted when the block ends is
raised then. Each new signal raises again (a second Ctrl-C stops what a command does on the
first: train saves its weights). In a fork's child (a ``preexec_fn`` before exec) the handler
raises at once: a retry's timer would outlive the exec. Not covered: a direct ``os.fork``'s
callbacks (``serve --num-procs`` at its start), and other callbacks from C that drop
exceptions; the run then goes on as if not stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import weakref
from types import FrameType

RETRY_SECONDS = 0.02

# Frames that take an exception raised in them, or below them, elsewhere than their caller
_FORK_CALLERS = {subprocess.Popen._execute_child.__code__}
_FINALIZERS = {weakref.finalize.__call__.__code__}  # and any __del__ (by name)


def carries_an_exception(frame: FrameType | None, outermost: FrameType | None = None) -> bool:
    """False while ``frame``, or a frame that called it short of ``outermost``, is an import,
    the top level of string-``exec``'d code or a process start (see the module's docstring);
    True elsewhere. ``outermost`` (the frame that catches the interrupt) and those below it are
    not looked at, since the exception does not leave it: ``python -c`` runs its whole command
    as string-exec'd code."""
    while frame is not None and frame is not outermost:
        code = frame.f_code
        if (code.co_filename.startswith("<frozen importlib") or code in _FORK_CALLERS
                or code in _FINALIZERS or code.co_name == "__del__"
                or (code.co_filename == "<string>" and code.co_name == "<module>")):  # fmt: skip
            return False
        frame = frame.f_back
    return True


def signals_as_interrupt() -> _SignalsAsInterrupt:
    """A block within which SIGTERM and SIGINT raise KeyboardInterrupt in the main thread, at
    the first point that carries it (a stop that arrives as the block ends is raised as it
    ends). SIGINT is left alone where it was ignored (a background job's), and the previous
    handlers come back afterwards. SIGALRM and the real-time interval timer are the block's.

    To be entered by a ``with`` statement in the frame that catches the KeyboardInterrupt
    (``app.cli.main``): frames below that one are not looked at. Does nothing in another
    thread: signals reach the main thread only (tests call ``main`` from others).
    """
    return _SignalsAsInterrupt()


class _SignalsAsInterrupt:
    def __init__(self) -> None:
        self.outermost: FrameType | None = None  # the frame that entered the block
        self.pid = os.getpid()
        self.previous: dict[int, object] = {}
        self.deferred = False  # a stop noted, not yet raised
        self.ready = False  # every handler in place: until then a signal is only noted
        self.closing = False

    def __enter__(self) -> _SignalsAsInterrupt:
        if threading.current_thread() is not threading.main_thread():
            return self
        self.outermost = sys._getframe(1)
        signums = [signal.SIGTERM, signal.SIGALRM]
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signums.append(signal.SIGINT)
        try:  # each signal.signal first runs the handlers pending: ours only notes, as not ready
            for signum in signums:
                self.previous[signum] = signal.signal(signum, self._interrupt)
        except BaseException:  # a handler that was there before ours raised
            self._restore()
            raise
        self.ready = True
        if self.deferred:  # raised by the retry, within the block (__exit__ then restores)
            signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return self

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self.pid:  # a fork's child before exec (a preexec_fn): raise at once,
            raise KeyboardInterrupt  # an armed timer would outlive the exec and end the program
        if signum == signal.SIGALRM and not self.deferred:
            return  # not ours to act on
        closing = self.closing or (frame is not None and frame.f_code is _EXIT)
        if not self.ready or closing or not carries_an_exception(frame, self.outermost):
            self.deferred = True
            if self.ready and not closing:
                signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)  # look again (SIGALRM)
            return
        self.deferred = False
        raise KeyboardInterrupt

    def __exit__(self, exc_type, _exc, _tb) -> bool:
        # from here (its first bytecode: _EXIT) a signal is only noted, since a raise could
        # skip what follows
        self.closing = True
        self._restore()
        if self.deferred and exc_type is None:
            raise KeyboardInterrupt  # the block ended within a retry of a stop
        return False

    def _restore(self) -> None:
        self.closing = True
        if not self.previous:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)  # disarmed before SIGALRM's handler goes,
        if signal.SIGALRM in self.previous:  # and an alarm already raised but not yet taken
            signal.signal(signal.SIGALRM, signal.SIG_IGN)  # by a thread is discarded
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}
        self.outermost = None


_EXIT = _SignalsAsInterrupt.__exit__.__code__

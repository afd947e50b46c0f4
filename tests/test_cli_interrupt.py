"""Ctrl-C and SIGTERM end a command as KeyboardInterrupt, raised where Python carries it
(``app.cli.interrupt``).

The places where an exception raised by a signal's handler does not travel as one (an import,
string-``exec``'d code, the callbacks around a fork, finalizers) are each hit on purpose: a
script run with ``python -m`` (as the command line is) and with ``python -c`` signals itself
there. Before the deferral, the exec'd case ended the process by SIGINT (-2) although it
returned 130, the import was cut in half, and the fork's callback and the finalizers dropped
the exception, so the script ran to its end (0). Then the block's own edges (its entry, its
exit, a fork's child before exec), in process where no KeyboardInterrupt can reach pytest.
"""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.cli import interrupt
from app.cli.interrupt import carries_an_exception, signals_as_interrupt

ROOT = Path(__file__).resolve().parents[1]

# Each scenario's body signals the process from inside the place named and records that the
# place ran to its end; the harness prints what was reached, and exits 130 on KeyboardInterrupt.
SUPPORT = """\
import os, signal

def stop_me():
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(1000):  # a backward jump: the handler runs here, in this frame
        pass
"""

HARNESS = """\
import os, subprocess, sys, time
from app.cli.interrupt import signals_as_interrupt
from scenario_support import stop_me

reached = []
try:
    with signals_as_interrupt():
{body}
    print("not interrupted", reached)
except KeyboardInterrupt:
    print("interrupted", reached)
    sys.exit(130)
"""

# (body, what it reaches before the stop); a body that goes on sleeps, which the stop cuts short
SCENARIOS = {
    "exec": (
        """
        exec("stop_me()\\nreached.append('exec ran to its end')", globals())
        time.sleep(5)""",
        ["exec ran to its end"],
    ),
    "import": (
        """
        import slow_module
        reached.append("imported " + slow_module.STATE)
        time.sleep(5)""",
        ["imported whole"],
    ),
    "fork": (
        """
        os.register_at_fork(after_in_parent=stop_me)
        subprocess.Popen(["true"], preexec_fn=os.setpgrp)  # as imageio-ffmpeg starts ffmpeg
        reached.append("started")
        time.sleep(5)""",
        ["started"],
    ),
    "__del__": (
        """
        class Dropped:
            def __del__(self):
                stop_me()
                reached.append("__del__ ran to its end")
        Dropped()
        time.sleep(5)""",
        ["__del__ ran to its end"],
    ),
    "finalizer": (
        """
        import weakref
        class Kept: pass
        kept = Kept()
        weakref.finalize(kept, lambda: (stop_me(), reached.append("finalizer ran to its end")))
        del kept
        time.sleep(5)""",
        ["finalizer ran to its end"],
    ),
    # the block's last act: the noted stop is raised as it ends
    "exec, then the block ends": (
        """
        exec("stop_me()\\nreached.append('exec ran to its end')", globals())""",
        ["exec ran to its end"],
    ),
    # elsewhere, at once: string-exec'd code below the block (`python -c`) is not looked at
    "plain code": (
        """
        stop_me()
        reached.append("went on")
        time.sleep(5)""",
        [],
    ),
}


@pytest.mark.parametrize("run_as", ["-m", "-c"])
@pytest.mark.parametrize("place", list(SCENARIOS))
def test_a_signal_in_a_place_that_drops_exceptions_stops_the_run_just_after_it(tmp_path, place,
                                                                               run_as):  # fmt: skip
    body, reached = SCENARIOS[place]
    body = textwrap.indent(textwrap.dedent(body).strip(), " " * 8)
    harness = HARNESS.format(body=body)
    (tmp_path / "scenario.py").write_text(harness)
    (tmp_path / "scenario_support.py").write_text(SUPPORT)
    (tmp_path / "slow_module.py").write_text(
        "from scenario_support import stop_me\nstop_me()\nSTATE = 'whole'\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    start = time.monotonic()
    command = [sys.executable, "-m", "scenario"] if run_as == "-m" else [sys.executable, "-c",
                                                                        harness]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    took = time.monotonic() - start
    assert done.returncode == 130, (done.returncode, done.stdout, done.stderr)
    assert done.stdout.strip() == f"interrupted {reached}", done.stderr
    assert "Exception ignored" not in done.stderr and "Traceback" not in done.stderr
    assert took < 4, "the stop waited for the sleep to end"


def test_in_a_forks_child_before_exec_a_signal_raises_at_once(tmp_path):
    """A child runs a Python ``preexec_fn`` (the class's servers set their parent-death signal
    so) with the parent's handler: there a stop ends the child before exec. Deferred, the
    retry's timer outlived the exec and killed the program it started (SIGALRM, -14)."""
    script = tmp_path / "child.py"
    script.write_text(
        SUPPORT
        + textwrap.dedent("""
        import subprocess
        from app.cli.interrupt import signals_as_interrupt

        with signals_as_interrupt():
            try:
                child = subprocess.Popen(["sleep", "0.5"], preexec_fn=stop_me)
            except subprocess.SubprocessError as exc:
                print("the child stopped before exec:", exc)
            else:
                print("the child ran, and ended with", child.wait())
    """)
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.stdout.strip() == ("the child stopped before exec: Exception occurred in "
                                   "preexec_fn."), (done.stdout, done.stderr)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_signal_while_the_handlers_go_in_stops_the_block_not_its_entry(monkeypatch):
    """Each ``signal.signal`` first runs the handlers already due: a SIGTERM just after the
    first of ours went in used to be raised out of ``__enter__``, leaving the handlers bound."""
    real_signal = signal.signal

    def install(signum, handler):
        old = real_signal(signum, handler)
        if signum == signal.SIGTERM:
            _thread.interrupt_main(signal.SIGTERM)  # as if it arrived now
        return old

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    entered = []
    try:
        with pytest.raises(KeyboardInterrupt):
            monkeypatch.setattr(signal, "signal", install)
            with signals_as_interrupt():
                monkeypatch.setattr(signal, "signal", real_signal)
                entered.append("the block")
                time.sleep(2)  # the retry raises it here, within ~RETRY_SECONDS
        assert entered == ["the block"]
        assert {s: signal.getsignal(s) for s in before} == before
    finally:
        monkeypatch.setattr(signal, "signal", real_signal)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_elsewhere_a_signal_raises_at_once_and_each_new_one_again():
    with signals_as_interrupt():
        for _ in range(2):  # a command that catches the first (train) is stopped by a second
            start = time.monotonic()
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)
            assert time.monotonic() - start < 2


def test_a_stop_noted_as_the_block_ends_is_raised_there_after_the_handlers_come_back(
        monkeypatch):  # fmt: skip
    """The retry still armed when the block ends never fires (SIGALRM's default would end the
    process): here SIGALRM's previous handler would record it. The retry is put off by 10 s,
    so that it cannot fire within the block on a slow machine."""
    monkeypatch.setattr(interrupt, "RETRY_SECONDS", 10.0)
    fired = []
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    previous_alarm = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    try:
        with pytest.raises(KeyboardInterrupt) as raised:
            with signals_as_interrupt():
                handler = signal.getsignal(signal.SIGTERM)
                assert handler == signal.getsignal(signal.SIGINT)
                assert handler == signal.getsignal(signal.SIGALRM)
                frame = eval("sys._getframe()", {"sys": sys})  # a frame of string-eval'd code
                handler(signal.SIGTERM, frame)  # deferred: arms the retry, raises nothing
                assert signal.getitimer(signal.ITIMER_REAL)[0] > 9
        assert raised.traceback[-1].name == "__exit__"
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert fired == []
        assert {s: signal.getsignal(s) for s in before} == before
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)  # should the test fail with the retry armed
        signal.signal(signal.SIGALRM, previous_alarm)


def test_a_stop_within_the_blocks_exit_is_raised_at_its_end():
    """A signal whose handler runs in ``__exit__`` before the handlers are restored: noted,
    with no retry armed, and raised once they are (a frame stands in for __exit__'s own)."""
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with signals_as_interrupt():
            in_exit = SimpleNamespace(f_code=interrupt._EXIT, f_back=None)
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, in_exit)
            reached.append("went on")
            assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert reached == ["went on"]


def test_a_block_that_ends_with_an_error_keeps_it(monkeypatch):
    monkeypatch.setattr(interrupt, "RETRY_SECONDS", 10.0)  # no retry within the test
    with pytest.raises(ValueError), signals_as_interrupt():
        try:
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, eval("sys._getframe()", {"sys": sys}))
        except KeyboardInterrupt:
            pytest.fail("raised in string-eval'd code")
        raise ValueError("the run's own failure")
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_alarm_without_a_deferred_stop_is_not_a_stop():
    with signals_as_interrupt():
        os.kill(os.getpid(), signal.SIGALRM)
        time.sleep(0.05)  # would raise here were it taken for a stop


def test_an_ignored_ctrl_c_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a background job
    try:
        with signals_as_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_which_frames_carry_an_exception(tmp_path, monkeypatch):
    assert carries_an_exception(sys._getframe())
    assert not carries_an_exception(eval("sys._getframe()", {"sys": sys}))
    monkeypatch.syspath_prepend(tmp_path)
    (tmp_path / "frame_in_import.py").write_text(
        "import sys\nfrom app.cli.interrupt import carries_an_exception\n"
        "CARRIES = carries_an_exception(sys._getframe())\n"
    )
    import frame_in_import

    assert frame_in_import.CARRIES is False

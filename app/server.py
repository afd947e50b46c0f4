"""``flowscope serve``: the app on a Bokeh server, on localhost by default."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

import tornado.process

MAX_MESSAGE = 16 * 1024 * 1024
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def default_threads(num_procs: int = 1) -> int:
    """Torch threads for a server whose browser usually runs on the same machine.

    All cores but one: the browser's page needs a core to draw, and a torch thread team with
    more threads than free cores stalls at every barrier (measured on 2 cores while the page
    played: a recompute took 2-3x longer with 2 threads than with 1). Shared among
    ``num_procs`` processes, each of which computes its own runs at the same time.
    """
    return max(1, ((os.cpu_count() or 2) - 1) // num_procs)


def check_options(port: int, threads: int | None, num_procs: int, threaded: bool = False,
                  show: bool = False, origins: list[str] | None = None) -> None:  # fmt: skip
    """Raise ValueError, naming the option, for a bad port, thread or process count, or an
    extra websocket origin Bokeh would refuse (checked by Bokeh's own rule, here: before the
    port is bound, not once the app's server is built)."""
    if not 1 <= port <= 65535:
        raise ValueError(f"--port must be in 1..65535, got {port}")
    if threads is not None and not 1 <= threads <= 256:  # torch crashes far past the cores
        raise ValueError(f"--threads must be in 1..256, got {threads}")
    if not 1 <= num_procs <= 64:
        raise ValueError(f"--num-procs must be in 1..64, got {num_procs}")
    if num_procs > 1 and (threaded or show):
        raise ValueError("--num-procs above 1 serves in the foreground, without --show")
    if origins:
        from bokeh.server.util import create_hosts_allowlist

        try:
            create_hosts_allowlist(origins, port)
        except ValueError as exc:
            raise ValueError(f"--allow-websocket-origin: {exc}") from None


def check_lessons(lessons: str | None) -> None:
    """Check the lessons file whole (LessonError, a ValueError, names the scene and the
    field) and make it the one every session of every process reads."""
    if lessons is not None:
        from app.session.lessons import ENV_VAR, load_lessons

        path = os.path.abspath(lessons)
        load_lessons(path)
        os.environ[ENV_VAR] = path


def serve(port: int = 5006, address: str = "localhost", show: bool = False,
          threaded: bool = False, threads: int | None = None,
          origins: list[str] | None = None, num_procs: int = 1,
          xheaders: bool = False, lessons: str | None = None, splash=None):  # fmt: skip
    """Serve the app; blocks unless ``threaded`` (then returns the server thread).

    ``num_procs`` > 1 forks that many processes sharing the port (Bokeh's ``num_procs``; each
    session lives in one of them); ``xheaders``: trust a reverse proxy's X-Forwarded-* headers;
    ``lessons``: the lessons file every page's menu shows (checked here, whole); ``splash``:
    an ``app.splash.Splash`` already serving on the port (one process): it is given the
    default run to show, then its sockets.
    Raises ValueError (bad port, thread or process count, websocket origin, a bad lessons
    file) or OSError (the port cannot be bound) before anything is printed: "serving on" is
    said only once the socket is bound (with a splash, by the command line, which checks the
    same options before it binds the port).
    """
    check_options(port, threads, num_procs, threaded, show, origins)
    check_lessons(lessons)
    import torch

    torch.set_num_threads(threads or default_threads(num_procs))
    if splash is not None:
        _show_default_run(splash)
    import panel as pn

    from app.ui.main import safe_app

    _send_without_delay()
    origin = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}", *(origins or [])]
    options = dict(port=port, address=address, show=show, title="flowscope",
                   websocket_origin=origin, verbose=False, liveness=True, use_xheaders=xheaders,
                   # what a browser may send: an upload (5 MB, 6.7 MB as base64) and clicks
                   websocket_max_message_size=MAX_MESSAGE)  # fmt: skip
    if threaded:
        _start_field_warm_up()
        return pn.serve({"/": safe_app}, threaded=True, **options)
    if num_procs > 1:
        options["num_procs"] = num_procs
    # binds the port, or raises; with num_procs > 1 it forks here, and what follows runs in
    # every child (the parent stays inside, waiting on them)
    parent = os.getpid()
    if splash is not None:
        from app.splash import sockets_for_bokeh

        with sockets_for_bokeh(splash):
            server = pn.serve({"/": _page}, start=False, **{**options, "show": False})
    else:
        server = pn.serve({"/": _page}, start=False, **options)
    if num_procs > 1:
        _die_with_parent(parent)
    # The exact field's kernels, while the first browser connects (its first run needs them).
    # Only now: a thread running at the fork (numba compiling, holding its locks) would leave
    # the children locked.
    _start_field_warm_up()
    if splash is None and (num_procs == 1 or tornado.process.task_id() == 0):
        procs = f" in {num_procs} processes" if num_procs > 1 else ""  # said once, not per child
        print(f"flowscope: serving on http://{address}:{port}/{procs} (Ctrl-C stops)", flush=True)
    stopped = _stop_on_sigterm(server.io_loop)
    server.start()
    server.io_loop.start()
    if stopped:
        raise KeyboardInterrupt  # as Ctrl-C: the command line's clean-up, exit status 130
    return server


def _send_without_delay() -> None:
    """Every page's websocket sends its frames at once (TCP_NODELAY; tornado leaves Nagle's
    algorithm on, and neither Bokeh nor Panel turns it off).

    A run reaches the page as one Bokeh message of many websocket frames: the particles'
    large buffer, then small headers and buffers. With Nagle's algorithm, a small frame
    written after the large one waits until the browser has acknowledged what came before,
    and Linux delays that acknowledgement by up to 40 ms. Measured: about half the drags of a
    short run had the message's tail arrive 31-42 ms after its particles
    (docs/PERFORMANCE.md, "Third pass").

    Swaps Panel's websocket handler in Bokeh's per-app URL patterns, the list Panel itself
    edits to put it there, for a subclass; once per process.
    """
    from bokeh.server import urls
    from panel.io.server import WSHandler

    class NoDelayWSHandler(WSHandler):
        def open(self, *args, **kwargs):
            self.set_nodelay(True)
            return super().open(*args, **kwargs)

    urls.per_app_patterns[:] = [(pattern, NoDelayWSHandler if handler is WSHandler else handler)
                                for pattern, handler in urls.per_app_patterns]  # fmt: skip


def _stop_on_sigterm(io_loop) -> list[bool]:
    """SIGTERM stops the server's loop, as a callback of that loop; returns a list that holds
    True once it has.

    The command line's own handler (``app.cli.interrupt``) raises KeyboardInterrupt in the
    main thread, where it first can. Once, after a long benchmark, the server outlived the
    first SIGTERM (idle in its loop, the second ended it): an exception raised at an arbitrary
    point can be swallowed, in a finalizer or by a library's ``except BaseException``. asyncio's
    handler only wakes the loop (through its self-pipe, whichever thread got the signal).
    """
    stopped: list[bool] = []

    def stop() -> None:
        stopped.append(True)
        # a second SIGTERM, should the shutdown itself hang, ends the process (the default)
        io_loop.asyncio_loop.remove_signal_handler(signal.SIGTERM)
        io_loop.stop()

    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not main thread
        io_loop.asyncio_loop.add_signal_handler(signal.SIGTERM, stop)
    return stopped


def _show_default_run(splash) -> None:
    """The default run, computed as a page's first run is (but with torch alone: numba loads
    in ~1 s, later, in the warm-up thread), for the splash to play."""
    from app.session.state import FlowState
    from models.fields import torch_only

    try:
        with torch_only():
            result, _ = FlowState().compute()
        splash.show(result.trajectories, result.times, result.labels)
    except Exception:  # the app's first page computes it again, and says why
        return


def _start_field_warm_up() -> None:
    threading.Thread(target=_warm_up_field, name="flowscope-field-warm-up", daemon=True).start()


def _die_with_parent(parent: int) -> None:
    """In a forked child: end (SIGTERM, which ends a command like Ctrl-C) when the parent ends.
    Tornado's parent waits on its children but passes no signal on to them, so a ``kill`` of
    ``flowscope serve --num-procs N`` would leave N orphans serving on the port."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent ended before the call above took effect
        os.kill(os.getpid(), signal.SIGTERM)


_WARMED = threading.Event()


def _warm_up_field() -> None:
    """While the first browser connects: the exact field's kernels (its first run needs them),
    then what else the first page would wait for: torch's first calls on the default run's
    path (~0.5 s, against ~20 ms once warm) and the lessons file, read and checked (~0.3 s;
    cached for every page after). Each part that fails is left to the page, which says why."""
    from models.accel.mixture_kernel import warm_up

    warm_up()
    with contextlib.suppress(Exception):
        from app.session.lessons import load_lessons

        load_lessons()
    with contextlib.suppress(Exception):
        from app.session.state import FlowState

        FlowState().compute()


def _page():
    """A session of the app; the first one, once its page has loaded, starts the warm-up."""
    import panel as pn

    from app.ui.main import safe_app

    view = safe_app()
    pn.state.onload(_warm_up_once)
    return view


def _warm_up_once() -> None:
    """Compile the PDE's kernels (or load them from numba's cache) in the background, once per
    server, after the first page has loaded: at start it delayed that page by ~0.8 s."""
    if not _WARMED.is_set():
        _WARMED.set()
        threading.Thread(target=_warm_up, name="flowscope-warm-up", daemon=True).start()


def _warm_up() -> None:
    from models.accel.pde_kernels import warm_up

    warm_up()

"""``flowscope serve``: the app on a Bokeh server, on localhost by default."""

from __future__ import annotations

import os
import threading

import panel as pn

MAX_MESSAGE = 16 * 1024 * 1024


def default_threads() -> int:
    """Torch threads for a server whose browser usually runs on the same machine.

    All cores but one: the browser's page needs a core to draw, and a torch thread team with
    more threads than free cores stalls at every barrier (measured on 2 cores while the page
    played: a recompute took 2-3x longer with 2 threads than with 1).
    """
    return max(1, (os.cpu_count() or 2) - 1)


def serve(port: int = 5006, address: str = "localhost", show: bool = False,
          threaded: bool = False, threads: int | None = None,
          origins: list[str] | None = None):  # fmt: skip
    """Serve the app; blocks unless ``threaded`` (then returns the server thread).

    Raises ValueError (bad port or thread count) or OSError (the port cannot be bound) before
    anything is printed: "serving on" is said only once the socket is bound.
    """
    import torch

    from app.ui.main import safe_app

    if not 1 <= port <= 65535:
        raise ValueError(f"--port must be in 1..65535, got {port}")
    if threads is not None and not 1 <= threads <= 256:  # torch crashes far past the cores
        raise ValueError(f"--threads must be in 1..256, got {threads}")
    torch.set_num_threads(threads or default_threads())
    origin = [f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}", *(origins or [])]
    # the exact field's kernels, while the first browser connects (its first run needs them)
    threading.Thread(target=_warm_up_field, name="flowscope-field-warm-up", daemon=True).start()
    options = dict(port=port, address=address, show=show, title="flowscope",
                   websocket_origin=origin, verbose=False, liveness=True,
                   # what a browser may send: an upload (5 MB, 6.7 MB as base64) and clicks
                   websocket_max_message_size=MAX_MESSAGE)  # fmt: skip
    if threaded:
        return pn.serve({"/": safe_app}, threaded=True, **options)
    server = pn.serve({"/": _page}, start=False, **options)  # binds the port, or raises
    print(f"flowscope: serving on http://{address}:{port}/ (Ctrl-C stops)", flush=True)
    server.start()
    server.io_loop.start()
    return server


_WARMED = threading.Event()


def _warm_up_field() -> None:
    from models.accel.mixture_kernel import warm_up

    warm_up()


def _page():
    """A session of the app; the first one, once its page has loaded, starts the warm-up."""
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

"""The first picture while ``flowscope serve`` starts.

The app's first frame comes 7-11 s after the start on a 2-core machine (docs/PERFORMANCE.md,
"The first picture"): Panel, Bokeh and torch imported, the first page built and loaded. So
the command binds its port at once and answers with a small page (``assets/splash.html``)
from a tornado server of its own, on a thread of its own. The page plays the default run as
soon as the main thread has computed it (torch alone, ~2 s from the start), and asks for
``/flowscope-splash`` until the answer is not the splash's. (The splash answers
``/liveness`` with 503: scripts wait for the app, not for the port.) When Panel's server asks
for its sockets, the splash stops accepting on them, they stay open, and Panel's server
serves on them (``hand_over``): no connection is refused in between, and the page's next
question reaches the app (404), so it loads it.

Only for one process: forked processes would each need their own splash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from app.colours import splash_colours

PAGE = Path(__file__).resolve().parents[1] / "assets" / "splash.html"
RUN_PATH = "/flowscope-first-run"
SPLASH_PATH = "/flowscope-splash"
STARTING = "flowscope is starting: the app answers here in a few seconds.\n"


def encode_run(trajectories: np.ndarray, times: np.ndarray, labels: np.ndarray) -> bytes:
    """The run as the page reads it: frames and particles (uint32 each), the positions
    (T+1, N, 2) float32, each frame's t (T+1,) float32, then each particle's label (N,) uint8,
    all little-endian."""
    frames, n = trajectories.shape[:2]
    head = np.array([frames, n], "<u4").tobytes()
    xy = np.ascontiguousarray(trajectories, "<f4").tobytes()
    t = np.asarray(times, "<f4").tobytes()
    return head + xy + t + np.asarray(labels).astype(np.uint8).tobytes()


class _Handler(tornado.web.RequestHandler):
    """What every answer of the splash shares: after the hand-over, a connection the splash
    accepted before it (a browser's spare one) is sent to the same address again, which a
    browser asks on a new connection: the app's."""

    def initialize(self, splash: Splash) -> None:
        self.splash = splash

    def prepare(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.moved = self.splash.handed_over  # read once: hand_over() sets it from another thread
        if self.moved:
            self.redirect(self.request.uri, status=307)


class _Page(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(self.splash.page())


def _page_html() -> str:
    """The splash page with the app's class colours (``app/ui/frames.py``) and its themes'."""
    from bokeh.palettes import Category10_10

    return (PAGE.read_text(encoding="utf-8")
            .replace("__FLOWSCOPE_PALETTE__", json.dumps(list(Category10_10)))
            .replace("__FLOWSCOPE_COLOURS__", json.dumps(splash_colours())))  # fmt: skip


class _Run(_Handler):
    async def get(self) -> None:
        data = await self.splash.run
        if not data:  # no run to show (its computation failed): the app will say why
            self.set_status(503)
            return
        self.set_header("Content-Type", "application/octet-stream")
        self.write(data)


class _Splash(_Handler):
    """The page's question "is the splash still here?" (the app answers it with 404)."""

    def get(self) -> None:
        self.write("starting")


class _Starting(_Handler):
    """Everything else, the liveness check included: not yet."""

    def prepare(self) -> None:
        super().prepare()
        if not self.moved:  # (else redirected)
            self.set_status(503)
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.set_header("Retry-After", "1")
            self.finish(STARTING)


class Splash:
    """A tornado server on ``port`` that shows the default run until the app takes over.

    Raises OSError when the port cannot be bound (before anything is served).
    """

    def __init__(self, port: int, address: str):
        self.sockets: list[socket.socket] = tornado.netutil.bind_sockets(port, address)
        self.handed_over = False
        self._page: str | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="flowscope-splash", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failed is not None:
            self._close_sockets()
            raise OSError(f"the start-up page could not start: {self._failed}")

    def page(self) -> str:
        """The page's HTML, made at the first request (on the splash's thread) and kept."""
        if self._page is None:
            self._page = _page_html()
        return self._page

    def _serve(self) -> None:
        try:
            asyncio.set_event_loop(asyncio.new_event_loop())
            self.loop = tornado.ioloop.IOLoop.current()
            self.run: asyncio.Future[bytes] = asyncio.get_event_loop().create_future()
            it = {"splash": self}
            routes = [(r"/", _Page, it), (RUN_PATH, _Run, it), (SPLASH_PATH, _Splash, it),
                      (r".*", _Starting, it)]  # fmt: skip
            # no access log: its 503s and the page's polls are expected, not news
            app = tornado.web.Application(routes, log_function=lambda _handler: None)
            # Every answer closes its connection, and a connection that asks nothing is closed
            # after 1 s: none lingers on this loop once the sockets are the app's
            self.server = tornado.httpserver.HTTPServer(app, no_keep_alive=True,
                                                        idle_connection_timeout=1)  # fmt: skip
            self.server.add_sockets(self.sockets)
        except BaseException as exc:  # said by the constructor, in the main thread
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.start()

    def _on_loop(self, work) -> None:
        """Run ``work()`` on the splash's loop and wait for it (up to 10 s); what it raises
        is raised here."""
        done = threading.Event()
        outcome: list[BaseException] = []

        def call() -> None:
            try:
                work()
            except BaseException as exc:
                outcome.append(exc)
            finally:
                done.set()

        self.loop.add_callback(call)
        if not done.wait(10):
            raise OSError("the start-up page's thread does not answer")
        if outcome:
            raise outcome[0]

    def show(self, trajectories: np.ndarray, times: np.ndarray, labels: np.ndarray) -> None:
        """Serve this run (T+1, N, 2), its times (T+1,) and labels (N,) to every page asking
        for it."""
        data = encode_run(trajectories, times, labels)
        self._on_loop(lambda: self.run.done() or self.run.set_result(data))

    def _stop_accepting(self) -> None:
        """On the loop: no more connections taken from the sockets; a page waiting for a run
        that will not come is answered."""
        for sock in self.sockets:
            self.loop.remove_handler(sock)
        if not self.run.done():
            self.run.set_result(b"")

    def hand_over(self) -> list[socket.socket]:
        """Stop accepting connections (the sockets stay open, and connections that arrive
        meanwhile wait in their queue) and return the sockets for the app's server."""
        self._on_loop(self._stop_accepting)
        self.handed_over = True
        return self.sockets

    def close(self) -> None:
        """Stop the splash's server; its sockets too unless the app has them."""
        if not self._thread.is_alive():
            return
        if not self.handed_over:
            with contextlib.suppress(OSError):
                self._on_loop(self._stop_accepting)
            self._close_sockets()
        self.loop.add_callback(self.loop.stop)
        self._thread.join(5)

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()


@contextlib.contextmanager
def sockets_for_bokeh(splash: Splash) -> Iterator[None]:
    """While inside: a Bokeh server built here serves on the splash's sockets, handed over
    the moment it asks for them, instead of binding its port (Bokeh's ``Server`` binds
    through ``bokeh.server.server.bind_sockets``)."""
    import bokeh.server.server as bokeh_server

    original = bokeh_server.bind_sockets

    def given(_address, _port):
        sockets = splash.hand_over()
        return sockets, sockets[0].getsockname()[1]

    bokeh_server.bind_sockets = given
    try:
        yield
    finally:
        bokeh_server.bind_sockets = original

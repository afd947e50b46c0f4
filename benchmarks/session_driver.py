"""One real session of the app driven by Bokeh's own client (``bokeh.client``), no browser:
change a compute control, wait until the new run's data is in this client's document, repeat;
or, as a student in a class, think a while between changes, change display settings only (a
student watching the player), or train a network in the page. Used by ``load_test.py`` and
``class_test.py``.

Why the client needs a reader of its own: ``ClientConnection`` reads the websocket only inside
its blocking calls (``pull``, ``loop_until_closed``), each of which runs the session's IOLoop
until its own condition holds, then stops it. After ``pull_session`` returns, nothing runs that
loop: a change made in the client document is queued on it (``add_callback(send_message)``) and
sits there (no PATCH-DOC in the debug log); running the loop (``run_sync``) sends it and the
server recomputes, but nothing reads the answer, so the new run never reaches the client
document and a wait for it times out. So each session runs its IOLoop itself, with a task that
reads every message and applies the server's PATCH-DOCs to the client document, as
``loop_until_closed`` does (without that method's recursion of one await per message).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bokeh.core.property.singletons import Undefined
from bokeh.events import ButtonClick, DocumentReady

LIGHT_TIMEOUT = 60.0  # one recompute's wait at most (s)
MAX_MESSAGE = 512 * 1024 * 1024  # a heavy run's frames are tens of MB in one message
# What the page draws without a new run: a change of these lands when the display settings do
DISPLAY = ("trail", "overlay")


def import_panel_models() -> None:
    """Register every Panel model type with Bokeh, so the client can build the pulled page."""
    import panel.models

    for info in pkgutil.iter_modules(panel.models.__path__):
        with contextlib.suppress(Exception):  # optional extras the page does not use
            importlib.import_module(f"panel.models.{info.name}")


@dataclass
class Controls:
    """The controls a session turns, found by their titles in the pulled document."""

    seed: object  # a Spinner (IntInput): plain ``value``
    sliders: dict[str, object]  # throttled sliders: the app listens to ``value_throttled``
    trail: object  # an IntSlider, not throttled: plain ``value``
    overlay: object  # a Select of the field's arrows

    @classmethod
    def find(cls, doc) -> Controls:
        by_title = {getattr(m, "title", None): m for m in doc.models}
        sliders = {name: by_title[title] for name, title in
                   (("beta_max", "β_max"), ("steps", "steps T"),
                    ("eta", "η (0 = ODE … 1 = reverse SDE)"))}  # fmt: skip
        return cls(seed=by_title["seed"], sliders=sliders,
                   trail=by_title["trail length (frames)"],
                   overlay=by_title["Overlay"])  # fmt: skip

    def change(self, k: int, names=("seed", "beta_max", "steps", "eta")) -> tuple[str, float]:
        """The k-th change: a new seed, β_max, steps or η (each a new run), or a display setting
        (trail length, the velocity arrows on or off), the ``names`` in turn; each value
        differs from the one before it. Returns (name, value)."""
        name = names[k % len(names)]
        turn = k // len(names)
        value = {"seed": 1000 + k, "beta_max": 10.0 + k % 10, "steps": 60 + 10 * (k % 8),
                 "eta": round(0.1 * (k % 10), 1), "trail": (12, 3)[turn % 2],
                 "overlay": ("velocity", "none")[turn % 2]}[name]  # fmt: skip
        if name == "seed":
            self.seed.value = value
        elif name == "trail":
            self.trail.value = value
        elif name == "overlay":
            self.overlay.value = value
        else:  # as a browser does on release: the value, then the throttled value
            slider = self.sliders[name]
            slider.value = value
            # Readonly for Python code; the browser sets it, so the client sets it the same way
            slider.lookup("value_throttled")._set(slider, Undefined, value)
        return name, value


@dataclass
class Training:
    """The Train panel of one session: start a job with the panel's settings, and start it
    again after it ends (at the student's next change), as a student who keeps training;
    records each job's progress."""

    button: object  # "▶ start training"
    progress: object  # the progress bar: value (steps done) of max
    # each job started: [steps done, its first and its last progress report (perf_counter)]
    jobs: list[list[float]] = field(default_factory=list)
    clicked: float | None = None  # when the first job was asked for (perf_counter)

    @classmethod
    def find(cls, doc) -> Training:
        button = next(m for m in doc.models if getattr(m, "label", None) == "▶ start training")
        progress = next(m for m in doc.models if "flowscope-train-progress"
                        in (getattr(m, "css_classes", None) or []))  # fmt: skip
        training = cls(button, progress)
        progress.on_change("value", lambda _attr, _old, new: training._report(new))
        return training

    def _report(self, value: int) -> None:
        now = time.perf_counter()
        if not self.jobs or value < self.jobs[-1][0]:  # a new job's first report (step 0)
            self.jobs.append([value, now, now])
        else:
            self.jobs[-1][0], self.jobs[-1][2] = value, now

    def start_if_idle(self, doc) -> bool:
        """Click start unless a job runs. Only between changes (after a run has landed): Panel
        runs a click that arrives while a widget change is pending outside the document lock,
        and the panel's start then fails on its loss curve."""
        running = self.button.disabled  # the server disables start while a job runs
        if running or (self.clicked is not None and not self.finished):
            return False
        doc.callbacks.send_event(ButtonClick(self.button))
        if self.clicked is None:
            self.clicked = time.perf_counter()
        return True

    @property
    def finished(self) -> bool:
        return bool(self.jobs) and self.jobs[-1][0] >= self.progress.max > 1

    @property
    def steps(self) -> int:
        return int(sum(job[0] for job in self.jobs))

    @property
    def training_seconds(self) -> float:
        """Time spent in jobs, first report to last, not the pauses between them."""
        return sum(job[2] - job[1] for job in self.jobs)


@dataclass
class Driver:
    """One session on its own thread: change a control, wait for the new run, repeat."""

    url: str
    stop: threading.Event | None
    on_recompute: Callable[[], None] | None = None
    arguments: dict[str, str] = field(default_factory=dict)
    timeout: float = LIGHT_TIMEOUT
    turns: tuple[str, ...] = ("seed", "beta_max", "steps", "eta")  # the controls changed
    latencies: list[float] = field(default_factory=list)  # seconds
    frames: list[int] = field(default_factory=list)  # frames of each run that arrived
    error: str | None = None
    go: threading.Event | None = None  # changes start once set (None: at once)
    ready: threading.Event = field(default_factory=threading.Event)  # first run in (or failed)
    think: tuple[float, float] | None = None  # seconds between changes, uniform (None: none)
    think_seed: int = 0  # of the think times
    train: bool = False  # train a network in the page, again whenever a job ends
    training: Training | None = None
    headers: dict[str, str] = field(default_factory=dict)  # on the websocket request

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        for attempt in range(3):  # a busy server can let a websocket connect time out (599)
            try:
                session = open_session(self.url, self.arguments, self.headers)
                break
            except Exception as exc:
                self.error = f"could not open a session: {type(exc).__name__}: {exc}"
                time.sleep(1 + attempt)
        else:
            self.ready.set()
            return
        self.error = None
        # What a browser says once it has rendered the document: the app publishes nothing
        # before (app/ui/main.py, _LoadGate), so a session without it would wait forever.
        session.document.callbacks.send_event(DocumentReady())
        try:
            session._connection.io_loop.run_sync(lambda: self._drive(session))
        except Exception as exc:  # reported in the summary, not a traceback per thread
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.ready.set()
            session.close()

    async def _drive(self, session) -> None:
        doc = session.document
        store = doc.get_model_by_name("grid_store")  # replaced last when a run lands
        shown = doc.get_model_by_name("display_settings")  # replaced last by a display change
        ran, drawn = asyncio.Event(), asyncio.Event()
        store.on_change("data", lambda _attr, _old, _new: ran.set())
        shown.on_change("data", lambda _attr, _old, _new: drawn.set())
        reader = asyncio.ensure_future(_read_patches(session))
        rng = random.Random(self.think_seed)
        try:
            if len(store.data["t"]) == 0:  # the page's first run has not landed yet
                await self._wait(ran, reader)
            self.ready.set()
            while self.go is not None and not self.go.is_set():  # the others are still opening
                if reader.done():
                    raise ConnectionError("the server closed the session")
                await asyncio.sleep(0.05)
            controls, k = Controls.find(doc), 0
            if self.train:
                self.training = Training.find(doc)
                self.training.start_if_idle(doc)
            if self.think:  # a class does not change all at once
                await self._pause(rng.uniform(0, self.think[1]), reader)
            while k == 0 or not self.stop.is_set():  # one change at least, however late
                arrived = drawn if self.turns[k % len(self.turns)] in DISPLAY else ran
                arrived.clear()
                start = time.perf_counter()
                name, value = controls.change(k, self.turns)
                await self._wait(arrived, reader)
                self.latencies.append(time.perf_counter() - start)
                if name not in DISPLAY:
                    self.frames.append(len(store.data["t"]))
                if name == "steps" and self.frames[-1] != value + 1:
                    raise RuntimeError(f"asked for {value} steps, got {self.frames[-1]} frames")
                if self.on_recompute:
                    self.on_recompute()
                k += 1
                if self.training:
                    self.training.start_if_idle(doc)
                if self.think:
                    await self._pause(rng.uniform(*self.think), reader)
        finally:
            reader.cancel()

    async def _pause(self, seconds: float, reader: asyncio.Future) -> None:
        """Think for ``seconds`` (the reader keeps applying the server's changes), or less if
        the phase stops."""
        end = time.perf_counter() + seconds
        while time.perf_counter() < end and not self.stop.is_set():
            if reader.done():
                raise ConnectionError("the server closed the session")
            await asyncio.sleep(min(0.1, max(0.0, end - time.perf_counter())))

    async def _wait(self, arrived: asyncio.Event, reader: asyncio.Future) -> None:
        waiter = asyncio.ensure_future(arrived.wait())
        done, _ = await asyncio.wait({waiter, reader}, timeout=self.timeout,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        waiter.cancel()
        if reader in done:
            raise ConnectionError("the server closed the session")
        if waiter not in done:
            raise TimeoutError(f"no new run within {self.timeout:.0f} s")


def open_session(url: str, arguments: dict[str, str], headers: dict[str, str] | None = None):
    """``pull_session``, with ``headers`` on the websocket's opening request (a reverse proxy's
    sticky cookie): Bokeh's client sends none, and its connection builds that request in one
    method, replaced here for this session only (the same steps, plus the headers)."""
    from bokeh.client import pull_session

    if not headers:
        return pull_session(url=url, arguments=arguments, max_message_size=MAX_MESSAGE)
    from bokeh.client.session import ClientSession
    from bokeh.client.states import CONNECTED_BEFORE_ACK, DISCONNECTED, ErrorReason
    from bokeh.client.util import websocket_url_for_server_url
    from bokeh.client.websocket import WebSocketClientConnectionWrapper
    from bokeh.util.strings import format_url_query_arguments
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    session = ClientSession(websocket_url=websocket_url_for_server_url(url.rstrip("/")),
                            arguments=arguments, max_message_size=MAX_MESSAGE)  # fmt: skip
    connection = session._connection

    async def connect() -> None:
        request = HTTPRequest(format_url_query_arguments(connection._url, arguments),
                              headers=headers)  # fmt: skip
        try:
            socket = await websocket_connect(request, subprotocols=["bokeh", session.token],
                                             max_message_size=MAX_MESSAGE)  # fmt: skip
            connection._socket = WebSocketClientConnectionWrapper(socket)
        except HTTPClientError as exc:
            await connection._transition_to_disconnected(
                DISCONNECTED(ErrorReason.HTTP_ERROR, exc.code, exc.message))  # fmt: skip
            return
        await connection._transition(CONNECTED_BEFORE_ACK())

    connection._connect_async = connect
    session.pull()
    return session


async def _read_patches(session) -> None:
    """Read the websocket until it closes, applying the server's changes to the client document
    (what ``ClientConnection._handle_messages`` does under ``loop_until_closed``)."""
    connection = session._connection
    while (message := await connection._pop_message()) is not None:
        if message.msgtype == "PATCH-DOC":
            session._handle_patch(message)

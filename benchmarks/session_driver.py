"""One real session of the app driven by Bokeh's own client (``bokeh.client``), no browser:
change a compute control, wait until the new run's data is in this client's document, repeat.
Used by ``load_test.py``.

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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bokeh.core.property.singletons import Undefined
from bokeh.events import DocumentReady

LIGHT_TIMEOUT = 60.0  # one recompute's wait at most (s)
MAX_MESSAGE = 512 * 1024 * 1024  # a heavy run's frames are tens of MB in one message


def import_panel_models() -> None:
    """Register every Panel model type with Bokeh, so the client can build the pulled page."""
    import panel.models

    for info in pkgutil.iter_modules(panel.models.__path__):
        with contextlib.suppress(Exception):  # optional extras the page does not use
            importlib.import_module(f"panel.models.{info.name}")


@dataclass
class Controls:
    """The compute controls a session turns, found by their titles in the pulled document."""

    seed: object  # a Spinner (IntInput): plain ``value``
    sliders: dict[str, object]  # throttled sliders: the app listens to ``value_throttled``

    @classmethod
    def find(cls, doc) -> Controls:
        by_title = {getattr(m, "title", None): m for m in doc.models}
        sliders = {name: by_title[title] for name, title in
                   (("beta_max", "β_max"), ("steps", "steps T"),
                    ("eta", "η (0 = ODE … 1 = reverse SDE)"))}  # fmt: skip
        return cls(seed=by_title["seed"], sliders=sliders)

    def change(self, k: int, names=("seed", "beta_max", "steps", "eta")) -> tuple[str, float]:
        """The k-th change: a new seed, β_max, steps or η, the ``names`` in turn (each a new
        run). Returns (name, value)."""
        name = names[k % len(names)]
        value = {"seed": 1000 + k, "beta_max": 10.0 + k % 10, "steps": 60 + 10 * (k % 8),
                 "eta": round(0.1 * (k % 10), 1)}[name]  # fmt: skip
        if name == "seed":
            self.seed.value = value
        else:  # as a browser does on release: the value, then the throttled value
            slider = self.sliders[name]
            slider.value = value
            # Readonly for Python code; the browser sets it, so the client sets it the same way
            slider.lookup("value_throttled")._set(slider, Undefined, value)
        return name, value


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

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        from bokeh.client import pull_session

        for attempt in range(3):  # a busy server can let a websocket connect time out (599)
            try:
                session = pull_session(url=self.url, arguments=self.arguments,
                                       max_message_size=MAX_MESSAGE)  # fmt: skip
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
        arrived = asyncio.Event()
        store.on_change("data", lambda _attr, _old, _new: arrived.set())
        reader = asyncio.ensure_future(_read_patches(session))
        try:
            if len(store.data["t"]) == 0:  # the page's first run has not landed yet
                await self._wait(arrived, reader)
            self.ready.set()
            while self.go is not None and not self.go.is_set():  # the others are still opening
                if reader.done():
                    raise ConnectionError("the server closed the session")
                await asyncio.sleep(0.05)
            controls, k = Controls.find(doc), 0
            while k == 0 or not self.stop.is_set():  # one change at least, however late
                arrived.clear()
                start = time.perf_counter()
                name, value = controls.change(k, self.turns)
                await self._wait(arrived, reader)
                self.latencies.append(time.perf_counter() - start)
                self.frames.append(len(store.data["t"]))
                if name == "steps" and self.frames[-1] != value + 1:
                    raise RuntimeError(f"asked for {value} steps, got {self.frames[-1]} frames")
                if self.on_recompute:
                    self.on_recompute()
                k += 1
        finally:
            reader.cancel()

    async def _wait(self, arrived: asyncio.Event, reader: asyncio.Future) -> None:
        waiter = asyncio.ensure_future(arrived.wait())
        done, _ = await asyncio.wait({waiter, reader}, timeout=self.timeout,
                                     return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        waiter.cancel()
        if reader in done:
            raise ConnectionError("the server closed the session")
        if waiter not in done:
            raise TimeoutError(f"no new run within {self.timeout:.0f} s")


async def _read_patches(session) -> None:
    """Read the websocket until it closes, applying the server's changes to the client document
    (what ``ClientConnection._handle_messages`` does under ``loop_until_closed``)."""
    connection = session._connection
    while (message := await connection._pop_message()) is not None:
        if message.msgtype == "PATCH-DOC":
            session._handle_patch(message)

"""A real Panel server with the app, and a real Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import io
import shutil
import socket
import time
import urllib.request

import numpy as np
import panel as pn
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# Console messages that are not the app's: offline font lookups, software-GL notes.
STORE_XY = "Bokeh.documents[0].get_model_by_name('particle_store').data.xy"
PLAYER = "[...Bokeh.documents[0].all_models].find((m) => m.constructor.__name__ === 'Player')"
BUSY = "Bokeh.documents[0].get_model_by_name('status').data.busy[0]"
# True once the page is still and painted: no frame drawn by render.js since the last poll
# (Playwright polls once per animation frame) and no figure with a repaint pending (Bokeh
# repaints a changed figure in a throttled requestAnimationFrame, after the frame is drawn).
SETTLED = """() => { const n = window.flowscope_frames, still = n === window.__settled_at;
  window.__settled_at = n;
  if (!still) return false;
  for (const m of Bokeh.documents[0].all_models) {
    if (m.type !== 'Figure' && m.type !== 'Plot') continue;
    for (const root of Bokeh.index.roots) { const v = root.owner.find_one(m);
      if (v && (v._invalidate_all || v._invalidated_painters.size > 0)) return false; } }
  return true; }"""
BENIGN = ("ERR_NAME_NOT_RESOLVED", "GL Driver Message", "favicon")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/ui/" in str(item.fspath):
            item.add_marker(pytest.mark.ui)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    # tall enough for the whole page (the schedule plot sits under the Train panel): figures
    # are screenshot in place, never by resizing the page, which makes Bokeh lay out anew
    return {**browser_context_args, "viewport": {"width": 1500, "height": 1700}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def server():
    """The app on a threaded Panel server; yields its base URL."""
    from app.server import serve
    from app.session import memory

    # The server shares this process with Playwright: no forced full collections on its thread
    # (see app/session/memory.py; tests/test_memory.py and the load test's own server cover them).
    memory.ENABLED = False
    port = _free_port()
    serve(port=port, address="localhost", threaded=True)
    url = f"http://localhost:{port}"
    wait_live(url)
    yield url
    pn.state.kill_all_servers()


def wait_live(url: str, seconds: float = 30) -> None:
    """Until the server at ``url`` answers its liveness URL (no page to wait on yet)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/liveness", timeout=2):
                return
        except OSError:
            time.sleep(0.2)  # polls the server (the condition is its answer)


class AppPage:
    """A loaded page of the app, with helpers to read Bokeh models and pixels."""

    def __init__(self, page, url: str):
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self._error(m.text))
        page.on("pageerror", lambda e: self._error(str(e)))
        self.sent = 0  # websocket messages the page sent to the server
        page.on("websocket", lambda ws: ws.on("framesent", self._count_sent))
        page.goto(url)
        # The first page of a fresh server also pays torch's first-call warm-up; on a loaded
        # 2-core machine that once took over 30 s.
        page.wait_for_function("() => window.flowscope_frames > 0", timeout=60_000)

    def _count_sent(self, _payload) -> None:
        self.sent += 1

    def _error(self, text: str) -> None:
        if not any(b in text for b in BENIGN):
            self.errors.append(text)

    def js(self, code: str, arg=None):
        return self.page.evaluate(code, arg)

    def model_data(self, name: str, column: str):
        return self.js(
            "([n, c]) => { const d = Bokeh.documents[0].get_model_by_name(n).data[c];"
            " return Array.from(d, (v) => (typeof v === 'object' ? v.length : v)); }",
            [name, column],
        )

    def player(self, **props) -> None:
        """Set properties of the player model (direction 0 pauses, value seeks)."""
        self.js(f"(props) => {{ Object.assign({PLAYER}, props); }}", props)

    def player_props(self, *names: str) -> list:
        """Properties of the player model, as the browser holds them."""
        return self.js(f"(names) => names.map((n) => {PLAYER}[n])", list(names))

    def press_slider(self, index: int, key: str, times: int = 1) -> None:
        """Move the index-th slider of the page (0 is η, 1 steps T, 4 β_max) by keyboard."""
        self.page.locator(".noUi-handle").nth(index).focus()
        for _ in range(times):
            self.page.keyboard.press(key)

    def pause_at(self, frame: int) -> None:
        self.player(direction=0)
        self.player(value=frame)
        self.page.wait_for_function(f"() => window.flowscope_frame === {frame}")
        self.settled()

    def settled(self) -> None:
        """Wait until the page is still and has painted what it holds (see SETTLED)."""
        self.page.wait_for_function(SETTLED, timeout=30_000)

    def box(self, name: str) -> dict:
        x, y, w, h = self.js(
            "(n) => { const m = Bokeh.documents[0].get_model_by_name(n);"
            " for (const v of Bokeh.index.roots) { const f = v.owner.find_one(m);"
            " if (f) { const r = f.el.getBoundingClientRect();"
            " return [r.x, r.y, r.width, r.height]; } } }",
            name,
        )
        return {"x": x, "y": y, "width": w, "height": h}

    def pixels(self, name: str) -> np.ndarray:
        """The figure as a person sees it: an RGB array of its screenshot."""
        self.js("() => window.scrollTo(0, 0)")  # the box is then in page coordinates
        png = self.page.screenshot(clip=self.box(name))
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)

    def wait_for_new_run(self, before) -> None:
        """Wait until the grid store holds a different run than ``before`` (its times)."""
        self.page.wait_for_function(
            "(old) => { const t = Bokeh.documents[0].get_model_by_name('grid_store').data.t;"
            " return t.length !== old.length || t.some((v, i) => v !== old[i]); }",
            arg=before, timeout=30_000,
        )  # fmt: skip
        # the grid rows land last and redraw the frame; then the server reports the run landed
        self.page.wait_for_function(f"() => {BUSY} === 0", timeout=30_000)

    def times(self) -> list[float]:
        return self.model_data("grid_store", "t")

    def store_marker(self) -> None:
        # window.__xy_frames: the frames render.js had drawn when the particles last changed
        self.js(f"""() => {{ window.__store = {STORE_XY};
          if (!window.__xy_watched) {{ window.__xy_watched = true;
            const s = Bokeh.documents[0].get_model_by_name('particle_store');
            s.connect(s.properties.data.change,
                      () => {{ window.__xy_frames = window.flowscope_frames; }}); }} }}""")

    def wait_url(self, *fragments: str) -> str:
        """The page's URL once it holds every fragment: the app mirrors the settings into it
        a moment after their run has landed (app/ui/main.py, IDLE_MS)."""
        test = " && ".join(f"window.location.href.includes({f!r})" for f in fragments)
        self.page.wait_for_function(f"() => {test}", timeout=10_000)
        return self.page.url

    def wait_store_changed(self) -> None:
        self.page.wait_for_function(
            f"() => {STORE_XY} !== window.__store",
            timeout=30_000,
        )
        # then: a frame drawn from the new particles, and the server idle (the run has landed)
        self.page.wait_for_function(
            f"() => window.flowscope_frames > window.__xy_frames && {BUSY} === 0",
            timeout=30_000,
        )


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of pixels whose colour changed noticeably."""
    return float((np.abs(a - b).sum(-1) > 30).mean())


@pytest.fixture
def app(page, server):
    def load(query: str = "") -> AppPage:
        return AppPage(page, f"{server}/{query}")

    return load

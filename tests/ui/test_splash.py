"""``flowscope serve``'s first picture in a real Chromium: the splash plays the default run,
then the page loads the app by itself (app/splash.py)."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from bokeh.palettes import Category10_10
from PIL import Image

from app.colours import splash_colours
from tests.ui.conftest import _free_port

APP_PAINTED = "() => window.flowscope_frames > 0"


@pytest.fixture
def command():
    """``flowscope serve`` started as a user starts it; yields its URL once the port answers."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://localhost:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            time.sleep(0.05)  # the port is not bound yet
    yield url
    proc.terminate()
    proc.wait(10)


def wait_for_the_app(page, seconds: float = 90) -> None:
    """Until the app paints; the splash's reload into it can cut one wait short."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            page.wait_for_function(APP_PAINTED, timeout=5_000)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise


def test_the_splash_plays_the_default_run_then_the_app_opens_by_itself(page, command):
    page.goto(command)
    page.wait_for_function("() => window.flowscope_splash_frames > 2", timeout=60_000)
    png = page.locator("#particles").screenshot()
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    painted = (np.abs(rgb - 255).sum(-1) > 60).mean()
    assert 0.002 < painted < 0.5, painted  # particles on white, not an empty or filled canvas
    # the 8 Gaussians' particles in the app's 8 class colours
    colours = [np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)]) for c in Category10_10[:8]]
    shares = [(np.abs(rgb - c).sum(-1) < 30).mean() for c in colours]
    assert min(shares) > 0.0002, shares
    wait_for_the_app(page)
    assert page.evaluate("() => window.flowscope_splash_frames") is None  # the app's page now
    assert page.locator("#particles").count() == 0


def test_a_link_with_settings_opens_the_app_with_them_without_the_default_run(page, command):
    page.goto(command + "?dataset=moons&theme=dark")
    # read at once, in the splash's page (the app's page has no splash counter)
    splash = page.evaluate("""() => [window.flowscope_splash_frames,
        document.getElementById('particles').hidden, getComputedStyle(document.body).color,
        getComputedStyle(document.body).backgroundColor]""")
    dark = [
        f"rgb({', '.join(str(int(c[i : i + 2], 16)) for i in (1, 3, 5))})"
        for c in (splash_colours()["dark"]["ink"], splash_colours()["dark"]["page"])
    ]
    assert splash == [0, True, *dark]  # no default run under other settings; the link's theme
    wait_for_the_app(page)
    assert "dataset=moons" in page.url
    data = page.locator("select").filter(has_text="your points")
    assert data.evaluate("(s) => s.options[s.selectedIndex].text") == "2 moons"

"""The light and dark themes in a real Chromium, measured on the screenshot's pixels: the
paper is what the theme says, and arrows, contours and trails stand out on both."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.ui.conftest import changed_fraction

BASE = "?steps=20&process=vp&particles=3000"
FRAME = 12
SWITCHED = """(t) => [...Bokeh.documents[0].all_models].find((m) => m.css_classes &&
  m.css_classes.includes('flowscope-theme')).active === (t === 'dark')"""


def shot(app, theme: str, extra: str) -> tuple:
    page = app(f"{BASE}&theme={theme}{extra}")
    page.page.wait_for_function(SWITCHED, arg=theme)
    page.pause_at(FRAME)
    assert page.errors == []
    whole = np.asarray(Image.open(io.BytesIO(page.page.screenshot())).convert("RGB"), np.int16)
    return page.pixels("particle_fig"), page.pixels("density_fig"), whole[-40:, -40:]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_arrows_contours_and_trails_stand_out_on_the_theme(app, page, theme):
    page.set_viewport_size({"width": 1500, "height": 1000})
    bare = shot(app, theme, "&trail=0&overlay=none&contours=false")
    trails = shot(app, theme, "&trail=20&overlay=none&contours=false")
    marks = shot(app, theme, "&trail=0&overlay=velocity&contours=true")
    paper = float(bare[0][40:-40, 40:-40].reshape(-1, 3).sum(1).mean() / 3)
    assert paper > 200 if theme == "light" else paper < 70, paper  # the particle view's paper
    assert changed_fraction(bare[0], trails[0]) > 0.004  # trails (thin: ~0.6-0.8 % of it)
    assert changed_fraction(bare[0], marks[0]) > 0.02  # arrows on the particles' paper
    assert changed_fraction(bare[1], marks[1]) > 0.02  # arrows and contours on the heatmap
    corner = float(bare[2].mean())  # the page's own paper, below and right of everything
    assert corner > 240 if theme == "light" else corner < 40, corner


HEADING_INK = """() => { const find = (root) => { for (const e of root.querySelectorAll('*')) {
    if (e.tagName === 'H3' && e.textContent.includes('Process')) return e;
    if (e.shadowRoot) { const f = find(e.shadowRoot); if (f) return f; } } return null; };
  const h = find(document); if (h === null) return null;
  const rgb = getComputedStyle(h).color.match(/\\d+/g).map(Number);
  return (rgb[0] + rgb[1] + rgb[2]) / 3; }"""


def test_switching_the_theme_turns_the_whole_page_text_and_widgets_included(app):
    page = app(f"{BASE}&particles=500")
    assert page.js(HEADING_INK) < 100  # dark ink on the light page
    page.page.evaluate("() => { window.__before_switch = true; }")
    page.page.locator(".flowscope-theme button").click()
    # the page loads again with the theme in its link (every setting is there too)
    page.page.wait_for_function("() => window.__before_switch === undefined && "
                                "window.flowscope_frames > 0", timeout=60_000)  # fmt: skip
    url = page.wait_url("theme=dark", "particles=500", "process=vp")
    assert "steps=20" in url
    page.page.wait_for_function(SWITCHED, arg="dark")
    assert page.js(HEADING_INK) > 180  # light ink on the dark page
    page.page.locator(".flowscope-theme button").click()  # and back
    page.page.wait_for_function("() => !window.location.href.includes('theme=dark')",
                                timeout=60_000)  # fmt: skip
    page.page.wait_for_function("() => window.flowscope_frames > 0", timeout=60_000)
    page.page.wait_for_function(f"() => ({HEADING_INK})() !== null && ({HEADING_INK})() < 100",
                                timeout=30_000)  # fmt: skip

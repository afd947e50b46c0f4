"""Browser: a schedule drawn on the λ(t) plot changes the run; a bad drawing is refused with a
notice and the run on screen stays; VE's noise end stays in the view."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from tests.ui.conftest import STORE_XY

pytestmark = pytest.mark.ui

# The page position of control point k of the drawn schedule (its figure's scales and canvas).
POINT_AT = """([k]) => {
  const doc = Bokeh.documents[0];
  const fig = doc.get_model_by_name('schedule_editor');
  const src = doc.get_model_by_name('drawn_points');
  for (const root of Bokeh.index.roots) {
    const view = root.owner.find_one(fig);
    if (!view) continue;
    const rect = view.canvas_view.el.getBoundingClientRect();
    const sx = view.frame.x_scale.compute(src.data.t[k]);
    const sy = view.frame.y_scale.compute(src.data.lam[k]);
    return [rect.x + sx, rect.y + sy];
  }
}"""


def drag(page, k: int, dy: float) -> None:
    """Drag control point k by dy pixels (down is positive), as a person does."""
    x, y = page.js(POINT_AT, [k])
    mouse = page.page.mouse
    mouse.move(x, y)
    mouse.down()
    for i in range(1, 6):
        mouse.move(x, y + dy * i / 5)
    mouse.up()


def drawn_points(page) -> list[str]:
    return parse_qs(urlparse(page.page.url).query).get("schedule_points", [])


def test_drawing_a_schedule_changes_the_run_and_a_bad_one_is_refused(app):
    page = app("?process=vp&schedule=points&steps=20&particles=500")
    page.page.get_by_text("Drag a point to move it").scroll_into_view_if_needed()
    before = page.model_data("drawn_points", "lam")
    first = page.wait_url("schedule_points=")
    page.store_marker()
    below = page.js(POINT_AT, [4])[1] - page.js(POINT_AT, [3])[1]  # pixels from 3 down to 4
    drag(page, 3, 0.5 * below)  # down: λ lower there, still between its neighbours
    page.wait_store_changed()
    moved = page.model_data("drawn_points", "lam")
    assert before[4] < moved[3] < before[3] - 0.3 and moved[:3] == before[:3]
    page.page.wait_for_function(f"() => window.location.href !== {first!r}", timeout=10_000)
    url_points = drawn_points(page)
    assert url_points and f"{moved[3]:.4g}"[:4] in url_points[0]

    # a drawing whose λ rises is refused: a notice, the old points back, the run kept
    page.store_marker()
    kept_url = page.page.url
    gap = page.js(POINT_AT, [2])[1] - page.js(POINT_AT, [3])[1]  # pixels from 3 up to 2
    drag(page, 3, gap - 40.0)  # well above point 2: λ would rise from t₂ to t₃
    notice = page.page.locator(".flowscope-notice").filter(has_text="That drawing was not used")
    notice.wait_for(timeout=15_000)
    page.page.wait_for_function(
        "(want) => { const l = Bokeh.documents[0].get_model_by_name('drawn_points').data.lam;"
        " return Math.abs(l[3] - want) < 1e-9; }", arg=moved[3], timeout=10_000)  # fmt: skip
    page.page.wait_for_timeout(800)
    assert page.page.url == kept_url
    assert page.js(f"() => {STORE_XY} === window.__store"), "the run on screen must stay"
    assert page.errors == []


def test_ve_noise_end_stays_in_the_view(app):
    page = app("?process=ve&steps=20&particles=1000")
    page.player(direction=0)
    page.settled()
    x0, x1 = page.js(
        "() => { const r = Bokeh.documents[0].get_model_by_name('particle_fig').x_range;"
        " return [r.start, r.end]; }")  # fmt: skip
    assert x1 >= 4 + 3.5 * 10 - 1e-9 and x0 == -x1
    frame = page.js("() => window.flowscope_frame")
    xy = page.js("(f) => { const s = Bokeh.documents[0].get_model_by_name('particles').data;"
                 " return [Array.from(s.x), Array.from(s.y)]; }", frame)  # fmt: skip
    inside = (np.abs(np.array(xy)) <= x1).all(axis=0).mean()
    assert inside > 0.99, f"frame {frame}: {inside:.3f} of the particles in the view"
    assert page.errors == []

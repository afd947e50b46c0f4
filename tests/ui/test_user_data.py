"""Your own data in a real browser: drawing with the mouse, uploads good and bad, links that
carry the points, and two pages on one server that keep their own data."""

from __future__ import annotations

import io
import itertools
import pickle
import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from tests.ui.test_hardening import notice_text


def frame_box(page) -> tuple[float, float, float, float]:
    """(left, top, width, height) of the particle view's plotting area, in page pixels."""
    box = page.box("particle_fig")
    left, top, width, height = page.js(
        "() => { const m = Bokeh.documents[0].get_model_by_name('particle_fig');"
        " for (const v of Bokeh.index.roots) { const f = v.owner.find_one(m);"
        " if (f) { const fr = f.frame.bbox; return [fr.left, fr.top, fr.width, fr.height]; } } }"
    )
    return box["x"] + left, box["y"] + top, width, height


def to_page(page, x: float, y: float) -> tuple[float, float]:
    left, top, width, height = frame_box(page)
    return left + (x + 4) / 8 * width, top + (4 - y) / 8 * height


DRAW_TOGGLE = ("[...Bokeh.documents[0].all_models]"
               ".find((m) => m.label === '✎ draw on the particle view')")  # fmt: skip
PRESS_MS = "Bokeh.require('core/ui_gestures').UIGestures.press_threshold"


def draw(page, points, pause: float = 0.0, toggle: bool = True) -> None:
    """Draw a stroke through ``points`` (data units), holding still ``pause`` s after pressing;
    ``toggle``: switch draw mode on with the sidebar's button first."""
    if toggle:
        page.page.get_by_role("button", name="✎ draw on the particle view").click()
    # draw mode on: the toggle switches the figure's draw tool in the page, as it changes
    page.page.wait_for_function(f"() => {DRAW_TOGGLE}.active", timeout=10_000)
    at = [to_page(page, *p) for p in points]  # read before pressing: nothing slows the stroke
    mouse = page.page.mouse
    mouse.move(*at[0])
    mouse.down()
    time.sleep(pause)  # kept: a pointer held still this long is what is tested
    for p in at[1:]:
        mouse.move(*p, steps=8)
    mouse.up()


def upload(page, name: str, data: bytes) -> None:
    page.page.locator("input[type=file]").set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}]
    )


def final_positions(page) -> np.ndarray:
    xy = page.js(
        "() => { const d = Bokeh.documents[0].get_model_by_name('particle_store').data;"
        " const n = d.n[0], xy = d.xy[0], T = xy.length / (2 * n) - 1, s = d.scale[0];"
        " const out = []; for (let i = 0; i < n; i++)"
        "  out.push([xy[(T * 2) * n + i] * s, xy[(T * 2 + 1) * n + i] * s]); return out; }"
    )
    return np.asarray(xy)


def test_drawing_with_the_mouse_makes_the_data_set_and_a_new_run(app):
    page = app()
    page.store_marker()
    stroke = [(-2.0, -2.0), (0.0, 2.0), (2.0, -2.0)]  # a caret
    # begun after a pause, as people do: Bokeh alone would take it for a press and drop it
    draw(page, stroke, pause=0.6)
    page.wait_store_changed()
    query = parse_qs(urlparse(page.wait_url("dataset=points", "pts=")).query)
    assert query["dataset"] == ["points"] and len(query["pts"][0]) > 20
    # reverse run with the exact field of the drawn points: it lands on the stroke
    final = final_positions(page)
    along = np.linspace(0, 1, 200)[:, None]
    line = np.concatenate([(1 - along) * np.array(a) + along * np.array(b)
                           for a, b in itertools.pairwise(stroke)])  # fmt: skip
    distance = np.min(np.linalg.norm(final[:, None] - line[None], axis=-1), axis=1)
    assert np.median(distance) < 0.35, "generated points lie along the drawn stroke"
    assert page.errors == []
    # the link restores the same data set and run
    again = app("?" + urlparse(page.page.url).query)
    np.testing.assert_allclose(final_positions(again), final, atol=1e-3)
    assert notice_text(again) == "" and again.errors == []


def test_the_toolbar_draw_tool_draws_after_a_pause_and_shows_in_the_toggle(app):
    page = app()
    assert page.js(f"() => {PRESS_MS}") > 1e6  # a pointer held still is no press here
    page.page.locator('[title="Draw your own data"]').first.click()
    page.page.wait_for_function(f"() => {DRAW_TOGGLE}.active")
    page.store_marker()
    draw(page, [(-2.0, 0.0), (2.0, 0.0)], pause=0.6, toggle=False)
    page.wait_store_changed()
    page.wait_url("dataset=points")
    # the pan tool takes the drag back, and the sidebar's toggle shows draw mode off
    page.page.locator('[title="Pan"]').first.click()
    page.page.wait_for_function(f"() => !{DRAW_TOGGLE}.active")
    assert page.errors == []


def _csv(rows: str) -> bytes:
    return rows.encode()


def _npy(array, **kw) -> bytes:
    out = io.BytesIO()
    np.save(out, array, **kw)
    return out.getvalue()


BAD_UPLOADS = {
    "empty.csv": (b"", "is empty"),
    "columns.csv": (_csv("1,2,3,4\n5,6,7,8\n"), "4 columns"),
    "text.csv": (_csv("x,y\n1,2\n3,abc\n"), "not two numbers"),
    "nan.csv": (_csv("1,2\nnan,3\n"), "NaN or infinite"),
    "inf.csv": (_csv("1,2\ninf,3\n"), "NaN or infinite"),
    "one.csv": (_csv("1,2\n"), "at least 2"),
    "million.npy": (_npy(np.zeros((1_000_000, 2), np.float16)), "at most 100,000"),
    "huge.csv": (b"1,2\n" * (6 * 2**20 // 4), "up to 5 MB"),
    "binary.csv": (bytes(range(256)) * 40, "binary"),
    "pickled.npy": (_npy(np.array([{"a": 1}], dtype=object), allow_pickle=True), "pickle"),
    "raw.npy": (pickle.dumps([[1.0, 2.0], [3.0, 4.0]]), "not a .npy file"),
    "far.csv": (_csv("100,100\n120,90\n"), "outside the view"),
    "one_far_point.csv": (
        _csv("".join(f"{i / 10},{-i / 20}\n" for i in range(20)) + "1e308,0\n"),
        "±1000",
    ),
}


@pytest.mark.parametrize("name", BAD_UPLOADS)
def test_a_bad_upload_is_one_line_and_loses_nothing(app, name):
    page = app("?dataset=moons")
    page.pause_at(50)
    before = page.pixels("particle_fig")
    page.store_marker()
    data, words = BAD_UPLOADS[name]
    upload(page, name, data)
    page.page.get_by_text("Upload refused").wait_for(timeout=40_000)
    text = notice_text(page)
    assert name in text and words in text, text
    # the refusal above is the server's answer to the upload; the page, paused, shows it still
    page.settled()
    assert page.js(
        "() => Bokeh.documents[0].get_model_by_name('particle_store').data.xy === window.__store"
    ), "the run on screen was not replaced"
    assert "dataset=moons" in page.page.url and "pts=" not in page.page.url
    from tests.ui.conftest import changed_fraction

    assert changed_fraction(before, page.pixels("particle_fig")) < 0.01, "the view is as it was"
    assert page.errors == []


def test_an_upload_far_away_is_fitted_into_the_view_when_asked(app):
    page = app()
    page.js(
        "() => { const box = [...Bokeh.documents[0].all_models].find((m) =>"
        " m.type === 'Checkbox' && m.label === 'fit into the view'); box.active = true; }"
    )
    # (the upload reaches the server after the box: Panel applies changes in their order)
    page.store_marker()
    rng = np.random.default_rng(0)
    pixels = np.column_stack([rng.uniform(100, 500, 300), rng.uniform(200, 300, 300)])
    upload(page, "pixels.csv", ("x,y\n" + "\n".join(f"{x},{y}" for x, y in pixels)).encode())
    page.wait_store_changed()
    final = final_positions(page)
    assert np.abs(final).max() < 4 and final[:, 0].std() > 3 * final[:, 1].std()
    assert page.errors == []


def test_a_fit_that_would_squeeze_the_points_is_refused_and_loses_nothing(app):
    page = app("?dataset=moons")
    page.js(
        "() => { const box = [...Bokeh.documents[0].all_models].find((m) =>"
        " m.type === 'Checkbox' && m.label === 'fit into the view'); box.active = true; }"
    )
    page.store_marker()
    rows = "".join(f"{100 + i},{200 - i}\n" for i in range(20)) + "1e308,0\n"
    upload(page, "stray.csv", _csv(rows))
    page.page.get_by_text("Upload refused").wait_for(timeout=40_000)
    assert "squeeze" in notice_text(page)
    assert page.js(
        "() => Bokeh.documents[0].get_model_by_name('particle_store').data.xy === window.__store"
    ), "the run on screen was not replaced"
    assert "dataset=moons" in page.wait_url("dataset=moons") and "pts=" not in page.page.url
    assert page.errors == []


def test_two_pages_on_one_server_keep_their_own_data(app, context, server):
    first = app()
    first.store_marker()
    upload(first, "mine.csv", b"x,y\n1,1\n-1,-1\n1.5,-1\n")
    first.wait_store_changed()
    first.wait_url("dataset=points")
    from tests.ui.conftest import AppPage

    second = AppPage(context.new_page(), f"{server}/")
    second.page.wait_for_function("() => window.location.search.includes('dataset=')")
    assert "pts=" not in second.page.url and "dataset=8gaussians" in second.page.url
    second.store_marker()
    second.page.get_by_role("button", name="forward: noising").click()
    second.wait_store_changed()
    second.wait_url("direction=forward")
    assert "dataset=points" in first.page.url and "direction=reverse" in first.page.url
    assert "dataset=8gaussians" in second.page.url and "pts=" not in second.page.url
    assert first.errors == [] and second.errors == []

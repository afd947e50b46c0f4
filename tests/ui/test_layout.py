"""The page's layout in a real Chromium: square views that fit the window, sidebar text that
wraps, checkbox labels that click, and controls that show what is in effect."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

# Per view: the plotting frame's size in pixels and the data ranges it shows.
FRAMES = """() => { const out = {};
  for (const name of ['particle_fig', 'density_fig']) {
    const m = Bokeh.documents[0].get_model_by_name(name);
    for (const root of Bokeh.index.roots) { const v = root.owner.find_one(m);
      if (v) { const b = v.frame.bbox;
        out[name] = {width: b.width, height: b.height,
                     dx: m.x_range.end - m.x_range.start, dy: m.y_range.end - m.y_range.start};
      } } }
  return out; }"""
# Every element (shadow roots included) whose text is cut: wider inside than its own box.
CLIPPED = """(texts) => { const out = [];
  const walk = (root) => { for (const el of root.querySelectorAll('*')) {
    if (el.shadowRoot) { walk(el.shadowRoot); }
    const text = el.textContent || '';
    if (texts.some((t) => text.includes(t)) && el.scrollWidth > el.clientWidth + 1) {
      out.push([el.tagName, el.scrollWidth, el.clientWidth, text.trim().slice(0, 50)]);
    } } };
  walk(document); return out; }"""
MODEL = "[...Bokeh.documents[0].all_models].find({})"


def check_square_and_fits(page, width: int, height: int) -> dict:
    """Resize the window; assert both views are square in pixels and in data units per pixel,
    and nothing scrolls sideways. Returns the frames."""
    page.page.set_viewport_size({"width": width, "height": height})
    # the views follow the window once it has settled (failing that, the asserts say how)
    with contextlib.suppress(PlaywrightTimeoutError):
        page.page.wait_for_function(
            f"() => {{ const frames = Object.values(({FRAMES})());"
            " return frames.every((f) => Math.abs(f.width - f.height) <= 1)"
            " && document.scrollingElement.scrollWidth <= window.innerWidth; }",
            timeout=10_000,
        )  # fmt: skip
    frames = page.js(FRAMES)
    scroll = page.js("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
    for name, f in frames.items():
        assert abs(f["width"] - f["height"]) <= 1, (width, name, f)
        per_px = (f["dx"] / f["width"], f["dy"] / f["height"])
        assert per_px[0] == pytest.approx(per_px[1], rel=0.01), (width, name, f)
        assert f["width"] >= 240, (width, name, f)  # still a useful picture
    assert scroll[0] <= scroll[1], f"the page scrolls sideways at {width}x{height}: {scroll}"
    return frames


def test_views_stay_square_and_the_page_fits_the_window(app, page):
    page.set_viewport_size({"width": 1024, "height": 768})
    shown = app()
    small = check_square_and_fits(shown, 1024, 768)
    # both views above the fold of a projector's 768 lines
    assert shown.box("density_fig")["y"] + shown.box("density_fig")["height"] <= 768
    check_square_and_fits(shown, 1280, 800)
    wide = check_square_and_fits(shown, 1500, 1700)
    assert wide["particle_fig"]["width"] == 400  # the full size where it fits
    assert small["particle_fig"]["width"] < 400
    check_square_and_fits(shown, 1920, 1080)
    assert shown.errors == []


def csv_of(n: int) -> bytes:
    xy = np.random.default_rng(0).uniform(-3, 3, (n, 2))
    return ("x,y\n" + "\n".join(f"{x:.3f},{y:.3f}" for x, y in xy)).encode()


def test_long_sidebar_lines_wrap_instead_of_being_cut(app, page):
    page.set_viewport_size({"width": 1024, "height": 768})
    shown = app()
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "many.csv", "mimeType": "text/csv", "buffer": csv_of(5000)}]
    )
    status = "too many to keep in the link"
    page.get_by_text(status).first.wait_for(timeout=30_000)
    assert shown.js(CLIPPED, [status, "Upload (.csv"]) == []
    assert shown.errors == []


CHECKBOXES = ["Contours", "colour particles by carried log-density", "fit into the view"]


def test_clicking_a_checkbox_label_toggles_it(app, page):
    shown = app()
    active = "(label) => " + MODEL.format("(m) => m.type === 'Checkbox' && m.label === label")
    for label in CHECKBOXES:
        before = shown.js(active + ".active", label)
        text = page.get_by_text(label, exact=True)
        box = text.bounding_box()
        # on the text itself, well right of the 13 px box
        text.click(position={"x": box["width"] - 5, "y": box["height"] / 2})
        page.wait_for_function(
            f"([label, before]) => ({active})(label).active !== before", arg=[label, before]
        )
    assert shown.errors == []


SLIDER = "(start) => " + MODEL.format("(m) => m.type === 'Slider' && m.title.startsWith(start)")


def test_controls_show_what_is_in_effect_and_the_notice_warns(app, page):
    # a constant β = 1 keeps a(1) = e^-0.5 of the data at the noise end
    shown = app("?process=vp&schedule=constant&beta_min=0&beta_max=2")
    notice = page.locator(".flowscope-notice").filter(has_text="does not reach pure noise")
    notice.wait_for(timeout=30_000)
    assert notice.bounding_box()["y"] < shown.box("particle_fig")["y"]  # at the top
    eta = shown.js(SLIDER + ".value", "η")
    assert eta == 0 and shown.js(SLIDER + ".disabled", "η")  # the ODE runs with η = 0
    assert not shown.js(SLIDER + ".disabled", "β_max")
    shown.store_marker()
    page.locator("select").filter(has_text="shifted cosine").select_option(label="cosine")
    shown.wait_store_changed()
    for beta in ("β_min", "β_max"):  # the cosine schedule is made without them
        assert shown.js(SLIDER + ".disabled", beta), beta
    notice.wait_for(state="hidden")  # a(1) = 0.01: nothing to warn of
    shown.store_marker()
    page.get_by_role("button", name="SDE", exact=True).click()
    shown.wait_store_changed()
    assert shown.js(SLIDER + ".value", "η") == 1 and not shown.js(SLIDER + ".disabled", "η")
    assert shown.errors == []


BODY_STATE = "() => [window.__body_styles, document.body.getAttribute('style') || '', " \
             "window.getSelection().toString()]"  # fmt: skip


def test_a_slider_drag_leaves_the_pages_style_alone_and_selects_no_text(app, page):
    """A drag changed the body's inline style at its start and its release (user-select,
    cursor), which restyled every element of the page (static/steady_body.js); the pointer
    crosses the sidebar's text on the way and selects none of it."""
    page.set_viewport_size({"width": 1500, "height": 1000})
    shown = app("?steps=20&kind=sde&eta=0.5")  # the first slider, η, in the middle of its range
    shown.js("""() => { window.__body_styles = 0;
        new MutationObserver((changes) => { window.__body_styles += changes.length; })
          .observe(document.body, {attributes: true, attributeFilter: ['style']}); }""")
    handle = shown.page.locator(".noUi-handle >> visible=true").first
    before = handle.get_attribute("aria-valuenow")
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    mouse = shown.page.mouse
    mouse.move(x, y)
    mouse.down()
    mouse.move(x + 30, y + 150, steps=6)  # down across the sidebar's text
    during = shown.js(BODY_STATE)
    mouse.move(x + 40, y, steps=3)
    mouse.up()
    shown.page.wait_for_timeout(200)
    assert handle.get_attribute("aria-valuenow") != before  # the drag moved the slider
    assert during == [0, "", ""] and shown.js(BODY_STATE) == [0, "", ""]
    assert shown.errors == []

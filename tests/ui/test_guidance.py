"""Browser: choosing a class guides the run (its particles, its readout, its link); hovering
either view shows p(c | x_t); a guided link restores its settings; the controls follow the
kind of guidance."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ui

READOUT = "() => Bokeh.documents[0].get_model_by_name('posterior_readout').data.text[0]"


def class_select(page):
    return page.page.locator("select").filter(has_text="0: upper moon")


def hover_text(page, figure: str, fx: float, fy: float) -> str:
    """Move the mouse to (fx, fy) of ``figure``'s box (fractions) and read the readout."""
    box = page.box(figure)
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    page.page.mouse.move(x - 3, y - 3)
    page.page.mouse.move(x, y)
    page.page.wait_for_function(f"() => ({READOUT[6:]}).length > 0", timeout=10_000)
    return page.js(READOUT)


def test_choosing_a_class_guides_the_run_and_hover_shows_the_posterior(app):
    page = app("?dataset=moons&steps=20&particles=500")
    page.settled()
    page.store_marker()
    select = class_select(page)
    select.scroll_into_view_if_needed()
    select.select_option(label="1: lower moon")
    page.wait_store_changed()
    page.wait_url("guidance_class=1", "posterior=true")
    page.page.get_by_text("in class 1").wait_for(timeout=15_000)
    # every particle of a conditional run ends on the lower moon (colour label 1)
    page.pause_at(20)
    labels = page.model_data("particles", "label")
    assert sum(1 for v in labels if v == 1) >= 0.98 * len(labels)

    page.js("() => window.scrollTo(0, 0)")
    text = hover_text(page, "density_fig", 0.7, 0.6)  # right of centre, below: the lower moon
    assert "p(c | x, t = 0.00)" in text and "lower moon" in text and "upper moon" in text
    lower = float(text.split("lower moon")[1].split()[0])
    assert lower > 0.9
    text = hover_text(page, "particle_fig", 0.3, 0.35)  # left, above: the upper moon
    assert float(text.split("upper moon")[1].split()[0]) > 0.9
    assert page.errors == []


def test_a_guided_link_restores_its_settings(app):
    page = app("?dataset=moons&guidance_class=0&guidance_weight=3&steps=20&particles=500")
    page.settled()
    assert class_select(page).evaluate("(s) => s.options[s.selectedIndex].text") == \
        "0: upper moon"  # fmt: skip
    page.page.get_by_text("weight w (1 = conditional): 3").wait_for(timeout=10_000)
    page.page.get_by_text("Classifier-free guidance toward class 0").wait_for(timeout=10_000)
    page.page.get_by_text("in class 0").wait_for(timeout=15_000)
    assert page.errors == []


def test_the_controls_follow_the_kind_of_guidance(app):
    page = app("?steps=20&particles=500")
    page.settled()
    kind = page.page.locator("select").filter(has_text="classifier-free (CFG)")
    kind.scroll_into_view_if_needed()
    lam = page.page.get_by_text("λ (divergence guidance)")
    assert not lam.is_visible()
    page.store_marker()
    kind.select_option(label="divergence ∇(∇·v)")
    page.wait_store_changed()
    lam.wait_for(state="visible", timeout=10_000)
    assert page.page.get_by_text("Hutchinson's estimate (one probe)").is_visible()
    assert not page.page.get_by_text("weight w (1 = conditional)").is_visible()
    page.wait_url("guidance_kind=divergence")
    # the SDE cannot take it: the controls are disabled and the note says why
    page.page.get_by_role("button", name="SDE").click()
    page.page.get_by_text("Divergence guidance adds to an ODE step").wait_for(timeout=10_000)
    assert kind.is_disabled()
    assert page.errors == []


def test_the_class_map_shows_where_points_come_from(app):
    """The heatmap's "p(class | x)": p(c | x_t) of the guided class on one scale (255 = 1)."""
    page = app("?dataset=moons&guidance_class=1&density_source=posterior&steps=20&particles=500")
    page.page.wait_for_function(
        "() => { const s = Bokeh.documents[0].get_model_by_name('image_store').data.posterior;"
        " return s.length && s[0].shape[0] === 21; }", timeout=30_000)  # fmt: skip
    page.pause_at(20)
    assert page.model_data("peak_label", "text")[0] == "p(class 1 | x_t): 0 … 1"
    # at t = 0 the lower moon's side is class 1 (bright), the upper moon's is not (dark)
    image = page.js("() => Array.from(Bokeh.documents[0].get_model_by_name('heat')"
                    ".data.image[0])")  # fmt: skip
    side = int(len(image) ** 0.5)
    rows = [image[r * side : (r + 1) * side] for r in range(side)]  # row 0 at y = −4
    lower, upper = rows[side * 3 // 8][side * 5 // 8], rows[side * 5 // 8][side * 3 // 8]
    assert lower > 240 and upper < 15
    assert page.errors == []

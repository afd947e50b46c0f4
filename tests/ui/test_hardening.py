"""The page as an attacker and a careless user would open it: links with markup, booleans and
garbage in every value, a cleared seed box, a run that blows up. No dialog, no element made from
a URL, no traceback on the page or in the server's log, and a notice that tells the truth."""

from __future__ import annotations

import html
import logging
from urllib.parse import parse_qs, quote, urlparse

import pytest
from playwright.sync_api import expect

from app.session.url import URL_PARAMS
from tests.ui.conftest import BUSY

ATTACKS = {
    "script": "?process=" + quote("<script>alert(1)</script>"),
    "img": "?dataset=" + quote("<img src=x onerror=alert(document.domain)>"),
    "link": "?dataset=" + quote('<a href="https://evil.example">click here to fix</a>'),
    "markdown": "?dataset=" + quote("[click here to fix](https://evil.example)"),
}
MALFORMED = {"bool": "true", "float": "2.5", "empty": "", "long": "9" * 5000}
# Every parameter at once, except that 19 values of 5,000 characters pass the HTTP server's
# 64 KB header limit (the request is refused before the app sees it): those go 7 at a time.
SWEEPS = [(label, URL_PARAMS) for label in ("bool", "float", "empty")] + [
    ("long", URL_PARAMS[i : i + 7]) for i in range(0, len(URL_PARAMS), 7)
]


@pytest.fixture
def server_errors():
    """Log records of level ERROR and above, from any logger, while the test runs."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.ERROR)
    root = logging.getLogger()
    root.addHandler(handler)
    yield records
    root.removeHandler(handler)


@pytest.fixture
def dialogs(page):
    seen: list[str] = []

    def dismiss(dialog):
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return seen


NOTICE = (
    "[...Bokeh.documents[0].all_models]"
    ".find((m) => m.css_classes && m.css_classes.includes('flowscope-notice'))"
)


def notice_text(page) -> str:
    """The notice's text as a person reads it, '' while hidden. (The model holds it escaped
    twice: once by flowscope, once by Panel for transport.)"""
    text = page.js(f"() => {{ const m = {NOTICE}; return m.visible ? m.text : ''; }}")
    return html.unescape(html.unescape(text))


def wait_notice_hidden(page) -> None:
    page.page.wait_for_function(f"() => !{NOTICE}.visible", timeout=10_000)


def search(page) -> str:
    return page.js("() => window.location.search")


@pytest.mark.parametrize("attack", ATTACKS)
def test_markup_in_a_link_is_shown_as_text_and_never_runs(app, dialogs, attack):
    page = app(ATTACKS[attack])
    page.page.get_by_text("Ignored URL values").wait_for(timeout=10_000)
    page.wait_url("steps=")  # the server's answer after the load: the URL it mirrored
    assert dialogs == []
    # Playwright's CSS locators pierce Bokeh's shadow roots
    assert page.page.locator("img[src='x']").count() == 0
    assert page.page.locator("a[href*='evil']").count() == 0
    assert page.page.locator("script:text('alert')").count() == 0
    text = page.page.get_by_text("Ignored URL values").inner_text()
    assert ("<" in text) or ("[click" in text), "the value is quoted literally, as text"
    assert "evil" not in search(page) and "script" not in search(page), "dropped from the URL"
    assert len(page.times()) == 101 and page.errors == []


@pytest.mark.parametrize(
    "label, names", SWEEPS, ids=[f"{label}-{names[0]}" for label, names in SWEEPS]
)
def test_every_parameter_malformed_at_once_gives_a_notice_not_a_traceback(
    app, dialogs, server_errors, label, names
):
    raw = MALFORMED[label]
    page = app("?" + "&".join(f"{name}={quote(raw)}" for name in names))
    page.page.get_by_text("Ignored URL values").wait_for(timeout=10_000)
    text = notice_text(page)
    assert f"{names[0]}=" in text and len(text) < 1000
    if len(raw) > 40:
        assert raw[:100] not in text, "a long value is quoted briefly"
    assert "Traceback" not in page.page.content()
    assert dialogs == [] and page.errors == []
    assert server_errors == [], [r.getMessage() for r in server_errors]
    assert len(page.times()) == 101  # the defaults, computed and shown
    query = parse_qs(urlparse(page.page.url).query, keep_blank_values=True)
    assert query["steps"] == ["100"] and query["seed"] == ["0"]


def test_the_notice_goes_when_the_value_is_fixed_and_the_url_is_clean(app):
    page = app("?steps=abc&dataset=moons")
    page.page.get_by_text("Ignored URL values").wait_for(timeout=10_000)
    assert "abc" not in search(page) and "dataset=moons" in search(page)
    page.store_marker()
    page.press_slider(1, "PageDown")  # the user sets steps
    page.wait_store_changed()
    wait_notice_hidden(page)
    again = app("?" + urlparse(page.page.url).query)  # reloading shows no notice
    # a notice of the link would come with the first run, which the page has drawn (app());
    # and the server is idle once it has landed
    again.page.wait_for_function(f"() => {BUSY} === 0", timeout=30_000)
    assert notice_text(again) == "" and again.errors == []


def test_whole_numbers_as_floats_are_accepted_and_the_url_is_canonical(app):
    page = app("?steps=1e2&particles=3000.0&beta_max=18.500000000000004&contours=true"
               "&process=vp")  # fmt: skip
    # the server's answer: the canonical URL it mirrored (a notice came with the first run)
    page.wait_url("steps=100")
    assert notice_text(page) == ""
    assert len(page.times()) == 101 and len(page.model_data("particles", "x")) == 3000
    query = parse_qs(search(page)[1:])
    assert query["beta_max"] == ["18.5"] and query["contours"] == ["true"]
    assert query["steps"] == ["100"] and query["particles"] == ["3000"]
    page.store_marker()
    page.press_slider(4, "ArrowLeft")  # β_max one step down
    page.wait_store_changed()
    page.wait_url("beta_max=18&")  # mirrored a moment after the run has landed (IDLE_MS)
    query = parse_qs(search(page)[1:])
    assert query["beta_max"] == ["18"] and query["contours"] == ["true"]
    assert page.errors == []


def test_clearing_the_seed_box_puts_the_seed_back_without_a_server_error(app, server_errors):
    page = app("?seed=7")
    seed = page.page.get_by_label("seed")
    seed.fill("")
    seed.press("Enter")
    expect(seed).to_have_value("7", timeout=10_000)  # put back by the server
    assert seed.input_value() == "7"
    assert "seed=7" in search(page)
    assert server_errors == [], [r.getMessage() for r in server_errors]
    assert page.errors == []


def test_a_run_that_sends_most_particles_away_says_why(app):
    page = app("?kind=sde&steps=1")
    page.page.get_by_text("left the view").wait_for(timeout=10_000)
    assert "too few steps" in notice_text(page)
    page.store_marker()
    page.press_slider(1, "PageUp")  # more steps: the warning goes
    page.wait_store_changed()
    wait_notice_hidden(page)
    assert page.errors == []


def test_time_and_peak_labels_are_drawn_above_the_arrows(app):
    """The labels are painted on each view's upper canvas (static/layer.js), which lies in the
    plot's overlays, after (above) the canvas Bokeh draws the arrows on, and they show."""
    page = app("?overlay=velocity")
    page.pause_at(3)
    layers = page.js(
        "() => { const out = {};"
        " for (const name of ['particle_fig', 'density_fig']) {"
        "  const m = Bokeh.documents[0].get_model_by_name(name); let v = null;"
        "  for (const root of Bokeh.index.roots) { v = v || root.owner.find_one(m); }"
        "  const cv = v.canvas_view, over = cv.overlays_el.querySelector('.flowscope-layer-over');"
        "  const kids = [...cv.shadow_el.children];"
        "  out[name] = {over: kids.indexOf(cv.overlays_el), primary: kids.indexOf(cv.primary.el),"
        "               arrows: m.center.filter((r) => r.type === 'Arrow').length,"
        "               ink: over ? over.getContext('2d').getImageData(4, 4, 120, 14).data"
        "                      .filter((a, k) => k % 4 === 3 && a > 0).length : 0}; }"
        " return out; }"
    )  # fmt: skip
    for name, fig in layers.items():
        assert fig["arrows"] and fig["over"] > fig["primary"] >= 0, (name, fig)
        assert fig["ink"] > 200, (name, fig)  # the label's backing and text are painted
    assert page.errors == []

"""Training in the page, in a real Chromium: the player keeps playing, progress and the loss
curve stream in, and after Stop the field trained here moves the particles."""

from __future__ import annotations

import html
import time

from tests.ui.conftest import BUSY, changed_fraction

SHOTS = "/tmp/flowscope-train-shots"  # screenshots to look at by hand (not checked)
PROGRESS = ("[...Bokeh.documents[0].all_models].find((m) => m.css_classes && "
            "m.css_classes.includes('flowscope-train-progress'))")  # fmt: skip
CURVE = "Bokeh.documents[0].get_model_by_name('loss_source')"
NOTICE = ("[...Bokeh.documents[0].all_models]"
          ".find((m) => m.css_classes && m.css_classes.includes('flowscope-notice'))")  # fmt: skip


def notice(page) -> str:
    text = page.js(f"() => {{ const m = {NOTICE}; return m.visible ? m.text : ''; }}")
    return html.unescape(html.unescape(text))


def shot(page, name: str) -> None:
    import os

    os.makedirs(SHOTS, exist_ok=True)
    page.page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


def test_training_in_the_page_while_the_player_keeps_playing(app):
    page = app("?dataset=moons&steps=60&particles=800&train_size=200")
    button = page.page.get_by_role("button", name="▶ start training")
    stop = page.page.get_by_role("button", name="■ stop", exact=True)
    frames = page.js("window.flowscope_frames")
    # enough steps that training is still going when stop is pressed, however fast the machine
    # (at the default 2,000 a fresh CI machine finished before the press)
    page.js("() => { const box = [...Bokeh.documents[0].all_models].find((m) =>"
            " m.title === 'Steps' && 'value' in m); box.value = 50000; }")  # fmt: skip
    page.page.wait_for_timeout(300)
    button.click()
    page.page.wait_for_function(f"() => {PROGRESS}.value > 0", timeout=30_000)
    page.page.get_by_text("/ 50,000").first.wait_for(timeout=20_000)  # the steps asked
    curve0 = page.js(f"() => {CURVE}.data.step.length")
    progress0 = page.js(f"() => {PROGRESS}.value")
    time.sleep(2.5)  # kept: what is tested is the frames painted in this time while training
    during = page.js("window.flowscope_frames") - frames
    assert during > 20, f"the player painted only {during} frames while training"
    assert page.js(f"() => {PROGRESS}.value") > progress0, "the progress bar did not move"
    assert page.js(f"() => {CURVE}.data.step.length") > curve0, "the loss curve did not grow"
    shot(page, "1-training")

    stop.click()
    page.page.wait_for_function(f"() => {PROGRESS}.value > 0 && "
                                "[...Bokeh.documents[0].all_models].some((m) => m.label === "
                                "'▶ start training' && !m.disabled)", timeout=20_000)  # fmt: skip
    # (the button comes back with the stopped run's weights: the job delivers them together)
    shot(page, "2-stopped")
    page.pause_at(60)
    exact = page.pixels("particle_fig")
    page.store_marker()
    page.page.locator("select").filter(has_text="learned (trained here)").select_option(
        label="learned (trained here)"
    )
    page.wait_store_changed()
    page.wait_url("field=trained")
    assert "no weights trained" not in notice(page) and "showing the exact" not in notice(page)
    page.pause_at(60)
    assert changed_fraction(exact, page.pixels("particle_fig")) > 0.01, "same picture as exact"
    shot(page, "3-trained-here")

    page.page.locator("select").filter(has_text="learned − exact").select_option(
        label="learned − exact (velocity)"
    )
    # the server's answer: the difference arrows shipped (after any notice about them)
    page.page.wait_for_function(
        "() => { const m = (n) => Bokeh.documents[0].get_model_by_name(n);"
        " return m('display_settings').data.overlay[0] === 'difference'"
        f" && 'difference' in m('arrow_store').data && {BUSY} === 0; }}",
        timeout=30_000,
    )
    assert "needs a learned field" not in notice(page)
    page.pause_at(50)
    shot(page, "4-difference")
    assert page.errors == []


def test_closing_the_page_stops_its_training(app, context):
    import threading

    def training() -> bool:
        return any(t.name == "flowscope-train" and t.is_alive() for t in threading.enumerate())

    assert not training()
    page = app("?dataset=8gaussians&steps=20&particles=300")
    # many steps: the run must be stopped by the session's end, not end by itself
    page.js("() => { [...Bokeh.documents[0].all_models].find((m) => m.title === 'Steps')"
            ".value = 100000; }")  # fmt: skip
    # the click reaches the server after the value (Panel applies a widget's pending changes
    # before an event); the progress bar's end shows the run took it
    page.page.get_by_role("button", name="▶ start training").click()
    page.page.wait_for_function(f"() => {PROGRESS}.value > 0 && {PROGRESS}.max === 100000",
                                timeout=30_000)  # fmt: skip
    assert training()
    page.page.close()  # the session ends when the server notices (Bokeh checks every few s)
    deadline = time.time() + 90
    while training() and time.time() < deadline:
        time.sleep(0.5)  # polls the server's threads (the page is closed: nothing to wait on)
    assert not training(), "the training thread outlived its session"


def test_another_pages_heaviest_training_does_not_hold_a_light_pages_change(app, context, server):
    """Page A trains with the heaviest settings the page allows (batch 4096, OT pairing); page
    B's steps change still lands in about a second. An exact OT assignment of 4096 pairs took
    36 s, and B's change waited 22-28 s behind it."""
    from tests.ui.conftest import STORE_XY, AppPage

    light = AppPage(context.new_page(), f"{server}/?dataset=moons&steps=40&particles=500")
    heavy = app("?dataset=moons&steps=20&particles=300")
    heavy.js(
        "() => { const ms = [...Bokeh.documents[0].all_models];"
        " ms.find((m) => m.title === 'Steps').value = 100000;"
        " ms.find((m) => m.title === 'Batch').value = 4096;"
        " ms.find((m) => m.label === 'OT pairing (minibatch)').active = true; }"
    )
    # (the click reaches the server after these values: Panel applies pending changes first)
    heavy.page.get_by_role("button", name="▶ start training").click()
    heavy.page.wait_for_function(
        "() => [...Bokeh.documents[0].all_models].some((m) => m.label === '■ stop' && !m.disabled)",
        timeout=20_000,
    )
    # training is well under way: a step of these settings done, with its steps
    heavy.page.wait_for_function(f"() => {PROGRESS}.value > 0 && {PROGRESS}.max === 100000",
                                 timeout=60_000)  # fmt: skip
    landed = []
    for _ in range(3):
        light.store_marker()
        light.press_slider(1, "ArrowRight")
        start = time.perf_counter()
        light.page.wait_for_function(f"() => {STORE_XY} !== window.__store", timeout=60_000)
        landed.append(time.perf_counter() - start)
        light.wait_store_changed()  # and drawn, the server idle, before the next change
    heavy.page.get_by_role("button", name="■ stop", exact=True).click()
    print(f"light page's steps change landed in {[round(s, 2) for s in landed]} s")
    # the target is 1.5 s (benchmarks measure it); this bound leaves room for a loaded machine
    assert max(landed) < 4.0, landed
    assert light.errors == [] and heavy.errors == []

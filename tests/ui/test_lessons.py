"""The Lessons menu in a real Chromium: every scene opens and paints its own picture, prev /
next step through them, the caption hides, a link keeps its lesson, and a teacher's own file
is served (a bad one is refused in a notice while the page works on)."""

from __future__ import annotations

from app.session.lessons import BUILT_IN, ENV_VAR, load_lessons
from tests.ui.conftest import BUSY, changed_fraction
from tests.ui.test_links import wait_notice

MENU = ".flowscope-lesson-menu select"
CAPTION = "[...Bokeh.documents[0].all_models].find((m) => m.css_classes && " \
          "m.css_classes.includes('flowscope-lesson-caption'))"  # fmt: skip


def caption(page) -> str:
    """The caption's text as the page holds it, '' while hidden."""
    return page.js(f"() => {{ const m = {CAPTION}; return m.visible ? m.text : ''; }}")


def wait_scene(page, number: int, title: str) -> None:
    """Until scene ``number``'s run has landed and been drawn, and its caption shows."""
    page.wait_url(f"lesson={number}")
    page.page.wait_for_function(
        f"(t) => {{ const m = {CAPTION}; return m.visible && m.text.includes(t); }}",
        arg=title.replace("&", "&amp;"), timeout=10_000)  # fmt: skip
    page.settled()


def pause_at_end(page) -> None:
    """Pause the player on its last step (a run's last frame; in compare mode the timeline's,
    where both runs show their last frame), drawn."""
    page.page.wait_for_function(f"() => {BUSY} === 0", timeout=30_000)  # busy holds the player
    (end,) = page.player_props("end")
    page.player(direction=0)
    page.player(value=end)
    page.page.wait_for_function(
        """(end) => { const tl = Bokeh.documents[0].get_model_by_name('timeline');
          return tl && tl.data.at && tl.data.at.length ? tl.data.at[0] === end
            : window.flowscope_frame === end; }""", arg=end, timeout=10_000)  # fmt: skip
    page.settled()


def test_every_scene_opens_and_paints_its_own_picture(app):
    scenes = load_lessons(BUILT_IN)
    page = app("?steps=20")
    options = page.page.locator(f"{MENU} option").all_text_contents()
    assert options[1:] == [f"{i}. {s.title}" for i, s in enumerate(scenes, 1)]
    pause_at_end(page)  # playing, any frame could show
    before = page.pixels("particle_fig")
    for number, scene in enumerate(scenes, 1):
        page.store_marker()
        page.page.locator(MENU).select_option(label=options[number])
        page.wait_store_changed()
        wait_scene(page, number, scene.title)
        # the scene's settings are the page's, once mirrored (the lesson may show first)
        page.wait_url(*(f"{k}={v}" for k, v in scene.query.items() if k != "compare"))
        pause_at_end(page)  # frame 0 of two reverse runs is the same noise
        shown = page.pixels("particle_fig")
        assert (shown.std(axis=(0, 1)) > 10).any(), scene.title  # particles painted
        assert changed_fraction(before, shown) > 0.01, scene.title  # a picture of its own
        before = shown
    assert page.errors == []


def test_prev_and_next_step_through_the_lessons_and_the_caption_hides(app):
    scenes = load_lessons(BUILT_IN)
    page = app()
    prev = page.page.locator(".flowscope-lesson-prev button")
    nxt = page.page.locator(".flowscope-lesson-next button")
    assert caption(page) == ""
    nxt.click()
    wait_scene(page, 1, scenes[0].title)
    assert prev.is_disabled()
    nxt.click()
    nxt.click()
    wait_scene(page, 3, scenes[2].title)
    prev.click()
    wait_scene(page, 2, scenes[1].title)
    page.wait_url("process=vp", "kind=sde")
    page.page.locator(".flowscope-lesson-switch input").uncheck()
    page.page.wait_for_function(f"() => !{CAPTION}.visible")
    page.page.locator(".flowscope-lesson-switch input").check()
    page.page.wait_for_function(f"() => {CAPTION}.visible")
    assert page.errors == []


def test_a_link_opens_on_its_lesson_with_the_links_own_settings(app):
    scenes = load_lessons(BUILT_IN)
    page = app("?process=vp&steps=30&lesson=2")
    assert scenes[1].title in caption(page)
    assert "steps=30" in page.wait_url("lesson=2")
    page = app("?lesson=99")
    assert "There is no lesson '99' here" in wait_notice(page, "no lesson")


def test_a_teachers_own_file_is_served_and_a_bad_one_is_refused(app, tmp_path, monkeypatch):
    mine = tmp_path / "mine.toml"
    text = (
        '[[scene]]\ntitle = "Moons, slowly"\nlink = "?dataset=moons&steps=25"\n'
        'caption = "Watch the <b>moons</b> form. $x_t$ moves."\n'
    )
    mine.write_text(text, encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(mine))
    page = app()
    options = page.page.locator(f"{MENU} option").all_text_contents()
    assert options[1:] == ["1. Moons, slowly"]
    page.page.locator(MENU).select_option(label=options[1])
    wait_scene(page, 1, "Moons, slowly")
    page.wait_url("dataset=moons", "steps=25")  # the lesson may be mirrored first
    text = caption(page)
    assert "&lt;b&gt;moons&lt;/b&gt;" in text  # shown as typed, never as markup
    mine.write_text('[[scene]]\ntitle = "Broken"\nlink = "?steps=many"\ncaption = "c"\n',
                    encoding="utf-8")  # fmt: skip
    page = app("?steps=20")
    words = wait_notice(page, "lessons could not be opened")
    assert "scene 1 ('Broken'): field 'link': steps='many'" in words, words
    assert page.page.locator(MENU).count() == 0  # no menu without lessons
    assert page.errors == []

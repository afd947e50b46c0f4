"""Lessons: the built-in scenes make runs, a teacher's file is checked whole, bad ones are named."""

from __future__ import annotations

import pytest

from app.session.compare import Comparison
from app.session.lessons import (
    BUILT_IN,
    ENV_VAR,
    MAX_FILE_BYTES,
    LessonError,
    Scene,
    load_lessons,
    read_lessons,
)
from app.session.links import valid
from app.session.state import FlowState
from app.session.url import URL_PARAMS
from app.ui.lesson_bar import LessonBar, caption_html

GOOD = """
[[scene]]
title = "Forward"
link = "?process=vp&direction=forward&kind=sde"
caption = "Data into noise, $dx = f\\\\,dt + g\\\\,dW$."

[[scene]]
title = "Reverse, compared"
link = "http://localhost:5006/?steps=20&compare=true&b_kind=sde"
caption = "Two runs."
"""


def _session() -> tuple[FlowState, Comparison]:
    state = FlowState()
    return state, Comparison(state)


def test_the_built_in_lessons_tell_the_story_and_every_scene_makes_a_run():
    scenes = load_lessons(BUILT_IN)
    assert 10 <= len(scenes) <= 16
    titles = " ".join(s.title.lower() for s in scenes)
    topics = (
        "noise",
        "reverse sde",
        "probability-flow",
        "continuity",
        "fokker",
        "flow matching",
        "schedule",
        "sampler",
        "memorization",
        "compare",
        "guidance",
    )
    for topic in topics:
        assert topic in titles, topic
    for scene in scenes:
        state, comparison = _session()
        assert scene.apply(state, comparison) == "", scene.title
        assert valid(state) == "", scene.title
        if comparison.on:
            assert comparison.changes and valid(comparison.b) == "", scene.title
        sentences = " ".join(scene.caption.split()).count(". ") + 1
        assert 2 <= sentences <= 5 and len(scene.caption) < 600, scene.title


def test_a_scene_is_the_same_picture_whatever_was_shown_before():
    scenes = read_lessons(GOOD)
    state, comparison = _session()
    state.param.update(steps=7, seed=42, overlay="score", fps=60, dataset="moons")
    comparison.on = True
    scenes[0].apply(state, comparison)
    expected = {"process": "vp", "direction": "forward", "kind": "sde"}
    for name in URL_PARAMS:
        want = expected.get(name, state.param[name].default)
        assert getattr(state, name) == want, name
    assert not comparison.on
    scenes[1].apply(state, comparison)  # a whole URL is a link too
    assert state.steps == 20 and state.process == "fm" and comparison.on
    assert comparison.changes == {"kind": "sde"} and comparison.b.kind == "sde"


def test_a_drawn_data_set_is_kept_when_a_scene_shows_another():
    state, comparison = _session()
    import numpy as np

    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    state.param.update(points=points, dataset="points")
    read_lessons(GOOD)[0].apply(state, comparison)
    assert state.dataset == "8gaussians" and np.array_equal(state.points, points)


BAD = {
    "not TOML": ("[[scene]\ntitle = 1", "not a TOML file"),
    "no scenes": ("title = 'x'", "unknown top-level field 'title'"),
    "empty": ("", "no [[scene]] tables"),
    "unknown field": ("[[scene]]\ntitle='A'\nlink='?'\ncaption='c'\ncolour='red'",
                      "scene 1 ('A'): unknown field 'colour'"),
    "missing caption": ("[[scene]]\ntitle='A'\nlink='?'", "scene 1 ('A'): field 'caption' must "
                        "be text and is missing"),
    "number title": ("[[scene]]\ntitle=3\nlink='?'\ncaption='c'", "scene 1: field 'title'"),
    "bad value": ("[[scene]]\ntitle='A'\nlink='?'\ncaption='c'\n[[scene]]\ntitle='B'\n"
                  "link='?steps=abc'\ncaption='c'", "scene 2 ('B'): field 'link': steps='abc' "
                  "is not a value of that setting (1 to 1000)"),
    "bad choice": ("[[scene]]\ntitle='A'\nlink='?overlay=wind'\ncaption='c'",
                   "overlay='wind' is not a value of that setting (one of: none, velocity"),
    "bad B value": ("[[scene]]\ntitle='A'\nlink='?compare=true&b_steps=0'\ncaption='c'",
                    "b_steps='0'"),
    "typo": ("[[scene]]\ntitle='A'\nlink='?stpes=10'\ncaption='c'",
             "field 'link' names no setting 'stpes'"),
    "together": ("[[scene]]\ntitle='A'\nlink='?dataset=points'\ncaption='c'",
                 "field 'link': This link names your own points but carries none"),
    "long caption": ("[[scene]]\ntitle='A'\nlink='?'\ncaption='" + "x" * 2000 + "'",
                     "field 'caption' is longer than 1200 characters"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_refused_naming_the_scene_and_the_field(case):
    text, words = BAD[case]
    with pytest.raises(LessonError) as info:
        read_lessons(text, origin="mine.toml")
    message = str(info.value)
    assert message.startswith("mine.toml") and words in message, message
    assert "\n" not in message


def test_files_that_cannot_be_read_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00[[scene]]")
    cases = (
        (big, "larger than"),
        (binary, "cannot be read"),
        (tmp_path, "not a file"),
        (tmp_path / "none.toml", "not a file"),
    )
    for path, words in cases:
        with pytest.raises(LessonError, match=words):
            load_lessons(path)


def test_the_served_file_is_the_one_the_environment_names_and_is_read_again_once_edited(
    tmp_path, monkeypatch
):
    mine = tmp_path / "mine.toml"
    mine.write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(mine))
    assert [s.title for s in load_lessons()] == ["Forward", "Reverse, compared"]
    mine.write_text(GOOD.replace("Forward", "Forward, edited") + "\n", encoding="utf-8")
    assert load_lessons()[0].title == "Forward, edited"
    monkeypatch.delenv(ENV_VAR)
    assert len(load_lessons()) == len(load_lessons(BUILT_IN))


def test_the_caption_is_text_and_only_its_equations_are_typeset():
    scene = Scene("<b>bold</b> & co", "Look <script>alert(1)</script> at $p < q$.", {})
    shown = caption_html(3, scene)
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert shown.startswith("<b>3. &lt;b&gt;bold&lt;/b&gt; &amp; co</b>")
    assert "$p &lt; q$" in shown  # KaTeX reads the text node: p < q


def test_prev_and_next_step_through_the_scenes_and_stop_at_the_ends():
    state, comparison = _session()
    told = []
    bar = LessonBar(state, comparison, read_lessons(GOOD), tell=told.append)
    bar.view()
    bar.next()
    assert bar.index == 1 and state.process == "vp"
    bar.next()
    bar.next()
    assert bar.index == 2 and state.steps == 20 and comparison.on
    bar.previous()
    bar.previous()
    assert bar.index == 1 and not comparison.on
    bar.go(99)
    assert bar.index == 2
    bar.go(0)  # back to free exploration: the settings stay
    assert bar.index == 0 and state.steps == 20
    assert told == []


def test_serve_refuses_a_bad_lessons_file_in_one_line_before_serving(tmp_path, capsys):
    from app.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[scene]]\ntitle = "A"\nlink = "?steps=zz"\ncaption = "c"\n', encoding="utf-8")
    for path, words in ((bad, "scene 1 ('A'): field 'link': steps='zz'"),
                        (tmp_path / "none.toml", "not a file")):  # fmt: skip
        assert main(["serve", "--lessons", str(path), "--port", "1"]) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1, err

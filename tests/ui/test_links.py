"""Links that name your own points without carrying usable ones, and settings that pass one by
one but not together: every other value of the link holds, and the notice says what was wrong
with the points. A page whose points are too many for a link says so, and its link opens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from tests.ui.test_hardening import notice_text
from tests.ui.test_user_data import upload


def wait_notice(page, *words: str) -> str:
    page.page.wait_for_function(
        "(words) => { const m = [...Bokeh.documents[0].all_models].find((m) => m.css_classes"
        " && m.css_classes.includes('flowscope-notice')); return m && m.visible &&"
        " words.every((w) => m.text.includes(w)); }", arg=list(words), timeout=40_000)  # fmt: skip
    return notice_text(page)


def query(page, *fragments: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.wait_url(*fragments)).query).items()}


@pytest.mark.parametrize("pts, words", [
    ("&pts=garbage", "are damaged"),
    ("", "carries none"),
])  # fmt: skip
def test_a_link_without_usable_points_keeps_every_other_setting(app, pts, words):
    page = app(f"?process=vp&steps=50&direction=forward&dataset=points{pts}")
    text = wait_notice(page, words)
    assert "Showing 8 gaussians instead" in text, text
    assert "defaults" not in text, text
    values = query(page, "process=vp", "steps=50")
    assert values["direction"] == "forward" and values["dataset"] == "8gaussians"
    assert "pts" not in values
    assert page.errors == []


def test_too_many_points_for_a_link_say_so_and_the_link_still_opens(app, context, server):
    page = app("?steps=30")
    page.store_marker()
    rng = np.random.default_rng(1)
    points = rng.normal(0, 1, (5000, 2))
    upload(page, "many.csv", ("x,y\n" + "\n".join(f"{x:.4f},{y:.4f}" for x, y in points)).encode())
    page.wait_store_changed()
    status = page.page.get_by_text("too many to keep in the link")
    status.wait_for(timeout=20_000)
    assert "other settings" in status.inner_text()
    link = page.wait_url("dataset=points", "steps=30")
    assert "pts=" not in link
    from tests.ui.conftest import AppPage

    second = AppPage(context.new_page(), link)
    text = wait_notice(second, "carries none")
    assert "at most 3,000" in text, text
    assert query(second, "steps=30")["dataset"] == "8gaussians"
    assert second.errors == []

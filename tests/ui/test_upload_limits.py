"""An upload far over the limit is refused by the page before it is sent: sent, its message
would pass the server's websocket limit and close the page's connection without a word."""

from __future__ import annotations

from tests.ui.conftest import BUSY
from tests.ui.test_hardening import notice_text
from tests.ui.test_user_data import upload


def test_a_file_far_over_the_limit_is_refused_and_the_page_stays_connected(app):
    page = app("?steps=40")
    big = b"x,y\n" + b"1.0,2.0\n" * 1_750_000  # 14 MB: ~18.7 MB once encoded for the socket
    upload(page, "huge.csv", big)
    page.page.get_by_text("Upload refused").wait_for(timeout=30_000)
    text = notice_text(page)
    assert "huge.csv: 13.4 MB" in text and "up to 5 MB" in text, text
    # the connection holds: a setting still reaches the server and its run comes back
    page.store_marker()
    page.press_slider(1, "ArrowRight")
    page.wait_store_changed()
    page.wait_url("steps=")
    assert not [e for e in page.errors if "WEBSOCKET" in e.upper() or "not connected" in e]
    assert page.errors == []


def test_the_same_file_uploaded_again_after_clear_loads_again(app):
    page = app("?steps=30")
    points = b"x,y\n" + b"".join(f"{i / 50 - 1},{(i % 7) / 7}\n".encode() for i in range(100))
    page.store_marker()
    upload(page, "good.csv", points)
    page.page.get_by_text("100 points, kept in the page's link").wait_for(timeout=30_000)
    page.wait_store_changed()
    # the click as the button's own event: in the full suite a pointer click on the sidebar's
    # (scrolled) button did not reach it, twice, while alone it always did
    clear = page.page.get_by_role("button", name="clear", exact=True)
    clear.wait_for()
    clear.dispatch_event("click")
    try:
        page.page.get_by_text("No points of your own yet").wait_for(timeout=30_000)
    except Exception as exc:  # what the page shows then, for the report
        shown = page.page.locator(".flowscope-upload").locator("xpath=..").inner_text(timeout=1_000)
        raise AssertionError(
            f"after clear: {shown!r}; errors {page.errors}; url "
            f"{page.page.url}; busy {page.js(f'() => {BUSY}')}"
        ) from exc
    page.store_marker()
    upload(page, "good.csv", points)
    page.page.get_by_text("100 points, kept in the page's link").wait_for(timeout=30_000)
    page.wait_store_changed()
    assert "dataset=points" in page.wait_url("dataset=points")
    assert page.errors == []

"""The notice above the views: a one-line message for the user, always shown as plain text.

Messages quote untrusted text (a value from a shared URL, an exception about a user's file), so
they never pass through Markdown or HTML: the text is escaped whole and shown in an HTML pane.
Panel's Alert pane renders Markdown, which passes raw HTML and makes links: a URL value like
``<img src=x onerror=...>`` ran script through it.
"""

from __future__ import annotations

import html

import panel as pn
import param

MAX_CHARS = 400  # a longer message is cut: nothing from outside may run off the page
STYLE = {
    "background": "#fff3cd", "color": "#664d03", "border": "1px solid #ffe69c",
    "border-radius": "6px", "padding": "6px 12px", "font-size": "13px",
    "overflow-wrap": "anywhere", "max-width": "900px",
}  # fmt: skip


def plain_html(text: str) -> str:
    """``text`` as HTML that shows exactly these characters, cut to ``MAX_CHARS``."""
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS - 1] + "…"
    return html.escape(text, quote=True)


class Notice(pn.viewable.Viewer):
    """Shows ``owner.<name>`` (a string parameter) as escaped text; hidden while empty."""

    owner = param.Parameter()
    name_of_text = param.String(default="notice")

    def __init__(self, **params):
        super().__init__(**params)
        self._pane = pn.pane.HTML("", styles=STYLE, visible=False, css_classes=["flowscope-notice"],
                                  sizing_mode="stretch_width", margin=(4, 10))  # fmt: skip
        self.owner.param.watch(self._show, [self.name_of_text])
        self._show()

    def _show(self, *_events) -> None:
        text = getattr(self.owner, self.name_of_text) or ""
        self._pane.object = plain_html(text)
        self._pane.visible = bool(text)

    def __panel__(self):
        return self._pane

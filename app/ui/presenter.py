"""Presenter mode: the views fill the window, square, in fonts a room can read; the sidebar and
everything under the player fold away. Toggled by its button or the P key (static/keys.js, which
also gives the lecture its keys: space, arrows, Home / End, F, [ ], 1 … 9).

The sizes are the page's (static/fit_views.js reads ``window.flowscope_present``); what is
hidden and the fonts are set here, on the server, so the page lays itself out once.
"""

from __future__ import annotations

from collections.abc import Callable

import panel as pn

from app.ui import client
from app.ui.theme import THEMES, page_styles, theme_figure

LARGE = {"title": "20px", "ticks": "15px", "axis": "16px"}
# after the toggle the page lays out the folded page: static/present.js sizes the views again
HELP = ("Presenter mode (P): the views fill the window. Keys: space play / pause, ← → step, "
        "Home / End, F fullscreen, [ ] previous / next lesson, 1 … 9 speed")  # fmt: skip


class Theme:
    """The light or dark theme of one page: its root's styles and every figure in it."""

    def __init__(self, root, figures: Callable[[], list]):
        """``root``: the page's outermost layout; ``figures()``: the page's figures now."""
        self.root, self.figures, self.name = root, figures, "light"
        self.switch = pn.widgets.Toggle(label="dark", value=False, width=60, margin=(8, 4),
                                        css_classes=["flowscope-theme"])  # fmt: skip
        self.switch.param.watch(lambda e: self.show("dark" if e.new else "light"), "value")

    def show(self, name: str) -> None:
        if name not in THEMES:
            raise ValueError(f"no theme {name!r}")
        self.name = name
        self.switch.value = name == "dark"
        self.root.styles = page_styles(name)
        for fig in self.figures():
            theme_figure(fig, name)


class Presenter:
    """The toggle, and what it folds and enlarges."""

    def __init__(self, fold: list, figures: list, on_change: Callable[[bool], None] | None = None):
        """``fold``: what presenter mode hides (the sidebar, the sections under the player);
        ``figures``: the Bokeh figures whose fonts grow; ``on_change(on)``: anything else."""
        self.fold, self.figures, self.on_change = fold, figures, on_change
        self._normal = [_fonts(f) for f in figures]
        self.toggle = pn.widgets.Toggle(label="present (P)", value=False, width=100,
                                        margin=(8, 0, 8, 10),
                                        css_classes=["flowscope-present"])  # fmt: skip
        self.toggle.jscallback(value=client.script("present"))
        self.help = pn.widgets.TooltipIcon(value=HELP, margin=(14, 10, 0, 4))
        self.toggle.param.watch(lambda event: self.show(event.new), "value")

    def show(self, on: bool) -> None:
        for part in self.fold:
            part.visible = not on
        for fig, normal in zip(self.figures, self._normal, strict=True):
            _set_fonts(fig, _large(normal) if on else normal)
        if self.on_change is not None:
            self.on_change(on)

    @staticmethod
    def keys():
        """The page's key handler, to run once the page is ready."""
        return client.callback("keys")


def _fonts(fig) -> dict:
    return {"title": fig.title.text_font_size,
            "ticks": [a.major_label_text_font_size for a in fig.axis],
            "axis": [a.axis_label_text_font_size for a in fig.axis]}  # fmt: skip


def _large(normal: dict) -> dict:
    return {"title": LARGE["title"], "ticks": [LARGE["ticks"]] * len(normal["ticks"]),
            "axis": [LARGE["axis"]] * len(normal["axis"])}  # fmt: skip


def _set_fonts(fig, fonts: dict) -> None:
    fig.title.text_font_size = fonts["title"]
    for axis, ticks, label in zip(fig.axis, fonts["ticks"], fonts["axis"], strict=True):
        axis.major_label_text_font_size = ticks
        axis.axis_label_text_font_size = label

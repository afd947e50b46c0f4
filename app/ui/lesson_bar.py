"""The Lessons menu above the views: pick a scene, step with prev / next, read its caption.

A scene sets every setting (its link's values over the defaults, app/session/lessons.py), so
it shows the same picture whatever was on screen. The caption is the teacher's text: it is
escaped whole and only its $…$ equations are typeset (KaTeX reads the escaped text back as
text), so no markup in a lessons file reaches the page as HTML.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import panel as pn
import param

from app.session.compare import Comparison
from app.session.lessons import Scene
from app.session.state import FlowState
from app.ui.controls import Checkbox, Select

NONE = "— explore freely —"
CAPTION_STYLE = {
    "font-size": "15px", "line-height": "1.45",
    "background": "var(--flowscope-caption, #f4f7fb)",  # the theme's (app/ui/theme.py)
    "border-left": "4px solid #3b6ea8", "padding": "4px 12px", "max-width": "980px",
}  # fmt: skip


def caption_html(number: int, scene: Scene) -> str:
    """The caption as HTML: '<b>n. title</b>' and the text, both escaped (equations stay
    $…$ for KaTeX, which reads the text with its entities decoded)."""
    title = html.escape(f"{number}. {scene.title}", quote=True)
    body = html.escape(" ".join(scene.caption.split()), quote=True)
    return f"<b>{title}</b><br>{body}"


class LessonBar(param.Parameterized):
    """The scenes of one session and which one is shown (0: none, free exploration)."""

    index = param.Integer(default=0, bounds=(0, None), doc="The scene shown, from 1; 0: none")
    show_caption = param.Boolean(default=True, doc="Show the scene's caption above the views")
    large = param.Boolean(default=False, doc="The caption in presenter mode's large type")

    def __init__(self, state: FlowState, comparison: Comparison, scenes: list[Scene],
                 tell: Callable[[str], None] | None = None, **params):  # fmt: skip
        super().__init__(**params)
        self.param.index.bounds = (0, len(scenes))
        self.state, self.comparison, self.scenes = state, comparison, scenes
        self._tell = tell or (lambda text: setattr(state, "notice", text))

    def go(self, index: int) -> None:
        """Show scene ``index`` (from 1; clamped to the scenes): its settings and caption."""
        index = min(max(int(index), 0), len(self.scenes))
        self.index = index
        if index:
            notice = self.scenes[index - 1].apply(self.state, self.comparison)
            if notice:  # a scene was checked when its file was read: only a changed world
                self._tell(notice)

    def previous(self) -> None:
        self.go(max(self.index - 1, 1))

    def next(self) -> None:
        self.go(min(self.index + 1, len(self.scenes)))

    def enlarge(self, on: bool) -> None:
        """Large type for the caption (presenter mode), or the normal one."""
        self.large = on

    def view(self) -> pn.viewable.Viewable:
        """The menu, prev / next, the caption's switch, and the caption (nothing without
        scenes: a lessons file that could not be used, said in the notice)."""
        if not self.scenes:
            return pn.Column(name="lessons")
        options = {NONE: 0, **{f"{i}. {s.title}": i for i, s in enumerate(self.scenes, 1)}}
        menu = Select(label="", options=options, value=self.index, width=330,
                      margin=(4, 10), css_classes=["flowscope-lesson-menu"])  # fmt: skip
        prev = pn.widgets.Button(label="◀ prev", width=70, margin=(4, 2),
                                 css_classes=["flowscope-lesson-prev"])  # fmt: skip
        nxt = pn.widgets.Button(label="next ▶", width=70, margin=(4, 2),
                                css_classes=["flowscope-lesson-next"])  # fmt: skip
        switch = Checkbox.from_param(self.param.show_caption, name="caption", margin=(10, 10),
                                     css_classes=["flowscope-lesson-switch"])  # fmt: skip
        caption = pn.pane.LaTeX("", styles=CAPTION_STYLE, margin=(2, 10),
                                sizing_mode="stretch_width",
                                css_classes=["flowscope-lesson-caption"])  # fmt: skip

        def shown(*_events) -> None:
            menu.value = self.index
            prev.disabled = self.index <= 1
            nxt.disabled = self.index >= len(self.scenes)
            if self.index:
                caption.object = caption_html(self.index, self.scenes[self.index - 1])
            caption.visible = bool(self.index) and self.show_caption

        def picked(event) -> None:
            if event.new != self.index:
                self.go(event.new)

        menu.param.watch(picked, "value")
        prev.on_click(lambda _e: self.previous())
        nxt.on_click(lambda _e: self.next())
        self.param.watch(shown, ["index", "show_caption"])
        self.param.watch(lambda e: setattr(caption, "styles", CAPTION_STYLE | (
            {"font-size": "19px", "max-width": "none"} if e.new else {})), "large")  # fmt: skip
        shown()
        label = pn.pane.Markdown("**Lessons**", margin=(8, 0, 0, 10))
        return pn.Column(pn.Row(label, menu, prev, nxt, switch), caption,
                         sizing_mode="stretch_width", name="lessons")  # fmt: skip

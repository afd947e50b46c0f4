"""The page's JavaScript. Every script is a file in ``static/`` (read once); this module is
the one place that loads them and builds the callbacks that draw a frame with ``render.js``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bokeh.models import CustomJS

STATIC = Path(__file__).parent / "static"


@functools.cache
def script(name: str) -> str:
    """The text of ``static/<name>.js``."""
    return (STATIC / f"{name}.js").read_text()


def callback(name: str, **args) -> CustomJS:
    """A Bokeh callback running ``static/<name>.js`` with ``args`` in scope."""
    return CustomJS(args=args, code=script(name))


def draw_code(frame: str, before: tuple[str, ...] = ()) -> str:
    """The code that draws frame ``frame`` (a JavaScript expression) with ``render.js``, after
    the scripts named in ``before`` (which may return early: nothing is then drawn)."""
    # layer.js and paint.js define the views' canvases and their painters, once per page
    return script("layer") + script("paint") + "".join(script(name) for name in before) + \
        f"const frame = {frame};\n" + script("render")  # fmt: skip


def draw(args: dict, frame: str, before: tuple[str, ...] = ()) -> CustomJS:
    """A Bokeh callback drawing frame ``frame``; ``args`` are the views' stores
    (``FlowViews.js_args``)."""
    return CustomJS(args=args, code=draw_code(frame, before))

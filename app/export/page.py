"""A standalone HTML page: both views and a player, animating client-side from disk.

It reuses the app's own figures and client renderer (``FlowViews`` and ``static/render.js``):
the run is packed once into the page exactly as the app ships it, and a Bokeh slider and
play/pause toggle drive render.js with no server. Resources are inlined
(:class:`InlineCore`), so the page needs no network either.
"""

from __future__ import annotations

from pathlib import Path

from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import Div, Slider, Toggle
from bokeh.resources import Resources

from app.export import ExportSettings
from app.export.caption import settings_text
from app.session.state import FlowState
from app.ui import client
from app.ui.views import FlowViews
from models.run.result import RunResult


class InlineCore(Resources):
    """Bokeh's own JS and CSS, inlined, and nothing else. Bokeh also lists the external scripts
    of every model class imported (Panel's, imported with the app's views), whether the page
    uses them or not; from disk and offline they only fail to load."""

    def _collect_external_resources(self, resource_attr) -> list:
        return []

    def clone(self, *, components=None) -> InlineCore:  # Bokeh's clone returns a plain one
        return InlineCore(mode="inline", components=components or list(self.components))


PLAYING, PAUSED = "❚❚ pause", "▶ play"


def page_views(result: RunResult, settings: ExportSettings, arrows: dict | None) -> FlowViews:
    """The app's two views of ``result`` as ``settings`` show it, each plotting area
    ``settings.size`` px square."""
    overlay = settings.overlay if arrows is not None else "none"
    state = FlowState(trail=settings.trail, density_source=settings.density_source,
                      fps=settings.fps, contours=settings.contours, overlay=overlay,
                      arrows=arrows, shade=settings.shade, result=result)  # fmt: skip
    views = FlowViews(state=state)
    for fig in (views.particle_fig, views.density_fig):
        fig.frame_width = fig.frame_height = settings.size
    return views


def standalone_html(result: RunResult, settings: ExportSettings, arrows: dict | None = None) -> str:
    """The page as a string: ``settings.size`` is each view's plotting area in px; contour
    lines and the field overlay (``arrows``, as ``FlowState.arrows``) as the settings say."""
    size, fps = settings.size, settings.fps
    views = page_views(result, settings, arrows)
    last = len(result.times) - 1
    slider = Slider(start=0, end=max(last, 1), value=0, step=1, title="frame",
                    width=max(2 * size - 20, 200), disabled=last == 0)  # fmt: skip
    toggle = Toggle(label=PLAYING, active=last > 0, width=100, name="play")
    args = views.js_args()
    slider.js_on_change("value", client.draw(args, "cb_obj.value"))
    play = {"slider": slider, "toggle": toggle, "interval": round(1000 / fps),
            "playing": PLAYING, "paused": PAUSED}  # fmt: skip
    toggle.js_on_change("active", client.callback("play", **play))
    note = Div(text=settings_text(result), render_as_text=True, styles={"color": "#555"})
    doc = Document()
    doc.add_root(column(row(views.particle_fig, views.density_fig), row(toggle, slider), note))
    # first paint, then play (render.js may return early, so it goes last)
    doc.js_on_event(
        "document_ready",
        client.draw({**args, **play}, "0", before=("play",)),
    )
    return file_html(doc, InlineCore(mode="inline"), title="flowscope: " + settings_text(result))


def write_html(result: RunResult, path: Path, settings: ExportSettings, arrows=None,
               progress=None) -> None:  # fmt: skip
    """Write :func:`standalone_html` to ``path`` (UTF-8)."""
    Path(path).write_text(standalone_html(result, settings, arrows), "utf-8")
    if progress is not None:
        progress(1, 1)

"""Light and dark themes: the page, every figure, and the few marks drawn in the page's ink.

A lecture hall is often dark and a projector washes out thin dark lines on white, so the dark
theme turns the page and the figures' paper dark and the ink light. The heatmap keeps its
colours (its background is already near-black), the particles and trails keep the palette
(chosen to read on both), and the arrows are drawn twice, dark outline and light body
(views.py), so they stand out on either. What is drawn in ink, the picked particle's path and
the hovered one's, the frame label, turns light with the paper.
"""

from __future__ import annotations

from bokeh.models import ColorBar, GlyphRenderer, Plot, Text

from app.colours import DARK_WIDGETS, GRID, HEATMAP_PAPER, INK, LINES, MARKS, PAGE, PAPER, THEMES

__all__ = ["THEMES", "page_styles", "theme_figure"]


def page_styles(name: str) -> dict:
    """The app's root styles for theme ``name``."""
    return PAGE[name] | (DARK_WIDGETS if name == "dark" else {})


def theme_figure(fig: Plot, name: str) -> None:
    """Set ``fig``'s paper, ink and grid for theme ``name`` (light restores the defaults)."""
    paper, ink = PAPER[name], INK[name]
    fig.border_fill_color = paper
    if fig.background_fill_color != HEATMAP_PAPER:
        fig.background_fill_color = paper
    fig.outline_line_color = GRID[name]
    if fig.title is not None:
        fig.title.text_color = ink
    for axis in fig.axis:
        line = LINES[name]
        axis.axis_line_color = axis.major_tick_line_color = axis.minor_tick_line_color = line
        axis.major_label_text_color = axis.axis_label_text_color = ink
    for grid in fig.grid:
        grid.grid_line_color = GRID[name]
    for bar in fig.select(type=ColorBar):
        bar.background_fill_color = paper
        bar.major_label_text_color = bar.title_text_color = ink
    for legend in fig.legend:  # the loss curve's and the schedule plot's (light: Bokeh's own)
        legend.background_fill_color = paper
        legend.border_line_color = GRID[name]
        legend.label_text_color = ink
    if fig.background_fill_color == HEATMAP_PAPER:
        return  # the heatmap's marks (white labels, light contours) read on it in both
    swap = MARKS if name == "dark" else {v: k for k, v in MARKS.items()}
    for renderer in fig.select(type=GlyphRenderer):
        glyph = renderer.glyph
        if isinstance(glyph, Text):
            glyph.text_color = swap.get(glyph.text_color, glyph.text_color)
            glyph.background_fill_color = swap.get(glyph.background_fill_color,
                                                   glyph.background_fill_color)  # fmt: skip
        elif hasattr(glyph, "line_color") and isinstance(glyph.line_color, str):
            glyph.line_color = swap.get(glyph.line_color, glyph.line_color)

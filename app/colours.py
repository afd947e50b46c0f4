"""The light and dark themes' colours, without Bokeh: the app's themes (``app/ui/theme.py``)
and the page ``flowscope serve`` shows while the app starts (``app/splash.py``), which must
not wait for the app's imports."""

from __future__ import annotations

THEMES = ("light", "dark")
PAGE = {  # the page's paper and ink, a caption's paper, and the ink of small print
    "light": {"background": "#ffffff", "color": "#212529", "--flowscope-caption": "#f4f7fb",
              "--flowscope-muted": "#444444"},
    "dark": {"background": "#15171b", "color": "#dfe3ea", "--flowscope-caption": "#252a31",
             "--flowscope-muted": "#b8bec8"},
}  # fmt: skip
PAPER = {"light": "#ffffff", "dark": "#1c1f24"}  # a figure's border, a light plot's background
INK = {"light": "#444444", "dark": "#dfe3ea"}  # titles, tick labels (light: Bokeh's own)
LINES = {"light": "black", "dark": "#dfe3ea"}  # axes and ticks (light: Bokeh's own)
GRID = {"light": "#e5e5e5", "dark": "#3a3f47"}
# the marks drawn in ink, light theme's colour → dark theme's
MARKS = {"black": "#f4f4f4", "#444444": "#c8c8c8", "#333333": "#e8e8e8", "#ffffff": "#1c1f24"}
HEATMAP_PAPER = "#000004"  # the density views' own background, kept in both themes
# Panel's widgets read their colours from these variables, which a page's element passes on
DARK_WIDGETS = {
    "--panel-background-color": "#212529", "--panel-on-background-color": "#f1f3f5",
    "--panel-surface-color": "#2b3035", "--panel-on-surface-color": "#f1f3f5",
    "--panel-border-color": "#4a5058", "--panel-secondary-color": "#343a40",
    "--panel-on-secondary-color": "#f1f3f5",
}  # fmt: skip


def splash_colours() -> dict[str, dict[str, str]]:
    """Per theme, the splash page's colours: the page's paper and ink, and the particle
    canvas's paper and frame line (a figure's paper and grid colour in the app)."""
    return {name: {"page": PAGE[name]["background"], "ink": PAGE[name]["color"],
                   "paper": PAPER[name], "frame": GRID[name]} for name in THEMES}  # fmt: skip

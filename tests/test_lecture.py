"""The lecture's pieces without a browser: the legend says what the colours mean (and only as
text), and a theme turns every figure dark and back to exactly what it was."""

from __future__ import annotations

import numpy as np
from bokeh.models import ColumnDataSource

from app.colours import GRID, INK, PAPER
from app.session.compare import Comparison
from app.session.state import FlowState
from app.ui.compare.views import A_COLOUR, B_COLOUR
from app.ui.frames import LABEL_PALETTE
from app.ui.legend import legend_html
from app.ui.theme import theme_figure
from app.ui.train_panel import _loss_figure
from app.ui.views import FlowViews


def test_the_legend_names_each_class_in_its_colour_and_what_the_heatmap_shows():
    state = FlowState(dataset="moons")
    text = legend_html(state)
    for k, name in enumerate(("upper moon", "lower moon")):
        assert f"background:{LABEL_PALETTE[k]}" in text and name in text
    assert "histogram" in text
    state.param.update(shade=True, density_source="pde")
    text = legend_html(state)
    assert "log-density each carries" in text and "PDE" in text and "background:" not in text


def test_the_overlaid_comparison_has_its_own_legend():
    state = FlowState(dataset="moons")
    comparison = Comparison(state)
    assert legend_html(state, comparison) == legend_html(state)  # off: A's own legend
    comparison.param.update(on=True, layout="side")
    assert legend_html(state, comparison) == legend_html(state)  # each view its own colours
    comparison.layout = "overlay"
    text = legend_html(state, comparison)
    assert f"background:{A_COLOUR}" in text and f"background:{B_COLOUR}" in text
    assert "twin" in text and "A − B" in text and "upper moon" not in text


def test_the_legend_of_your_points_is_escaped_text():
    state = FlowState()
    points = np.random.default_rng(0).normal(size=(40, 2))
    state.param.update(points=points, point_labels=np.arange(40) % 3, dataset="points")
    text = legend_html(state)
    assert text.count("background:") == 3 and "class 2" in text
    assert "<script" not in text


def test_a_theme_turns_every_figure_dark_and_light_restores_it_exactly():
    views = FlowViews(state=FlowState())
    figs = [views.particle_fig, views.density_fig]

    def colours(fig) -> dict:
        return {str(m.id) + name: value for m in fig.references() for name, value in
                m.properties_with_values(include_defaults=True).items()
                if "color" in name and isinstance(value, str)}  # fmt: skip

    before = [colours(f) for f in figs]
    for fig in figs:
        theme_figure(fig, "dark")
    dark = [colours(f) for f in figs]
    assert views.particle_fig.background_fill_color != "#ffffff"
    assert views.density_fig.background_fill_color == "#000004"  # the heatmap keeps its paper
    changed = sum(dark[i][k] != v for i, d in enumerate(before) for k, v in d.items())
    assert changed > 10
    for fig in figs:
        theme_figure(fig, "light")
    assert [colours(f) for f in figs] == before


def test_a_legend_turns_with_its_figure_and_light_restores_bokeh_s_own():
    fig = _loss_figure(ColumnDataSource({"step": [], "loss": [], "ema": []}))
    (legend,) = fig.legend
    before = (legend.background_fill_color, legend.border_line_color, legend.label_text_color)
    theme_figure(fig, "dark")
    assert (legend.background_fill_color, legend.label_text_color) == (PAPER["dark"], INK["dark"])
    assert legend.border_line_color == GRID["dark"]
    theme_figure(fig, "light")
    after = (legend.background_fill_color, legend.border_line_color, legend.label_text_color)
    assert after == before

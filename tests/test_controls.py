"""The sidebar's controls follow the rules of the state: a control that changes nothing is
disabled and shows the value in effect. The overlay's arrows read on every background."""

from __future__ import annotations

import panel as pn
import pytest
from bokeh.models import Arrow
from bokeh.palettes import Inferno256

from app.session.state import FlowState
from app.ui import views
from app.ui.controls import sidebar


def widgets_of(column) -> dict:
    """The sidebar's widgets by the parameter they control (pn.Param names them so)."""
    found = {}
    for group in column.select(pn.Param):  # the groups, however deep the sidebar nests them
        found.update(group._widgets)
    return found


@pytest.mark.parametrize("schedule, used", [("linear", True), ("constant", True),
                                            ("cosine", False)])  # fmt: skip
def test_beta_sliders_are_disabled_where_the_schedule_ignores_them(schedule, used):
    state = FlowState(process="vp", schedule=schedule)
    assert state.uses_betas is used
    changed = FlowState(process="vp", schedule=schedule, beta_min=0.5, beta_max=30.0)
    assert bool((changed.schedule_curves()["g2"] != state.schedule_curves()["g2"]).any()) is used
    widgets = widgets_of(sidebar(state))
    assert widgets["beta_min"].disabled is not used and widgets["beta_max"].disabled is not used


def test_the_schedule_follows_the_state():
    state = FlowState(process="vp")
    widgets = widgets_of(sidebar(state))
    state.schedule = "cosine"
    assert widgets["beta_max"].disabled
    state.schedule = "linear"
    assert not widgets["beta_max"].disabled
    assert not FlowState(process="fm").uses_betas  # flow matching has no β(t)


def test_eta_shows_the_value_in_effect_and_keeps_the_users():
    state = FlowState(kind="ode", eta=0.7)
    widgets = widgets_of(sidebar(state))
    eta = widgets["eta"]
    assert eta.disabled and eta.value == 0 == state.noise_level
    assert state.eta == 0.7  # kept for the SDE
    state.kind = "sde"
    assert not eta.disabled and eta.value == 0.7
    state.kind = "conditional"
    assert eta.disabled and eta.value == 0


def test_heun_is_offered_wherever_the_run_uses_the_solver():
    state = FlowState(kind="sde", eta=0.0)  # η = 0: the SDE is the ODE, and Heun applies
    widgets = widgets_of(sidebar(state))
    assert not widgets["solver"].disabled and state.config().eta == 0
    assert widgets["solver"].disabled_options == []
    state.eta = 0.5  # the SDE: only the solvers with a stochastic form can be chosen
    assert not widgets["solver"].disabled
    assert set(widgets["solver"].disabled_options) == {"heun", "midpoint", "rk4", "dpmpp2m",
                                                        "dopri5"}  # fmt: skip
    state.kind = "conditional"  # closed forms: no solver at all
    assert widgets["solver"].disabled


def luminance(colour: str) -> float:
    """WCAG relative luminance of '#rrggbb'."""
    channels = [int(colour[k : k + 2], 16) / 255 for k in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_overlay_arrows_contrast_with_every_background():
    view = views.FlowViews(state=FlowState())
    for fig in (view.particle_fig, view.density_fig):
        colours = {arrow.line_color for arrow in fig.select(type=Arrow)}
        # every heatmap colour, and the particle view's white: one of the arrow's colours
        # (its body or its outline) stands out by WCAG's 3:1 for graphics
        for background in [*Inferno256, "#ffffff"]:
            best = max(contrast(c, background) for c in colours)
            assert best >= 3, (fig.name, background, colours, best)

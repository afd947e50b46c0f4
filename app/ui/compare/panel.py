"""Compare mode's section of the sidebar: the switch, which run the controls set, what B
changes, the presets, B = A, and the layout of the views."""

from __future__ import annotations

import panel as pn

from app.session.compare import PRESETS, Comparison
from app.ui.controls import Checkbox, RadioButtonGroup, compute_controls


def compare_section(comparison: Comparison, compute_a: pn.Column) -> tuple[pn.Column, pn.Column]:
    """(the section, the column of compute controls it swaps): run A's controls, or run B's
    (made the first time B is edited) while ``comparison.editing`` is B."""
    on = Checkbox.from_param(comparison.param.on, name="compare two runs (A and B)")
    editing = RadioButtonGroup.from_param(comparison.param.editing, name="the controls set",
                                          sizing_mode="stretch_width")  # fmt: skip
    layout = RadioButtonGroup.from_param(comparison.param.layout, name="views",
                                         sizing_mode="stretch_width")  # fmt: skip
    # a menu of actions, not a choice kept: each item sets A and B once
    preset = pn.widgets.MenuButton(label="presets ▾", items=list(PRESETS),
                                   sizing_mode="stretch_width")  # fmt: skip
    reset = pn.widgets.Button(label="B = A", color="default", width=80, align="end")
    changes = pn.pane.Str(comparison.changes_text(), name="compare_changes",
                          styles={"font-size": "12px", "white-space": "normal"},
                          margin=(0, 10))  # fmt: skip
    controls = pn.Column(compute_a, sizing_mode="stretch_width", margin=0)
    made: dict = {}

    def show_changes(*_events) -> None:
        changes.object = comparison.changes_text()

    def swap(*_events) -> None:
        editing_b = comparison.on and comparison.editing == "b"
        if editing_b and "b" not in made:
            made["b"] = compute_controls(comparison.b)
            controls.append(made["b"])
        compute_a.visible = not editing_b
        if "b" in made:
            made["b"].visible = editing_b

    def follow_on(*_events) -> None:
        for widget in (editing, layout, reset, changes):
            widget.visible = comparison.on
        swap()

    def choose(event) -> None:
        if event.new in PRESETS:
            comparison.apply_preset(event.new)

    comparison.param.watch(show_changes, ["changes"])
    comparison.param.watch(swap, ["editing"])
    comparison.param.watch(follow_on, ["on"])
    preset.on_click(choose)
    reset.on_click(lambda _event: comparison.reset_b())
    follow_on()
    section = pn.Column(
        pn.pane.Markdown("### Compare"), on, editing, changes, pn.Row(preset, reset), layout,
        sizing_mode="stretch_width", margin=0,
    )  # fmt: skip
    return section, controls

"""The sidebar's Guidance section: the class, the kind of guidance and its strength.

The class list follows the data set (its classes by name); every control is disabled while the
run does not read it (a forward run, conditional paths, a data set as the source, divergence
guidance on the SDE), and the note under them says why, or what the picture shows.
"""

from __future__ import annotations

import panel as pn

from app.session.guidance_settings import NO_CLASS
from app.session.state import FlowState
from app.ui.controls import SLIDER, Checkbox, Select, widget_of

NOTE_STYLE = {"font-size": "12px", "color": "#555"}


def guidance_note(state: FlowState) -> str:
    """One or two sentences: why guidance is off, or what the heatmap's "exact" shows."""
    if not state.guidance_applies:
        if state.guidance_kind == "divergence" and state.direction == "reverse" and \
                state.kind == "sde":  # fmt: skip
            return "Divergence guidance adds to an ODE step: choose the ODE (η = 0)."
        return ("Guidance steers generation: choose a reverse ODE or SDE run from N(0, I) "
                "to use it.")  # fmt: skip
    if state.guidance_kind == "divergence":
        return ("Each step also moves λ|Δt| ∇(∇·v): toward where the flow concentrates "
                "density" + (", with one random probe (Hutchinson)." if state.hutchinson
                             else ", the divergence exact."))  # fmt: skip
    if state.guidance_class == NO_CLASS:
        return "Choose a class to guide toward; particles are coloured by class."
    w = state.guidance_weight
    target = "the class's own density p(x | c)" if w == 1 else \
        f"the tilted target p(x|c)^{w:g} p(x)^{1 - w:g} (normalised)"  # fmt: skip
    same = " With the exact field, classifier guidance is the same field (Bayes' rule)." \
        if state.field == "exact" else ""  # fmt: skip
    return f"The heatmap's 'exact' and the contours show {target}.{same}"


def guidance_controls(state: FlowState) -> pn.Column:
    """Class, kind, w or λ, and Hutchinson's estimate, linked to ``state``."""
    group = pn.Param(
        state, parameters=["guidance_kind", "guidance_weight", "divergence_lambda",
                           "hutchinson"],
        widgets={"guidance_kind": {"type": Select, "name": "guidance"},
                 "guidance_weight": {**SLIDER, "name": "weight w (1 = conditional)"},
                 "divergence_lambda": {**SLIDER, "name": "λ (divergence guidance)"},
                 "hutchinson": {"type": Checkbox, "name": "Hutchinson's estimate (one probe)"}},
        show_name=False, sizing_mode="stretch_width",
    )  # fmt: skip
    # the class list changes with the data set: a Select linked by hand
    classes = Select(label="class", options=state.class_options(), value=state.guidance_class,
                     sizing_mode="stretch_width", margin=(5, 10))  # fmt: skip
    note = pn.pane.Markdown(guidance_note(state), styles=NOTE_STYLE, margin=(0, 10))

    def to_state(event) -> None:
        if event.new is not None:
            state.guidance_class = event.new

    def follow_the_state(*_events) -> None:
        options = state.class_options()
        if classes.options != options:
            classes.options = options
        value = state.guidance_class if state.guidance_class in options.values() else NO_CLASS
        if classes.value != value:
            classes.value = value
        divergence, applies = state.guidance_kind == "divergence", state.guidance_applies
        for widget in (classes, *(widget_of(group, n) for n in group._widgets if n != "name")):
            widget.disabled = not applies
        widget_of(group, "guidance_weight").visible = not divergence
        widget_of(group, "divergence_lambda").visible = divergence
        widget_of(group, "hutchinson").visible = divergence
        note.object = guidance_note(state)

    classes.param.watch(to_state, "value")
    state.param.watch(follow_the_state, ["guidance_class", "guidance_kind", "guidance_weight",
                                         "hutchinson", "dataset", "points", "direction", "kind",
                                         "eta", "process", "source", "field"])  # fmt: skip
    follow_the_state()
    return pn.Column(classes, group, note, sizing_mode="stretch_width", margin=0)

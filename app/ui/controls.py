"""The sidebar: every control of the state, grouped, with sliders throttled to their release."""

from __future__ import annotations

import panel as pn

from app.session.state import FlowState


# Panel holds a widget's browser events for 50 ms (``Syncable._debounce``) to batch them. A
# slider's release then waited for the timer its drag had started: 30-50 ms of every recompute
# (measured with bench_app). These widgets handle their events on the next tick instead; each
# event is cheap, since sliders act on release only.
class FloatSlider(pn.widgets.FloatSlider):
    _debounce = 0


class IntSlider(pn.widgets.IntSlider):
    _debounce = 0


class RadioButtonGroup(pn.widgets.RadioButtonGroup):
    _debounce = 0


class Select(pn.widgets.Select):
    _debounce = 0

    def _process_param_change(self, params):
        props = super()._process_param_change(params)
        if "disabled_options" in props and isinstance(self.options, dict):
            # Panel sends a dict's labels as the page's options but its values as the disabled
            # ones, and the page compares them with the labels: none was disabled.
            label_of = {value: label for label, value in self.options.items()}
            props["disabled_options"] = [label_of.get(v, v) for v in props["disabled_options"]]
        return props


class Checkbox(pn.widgets.Checkbox):
    _debounce = 0


class FloatInput(pn.widgets.FloatInput):
    _debounce = 0


SLIDER = {"type": FloatSlider, "throttled": True}


def _group(state: FlowState, title: str, parameters: list[str], widgets: dict | None = None):
    return pn.Param(
        state, parameters=parameters, widgets=widgets or {}, show_name=False, name=title,
        sizing_mode="stretch_width",
    )  # fmt: skip


def sidebar(state: FlowState, data_panel=None, compute=None, top=None) -> pn.Column:
    """Grouped controls (``data_panel``: the 'Your data' section, if any; ``compute``: the
    controls of what is computed, by default ``compute_controls(state)``; ``top``: a section
    above them, compare mode's). Widgets are made per session (never class attributes)."""
    display = _group(state, "Display",
                     ["trail", "density_source", "overlay", "contours", "shade", "reference",
                      "posterior"], {
        "trail": {"type": IntSlider, "name": "trail length (frames)"},
        "density_source": RadioButtonGroup,
        "overlay": Select,
        "shade": {"type": Checkbox, "name": "colour particles by carried log-density"},
        "reference": {"type": Checkbox, "name": "compare with the reference solution (ODE)"},
        "posterior": {"type": Checkbox, "name": "hover: p(class | x_t), where a point comes from"},
    })  # fmt: skip
    return pn.Column(
        *([top] if top is not None else []),
        compute if compute is not None else compute_controls(state),
        pn.pane.Markdown("### Display"), display,
        *([pn.pane.Markdown("### Your data"), data_panel] if data_panel is not None else []),
        # its own scroll, held at the top of the window: the views stay on screen while a
        # control far down the sidebar (the brush, guidance) is used
        width=330, scroll=True, styles={"position": "sticky", "top": "0", "max-height": "100vh"},
    )  # fmt: skip


def compute_controls(state: FlowState) -> pn.Column:
    """The controls of what a run computes: process, sampler, seed and β(t), grouped, each
    disabled while the state does not read it."""
    process = _group(state, "Process", ["process", "dataset", "source", "field", "direction",
                                        "kind"], {
        "source": {"type": Select, "name": "source (what flows to the data)"},
        "dataset": Select,
        "field": {"type": Select, "name": "field (what moves the particles)"},
        "process": Select,
        "direction": RadioButtonGroup,
        "kind": RadioButtonGroup,
    })  # fmt: skip
    sampler = _group(state, "Sampler", ["eta", "solver", "rtol", "time_grid", "t_min", "steps",
                                        "particles", "device"], {
        "eta": {**SLIDER, "name": "η (0 = ODE … 1 = reverse SDE)"},
        "solver": Select,
        "rtol": {"type": Select, "name": "tolerance (rtol)"},
        "time_grid": {"type": Select, "name": "time grid"},
        # a number box, not a slider: the sliders' order is what tests and benchmarks press
        "t_min": {"type": FloatInput, "name": "t_min (where a reverse run stops)"},
        "steps": {"type": IntSlider, "throttled": True, "name": "steps T"},
        "particles": {"type": IntSlider, "throttled": True, "step": 100,
                      "name": "particles N"},
        "device": RadioButtonGroup,
    })  # fmt: skip
    schedule = _group(state, "Schedule", ["schedule", "beta_min", "beta_max", "shift",
                                          "sigma_min", "sigma_max"], {
        "schedule": {"type": Select, "name": "schedule (log-SNR λ(t))"},
        "beta_min": {**SLIDER, "name": "β_min"},
        "beta_max": {**SLIDER, "name": "β_max"},
        "shift": {**SLIDER, "name": "shift s"},
        "sigma_min": {"type": FloatInput, "name": "σ_min (at t = 0)"},
        "sigma_max": {**SLIDER, "name": "σ_max (at t = 1)"},
    })  # fmt: skip
    seed = seed_input(state)
    fm_note = pn.pane.Markdown(
        "This path has no β(t): flow matching is a = 1 − t, b = t and the trigonometric path "
        "a = cos(πt/2), b = sin(πt/2), the same for every schedule. Switch to diffusion (VP "
        "or sub-VP) to shape the noise schedule.",
        styles={"font-size": "12px", "color": "#555"},
    )

    def follow_the_state(*_events) -> None:
        # The state decides what a run reads; a control it does not read is disabled (moving
        # it reran an identical run) and shows the value in effect.
        scheduled, sigmas = state.scheduled, state.uses_sigmas
        schedule.visible, fm_note.visible = scheduled or sigmas, not (scheduled or sigmas)
        widget_of(schedule, "schedule").visible = scheduled
        for name in ("beta_min", "beta_max"):
            widget_of(schedule, name).visible = scheduled
            widget_of(schedule, name).disabled = not state.uses_betas
        widget_of(schedule, "shift").visible = scheduled and state.schedule == "shifted-cosine"
        for name in ("sigma_min", "sigma_max"):
            widget_of(schedule, name).visible = sigmas
        widget_of(process, "source").visible = state.uses_source
        eta = widget_of(sampler, "eta")
        # η = 0 for the ODE; the state keeps the user's η for the SDE (setting the slider's
        # value does not reach the state: pn.Param links its release, value_throttled)
        eta.param.update(value=state.noise_level, disabled=not state.uses_eta)
        solver = widget_of(sampler, "solver")
        solver.disabled = not state.uses_solver
        # A solver without a stochastic form cannot step the SDE: shown, not choosable. The
        # user's own choice stays selected (Panel cannot disable the value it shows), and the
        # run's notice says that Euler–Maruyama ran in its place.
        solver.disabled_options = [s for s in state.solvers_not_applying if s != state.solver]
        widget_of(sampler, "rtol").visible = state.solver == "dopri5"

    state.param.watch(follow_the_state, ["process", "kind", "eta", "schedule", "direction",
                                         "solver"])  # fmt: skip
    follow_the_state()
    from app.ui.guidance_panel import guidance_controls  # it imports this module's widgets

    return pn.Column(
        pn.pane.Markdown("### Process"), process,
        pn.pane.Markdown("### Sampler"), sampler, seed,
        pn.pane.Markdown("### Schedule"), schedule, fm_note,
        # last: the sliders above keep their order (η, T, N, β_min, β_max), which tests press
        pn.pane.Markdown("### Guidance"), guidance_controls(state),
        sizing_mode="stretch_width", margin=0,
    )  # fmt: skip


def widget_of(group: pn.Param, parameter: str) -> pn.widgets.Widget:
    """The widget ``group`` made for ``parameter``: rules find a control by the parameter it
    sets, not by its label (pn.Param keeps them by name, in ``_widgets``)."""
    return group._widgets[parameter]


def seed_input(state: FlowState) -> pn.widgets.IntInput:
    """The seed box, linked by hand: a cleared box (value None) puts the current seed back
    instead of setting None on the state (pn.Param's link raised, and logged a traceback)."""
    bounds = state.param["seed"].bounds
    box = pn.widgets.IntInput(label="seed", value=state.seed, start=bounds[0], end=bounds[1],
                              sizing_mode="stretch_width", margin=(5, 10))  # fmt: skip

    def to_state(event) -> None:
        if event.new is None or not bounds[0] <= event.new <= bounds[1]:
            box.value = state.seed  # nothing to compute: show the seed in use again
        else:
            state.seed = event.new

    def to_box(event) -> None:
        box.value = event.new

    box.param.watch(to_state, "value")
    state.param.watch(to_box, "seed")
    return box


def playback_controls(state: FlowState) -> pn.Param:
    """Speed and what happens at the end, in one row under the player (and in the URL)."""
    return pn.Param(
        state, parameters=["fps", "loop"], show_name=False, default_layout=pn.Row,
        widgets={"fps": {"type": IntSlider, "name": "speed (frames per second)",
                         "width": 260, "css_classes": ["flowscope-fps"]},
                 "loop": {"type": RadioButtonGroup, "name": "at the end",
                          "width": 260}},
    )  # fmt: skip

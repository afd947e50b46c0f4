"""Compare mode: run B is run A with some settings changed, on A's noise (GUI-free).

B lives in a second :class:`FlowState` that follows A: every compute setting B does not
change (``Comparison.changes``) is A's. Editing B's controls records a change (a value equal
to A's is none); editing A's moves B along wherever B has not changed it. Display settings,
the user's points and the weights trained here are always A's. The two runs are computed
together (``models.compare.pair.simulate_pair``) and published as one :class:`RunPair`.
"""

from __future__ import annotations

from dataclasses import replace

import param

from app.session.state import (
    ARROWS,
    COMPUTE_PARAMS,
    DISPLAY_PARAMS,
    FlowState,
    run_workers,
)
from models.compare.pair import RunPair, Side, simulate_pair
from models.overlay import run_overlay

FOLLOWED = ("points", "point_labels", "trained")  # always A's, like the display settings
NAMES = {"process": "process", "dataset": "data", "direction": "direction", "kind": "kind",
         "eta": "η", "solver": "solver", "time_grid": "grid", "t_min": "t_min", "rtol": "rtol",
         "steps": "steps", "particles": "N", "seed": "seed", "device": "device",
         "schedule": "schedule", "beta_min": "β_min", "beta_max": "β_max", "shift": "shift",
         "schedule_points": "drawn λ(t)", "sigma_min": "σ_min", "sigma_max": "σ_max",
         "source": "source", "field": "field", "train_size": "M", "guidance_class": "class",
         "guidance_kind": "guidance", "guidance_weight": "w", "divergence_lambda": "λ",
         "hutchinson": "Hutchinson"}  # fmt: skip
assert set(NAMES) == set(COMPUTE_PARAMS), "every compute setting needs a short name"

# The comparisons people make: (label, A's settings, B's changes). Applying one sets A's
# settings and replaces B's changes.
PRESETS = {
    "ODE vs SDE": ({"kind": "ode"}, {"kind": "sde"}),
    "Euler vs Heun, 10 steps": ({"solver": "euler", "steps": 10, "kind": "ode"},
                                {"solver": "heun"}),
    "DDIM vs DPM-Solver++(2M), 10 steps": ({"solver": "ddim", "steps": 10, "kind": "ode"},
                                           {"solver": "dpmpp2m"}),
    "Euler, 100 vs 10 steps": ({"solver": "euler", "steps": 100, "kind": "ode"},
                               {"steps": 10}),
    "linear vs cosine β(t)": ({"process": "vp", "schedule": "linear", "beta_min": 0.1,
                               "beta_max": 20.0}, {"schedule": "cosine"}),
    "flow matching vs VP diffusion": ({"process": "fm"}, {"process": "vp"}),
    "VP vs VE diffusion": ({"process": "vp", "schedule": "linear", "kind": "ode"},
                           {"process": "ve"}),
    "exact vs learned field": ({"field": "exact"}, {"field": "pretrained"}),
    "exact field vs its M = 64 training points": ({"field": "exact", "train_size": 64},
                                                  {"field": "exact_m"}),
    "uniform vs log-SNR time grid, 10 steps": ({"time_grid": "uniform", "steps": 10},
                                               {"time_grid": "logsnr"}),
    "guidance w = 1 vs w = 4 (class 0)": ({"guidance_class": 0, "guidance_kind": "cfg",
                                           "guidance_weight": 1.0, "direction": "reverse"},
                                          {"guidance_weight": 4.0}),
}  # fmt: skip


class Comparison(param.Parameterized):
    """Compare mode's settings, run B's state, and the last pair of runs."""

    on = param.Boolean(default=False, doc="Compare two runs: B is A with the settings you "
                       "change, on the same noise")  # fmt: skip
    editing = param.Selector(default="a", objects={"run A": "a", "run B": "b"},
                             doc="Which run the controls below set")  # fmt: skip
    layout = param.Selector(
        default="side", objects={"side by side": "side", "overlaid": "overlay"},
        # short: a tooltip is one line, and a 1024-pixel window must hold it
        doc="A and B side by side, or overlaid (A blue, B orange) beside the density A − B",
    )  # fmt: skip
    changes = param.Dict(default={}, doc="B's settings that differ from A's, {name: value}")
    pair = param.ClassSelector(class_=RunPair, default=None, doc="The last pair of runs")

    def __init__(self, a: FlowState, **params):
        super().__init__(**params)
        self.a = a
        self.b = FlowState(**self._followed({}))
        self._syncing = False
        a.param.watch(self._a_changed, list(COMPUTE_PARAMS + DISPLAY_PARAMS + FOLLOWED))
        self.b.param.watch(self._b_changed, list(COMPUTE_PARAMS))

    # --- B follows A --------------------------------------------------------------------
    def _followed(self, changes: dict) -> dict:
        """A's values of everything B takes from A, B having ``changes``."""
        names = [n for n in COMPUTE_PARAMS if n not in changes] + list(DISPLAY_PARAMS)
        return {n: getattr(self.a, n) for n in names + list(FOLLOWED)}

    def _sync(self, changes: dict | None = None) -> None:
        """Set B to A plus ``changes`` (its own by default), without recording them as B's
        own edits."""
        changes = self.changes if changes is None else changes
        values = self._followed(changes) | changes
        values = {k: v for k, v in values.items() if not _same(getattr(self.b, k), v)}
        if not values:
            return
        self._syncing = True
        try:
            self.b.param.update(**values)
        finally:
            self._syncing = False

    def _a_changed(self, *_events) -> None:
        self._sync()

    def _b_changed(self, *events) -> None:
        """An edit of B's controls: a change where it differs from A, none where it agrees."""
        if self._syncing:
            return
        changes = dict(self.changes)
        for event in events:
            if _same(event.new, getattr(self.a, event.name)):
                changes.pop(event.name, None)
            else:
                changes[event.name] = event.new
        self.changes = changes

    def set_changes(self, changes: dict) -> None:
        """Make B = A plus ``changes`` (values equal to A's are dropped). B is set before the
        change is announced: the runner, told, reads B as it will stay."""
        new = {k: v for k, v in changes.items() if not _same(v, getattr(self.a, k))}
        self._sync(new)
        self.changes = new

    def apply_preset(self, label: str) -> None:
        """Set A's settings and B's changes of a preset (``PRESETS``); KeyError if unknown.
        B's changes are in place (unannounced) before A's settings move B along, so that no
        run is computed for B with the old changes and A with the new settings."""
        a_settings, b_changes = PRESETS[label]
        target = {n: getattr(self.a, n) for n in COMPUTE_PARAMS} | a_settings
        new = {k: v for k, v in b_changes.items() if not _same(v, target[k])}
        with param.parameterized.discard_events(self):
            self.changes = new
        self.a.param.update(**a_settings)  # B follows (A + new): one run asked for
        self._sync()
        self.param.trigger("changes")  # the link, the readout; the runner asks again
        self.on = True

    def reset_b(self) -> None:
        """B = A."""
        self.set_changes({})

    def changes_text(self) -> str:
        """'B: solver heun, steps 10' (the changes, in B's words), or 'B = A'."""
        if not self.changes:
            return "B = A (change a setting of B to compare)"
        parts = []
        for name in COMPUTE_PARAMS:
            if name in self.changes:
                parts.append(f"{NAMES[name]} {_shown(self.b.param[name], self.changes[name])}")
        return "B: " + ", ".join(parts)

    # --- computing the pair ---------------------------------------------------------------
    def compute(self, should_stop=None) -> tuple[RunPair, dict | None, dict | None]:
        """Runs A and B on the same noise; returns (pair, A's overlay arrows, B's) (arrows
        only while an overlay is shown). Pure: sets nothing."""
        a_in = self.a.run_inputs()
        try:
            b_in = self.b.run_inputs()
            b_in.config.validate()
        except ValueError as exc:
            raise ValueError(f"run B: {exc}") from exc
        a_config, b_config = a_in.config, b_in.config
        if "particles" not in self.changes and a_config.particles != b_config.particles:
            # each run's cap on N x (T+1) (state.py) would make twins of no one: both run
            # the smaller N (the notice says it was capped)
            n = min(a_config.particles, b_config.particles)
            a_config, b_config = replace(a_config, particles=n), replace(b_config, particles=n)
        if a_config.extent != b_config.extent:  # VP vs VE: one box, so the difference exists
            box = union_extent(a_config.extent, b_config.extent)
            a_config, b_config = replace(a_config, extent=box), replace(b_config, extent=box)
        pair = simulate_pair(Side(a_config, a_in.user_data, a_in.source),
                             Side(b_config, b_in.user_data, b_in.source),
                             should_stop=should_stop, exact_cache=self.a.exact_cache,
                             workers=run_workers(),
                             exact_cache_b=self.b.exact_cache)  # fmt: skip
        pair = pair.with_(a=self.a.finish(pair.a, a_in), b=self.b.finish(pair.b, b_in))
        if self.a.overlay == "none":
            return pair, None, None
        return pair, self.a.field_arrows(pair.a), run_overlay(
            pair.b, ARROWS, difference=pair.b.source.learned)  # fmt: skip

    def needs_recompute(self) -> bool:
        """Whether the pair on screen lacks what the display now asks of B (its exact
        density, its PDE, its overlay arrows): A's own extras come as for a single run."""
        b = self.b.result
        if not self.on or b is None:
            return False
        wants = self.b.config()
        return (wants.exact_density and b.exact_density is None) or \
            (wants.pde and b.pde_density is None) or \
            (self.a.overlay != "none" and self.b.arrows is None)  # fmt: skip


def union_extent(a, b) -> tuple[float, float, float, float]:
    """The smallest box (x0, x1, y0, y1) holding the boxes a and b."""
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def _same(x, y) -> bool:
    """Equal values (arrays compared by content)."""
    if x is y:
        return True
    try:
        return bool(x == y)
    except (ValueError, TypeError):  # arrays
        import numpy as np

        return isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and np.array_equal(x, y)


def _shown(parameter: param.Parameter, value) -> str:
    """A value as the control shows it (a choice's label)."""
    names = getattr(parameter, "names", None)  # a Selector's {label: value}
    if names:
        for label, v in names.items():
            if v == value:
                return label
    return format(value, "g") if isinstance(value, float) else str(value)

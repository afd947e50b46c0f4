"""One-line readouts of a finished run, for the page (GUI-free): what the sampler did, and how
many generated samples landed on a training point."""

from __future__ import annotations

from app.session.fields import FIELDS
from models.run.reference import has_reference
from models.run.result import RunResult

SOLVER_LABELS = {
    "Euler": "euler", "Heun (2nd order)": "heun", "midpoint (2nd order)": "midpoint",
    "Runge–Kutta 4": "rk4", "DDIM": "ddim", "DPM-Solver++(2M)": "dpmpp2m",
    "Dormand–Prince 5(4), adaptive": "dopri5",
}  # fmt: skip
SOLVER_NAMES = {name: label for label, name in SOLVER_LABELS.items()}


def solver_text(result: RunResult | None, reference_asked: bool = False) -> str:
    """What ran, its model calls (NFE), and with the reference its error and the samples' SW2
    over the noise floor; "" without a run."""
    if result is None:
        return ""
    config = result.config
    used = config.solver_used
    name = SOLVER_NAMES.get(used, used.replace("-", " "))
    if used in ("closed-form", "exact-transition"):
        return f"{name}: no solver steps, no model calls"
    parts = [f"{name} on the {config.time_grid} grid", f"NFE {result.nfe:g}"]
    if result.solver_stats:
        stats = result.solver_stats
        parts.append(f"{stats['accepted']} steps ({stats['rejected']} rejected)")
    if result.reference_errors is not None:
        errors = result.reference_errors
        parts.append(f"error vs reference {errors[-1]:.2g} at the end "
                     f"({errors.max():.2g} at most)")  # fmt: skip
    elif reference_asked and not has_reference(result):
        parts.append("no reference for a stochastic run")
    if result.sw2_ratio is not None:
        parts.append(f"SW2/floor {result.sw2_ratio:.2f}")
    return " · ".join(parts)


def memorization_text(result: RunResult | None) -> str:
    """The memorization readout of a run as one line ("" when it has none)."""
    if result is None or result.memorization is None:
        return ""
    readout, source = result.memorization, result.source
    name = {v: k for k, v in FIELDS.items()}[source.kind]
    m = readout.m
    # only "exact of M" and a network trained here on those M points have seen them
    seen = source.kind == "exact_m" or (source.kind == "trained" and source.train_size == m)
    points = (
        f"the M = {m:,} points it was built from"
        if seen
        else f"M = {m:,} points drawn as a training set (this field never saw them)"
    )
    return (f"Memorization ({name} field): {100 * readout.share:.1f} % of the "
            f"generated samples lie within δ = {readout.delta:.3g} of one of "
            f"{points} (δ = ¼ of their median spacing; samples independent of them give "
            "a few %).")  # fmt: skip

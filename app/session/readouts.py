"""One-line readouts of a finished run, for the page (GUI-free): what the sampler did, and how
many generated samples landed on a training point."""

from __future__ import annotations

from app.session.fields import FIELDS
from models.logdensity import CARRIERS
from models.run.config import MAX_PARTICLES
from models.run.guided import describe
from models.run.reference import has_reference
from models.run.result import RunResult

SOLVER_LABELS = {
    "Euler": "euler", "Heun (2nd order)": "heun", "midpoint (2nd order)": "midpoint",
    "Runge–Kutta 4": "rk4", "DDIM": "ddim", "DPM-Solver++(2M)": "dpmpp2m",
    "Dormand–Prince 5(4), adaptive": "dopri5",
}  # fmt: skip
SOLVER_NAMES = {name: label for label, name in SOLVER_LABELS.items()} | {
    "euler-maruyama": "Euler–Maruyama", "closed-form": "Closed form",
    "exact-transition": "Exact transition",
}  # fmt: skip


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
    if config.guided:
        parts.append(describe(config))
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
    if result.guidance_share is not None:
        parts.append(f"{result.guidance_share:.1%} in class {config.guidance_class}")
        gap = result.guidance_gap
        parts.append(
            "no target readout: the data span too many kernel widths for a grid"
            if gap is None
            else f"SW2 to the tilted target p_w {gap:.2f}x its floor"
        )
    return " · ".join(parts)


def run_notice(state, result: RunResult) -> str:
    """What the user should know about a run that ``state`` (a ``FlowState``) computed: a
    capped N, the run's own warnings, and settings that could not apply as chosen."""
    from app.session.state import DIFFERENCE_NEEDS_LEARNED, MAX_PARTICLE_FRAMES

    config, notes = result.config, []
    if config.particles < state.particles:
        notes.append(
            f"N = {state.particles:,} particles x {config.steps + 1:,} frames passes the "
            f"{MAX_PARTICLE_FRAMES:,} positions one run may compute and send here; ran "
            f"N = {config.particles:,} (fewer steps allow more particles; the command line "
            f"runs up to {MAX_PARTICLES:,} at any number of steps).")  # fmt: skip
    notes.extend(result.warnings)  # from the run: left the view, points outside, field
    if state.overlay == "difference" and not result.source.learned:
        notes.append(DIFFERENCE_NEEDS_LEARNED)
    if config.solver_used == "euler-maruyama" and state.solver != "euler":
        notes.append(f"{SOLVER_NAMES[state.solver]} has no stochastic form: this SDE run steps "
                     "Euler–Maruyama (DDIM has one too).")  # fmt: skip
    if state.shade and state.kind != "ode":
        notes.append("Colouring by carried log-density needs the ODE (a stochastic path "
                     "carries no density); particles keep their cluster colours.")  # fmt: skip
    elif state.shade and not config.log_density:
        notes.append(f"Colouring by carried log-density needs a solver that steps on the "
                     f"velocity ({', '.join(CARRIERS)}); {SOLVER_NAMES[config.solver]} steps "
                     "on x̂ and ε̂. Particles keep their cluster colours.")  # fmt: skip
    return " ".join(notes)


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


def pair_text(pair, reference_asked: bool = False) -> str:
    """Three lines on a comparison: what each run did (``solver_text``), what B changes (as
    the runs used it, from the pair itself), and how far apart the two ended, with the
    noise they shared. The SW2 between them once it is known (it comes after the paint)."""
    a = solver_text(pair.a, reference_asked)
    b = solver_text(pair.b, reference_asked)
    hidden = ("solver_requested", "t_min_requested")
    changes = ", ".join(f"{name} {_value(vb)}" for name, _va, vb in pair.changes
                        if name not in hidden) or "nothing: B = A"  # fmt: skip
    end = []
    if pair.twin_distance is not None:
        end.append(f"twins {pair.twin_distance[-1]:.3g} apart at the end "
                   f"({pair.twin_distance.max():.3g} at most)")  # fmt: skip
    if pair.sw2_known:
        end.append(f"SW2(A, B) {pair.sw2[-1]:.3g} at the end")
    end.append(f"noise: {pair.shared}")
    return f"A: {a}\nB ({changes}): {b}\n" + " · ".join(end)


def _value(v) -> str:
    return format(v, ".4g") if isinstance(v, float) else str(v)

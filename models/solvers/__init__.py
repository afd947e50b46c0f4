"""The solver lab: every integrator of a run, with the one samplers' signature, in one registry
(docs/MATH.md §4).

``SOLVERS`` names each solver with its order, whether it has a stochastic form, a label and its
evaluations per step; :func:`solvers_for` answers which solvers apply for a noise level η, so
the app, the command line and the validation all ask this one place. :func:`sampler_of` gives
the callable to run (a fresh one for the adaptive solver, which records its steps).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.samplers import sample_euler, sample_heun
from models.solvers.adaptive import Dopri5, dopri5
from models.solvers.counting import CountingField
from models.solvers.exponential import sample_ddim, sample_dpmpp_2m
from models.solvers.grids import DEFAULT_T_MIN, GRIDS, default_t_min, make_times
from models.solvers.runge_kutta import sample_midpoint, sample_rk4


@dataclass(frozen=True)
class Solver:
    """One registered solver.

    Attributes:
        name: the key in SOLVERS (command line, app, CSV rows).
        label: a human label.
        make: ``make(**options) -> sampler``; fixed-step solvers ignore options and return their
            function, dopri5 builds a fresh :class:`Dopri5` (options rtol, atol).
        order: the global order of convergence of the ODE solution.
        stochastic: whether η > 0 has a form (euler: Euler–Maruyama, ddim: the DDIM η-family).
        evals_per_step: field evaluations per step; None for the adaptive solver (it reports
            its own, ``Dopri5.stats``).
        on_velocity: whether it steps on the velocity alone, so that it can carry a state with
            more columns than positions (log p: ``models/logdensity.py``); the exponential
            integrators step on x̂ and ε̂ instead.
    """

    name: str
    label: str
    make: Callable
    order: int
    stochastic: bool
    evals_per_step: int | None
    on_velocity: bool = True

    @property
    def adaptive(self) -> bool:
        return self.evals_per_step is None

    def steps_for(self, nfe: int) -> int:
        """Steps of a fixed-step run that costs about ``nfe`` evaluations (at least 1)."""
        if self.adaptive:
            raise ValueError(f"{self.name} chooses its own steps")
        return max(1, round(nfe / self.evals_per_step))


def _fixed(sampler):
    return lambda **_options: sampler


SOLVERS: dict[str, Solver] = {
    s.name: s
    for s in (
        Solver("euler", "Euler (Euler–Maruyama for η > 0)", _fixed(sample_euler), 1, True, 1),
        Solver("heun", "Heun (explicit trapezoid)", _fixed(sample_heun), 2, False, 2),
        Solver("midpoint", "explicit midpoint", _fixed(sample_midpoint), 2, False, 2),
        Solver("rk4", "classical Runge–Kutta 4", _fixed(sample_rk4), 4, False, 4),
        Solver("ddim", "DDIM (DDIM-η for η > 0)", _fixed(sample_ddim), 1, True, 1, False),
        Solver("dpmpp2m", "DPM-Solver++(2M)", _fixed(sample_dpmpp_2m), 2, False, 1, False),
        Solver("dopri5", "Dormand–Prince 5(4), adaptive", dopri5, 5, False, None),
    )
}


def solvers_for(eta: float) -> tuple[str, ...]:
    """The names of the solvers that can run at noise level η (all for η = 0, the stochastic
    ones for η > 0), in registry order."""
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1], got {eta!r}")
    return tuple(name for name, s in SOLVERS.items() if eta == 0 or s.stochastic)


def sampler_of(name: str, **options):
    """The sampler of a registered solver (``options`` go to the adaptive one)."""
    try:
        return SOLVERS[name].make(**options)
    except KeyError:
        raise ValueError(f"unknown solver {name!r}; choose from {', '.join(SOLVERS)}") from None


__all__ = [
    "DEFAULT_T_MIN", "GRIDS", "SOLVERS", "CountingField", "Dopri5", "Solver", "default_t_min",
    "dopri5", "make_times", "sample_ddim", "sample_dpmpp_2m", "sample_midpoint", "sample_rk4",
    "sampler_of", "solvers_for",
]  # fmt: skip

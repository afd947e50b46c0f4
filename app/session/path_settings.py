"""The settings that define a session's Gaussian path: process, schedule and source.

A ``param.Parameterized`` mixin of :class:`app.session.state.FlowState`, kept apart so that
the path's settings, and the rules of which of them a run reads, sit in one place
(docs/MATH.md §2, §2.1, §2.2 and §5.1).
"""

from __future__ import annotations

import param

from models.processes import default_sigmas
from models.schedules import format_points, make_schedule, sample_log_snr

DATASET_LABELS = {
    "8gaussians": "8 gaussians",
    "moons": "2 moons",
    "circles": "concentric circles",
    "swissroll": "swiss roll",
    "checkerboard": "checkerboard",
    "spirals": "two spirals",
}
PROCESS_LABELS = {
    "flow matching": "fm",
    "diffusion (VP)": "vp",
    "sub-VP diffusion": "subvp",
    "variance exploding (VE)": "ve",
    "EDM (σ as time)": "edm",
    "trigonometric": "trig",
}
SCHEDULE_LABELS = {
    "linear β": "linear",
    "cosine": "cosine",
    "constant β": "constant",
    "sigmoid": "sigmoid",
    "shifted cosine": "shifted-cosine",
    "EDM's (ρ = 7)": "edm",
    "drawn (drag the points)": "points",
}
SCHEDULED = ("vp", "subvp")  # processes whose (a, b) come from a β(t) schedule
SIGMA_PROCESSES = ("ve", "edm")  # processes set by σ_min, σ_max
MAX_POINTS_TEXT = 4096  # a drawn schedule's text in a link: 64 points at full precision fit
DRAWN_START = 8  # control points a drawn schedule starts with, from the schedule before it


def check_points(text: str) -> None:
    """Raise ValueError (one line) unless ``text`` is empty or a drawn schedule's points."""
    if text:
        make_schedule("points", points=text)


class PathSettings(param.Parameterized):
    """Which Gaussian path a run follows, and what it transports."""

    process = param.Selector(
        default="fm",
        objects=PROCESS_LABELS,
        doc="Gaussian path x_t = a(t) x₀ + b(t) ε: linear flow matching (a = 1 − t, b = t); VP "
        "diffusion from β(t) (a² + b² = 1); sub-VP (b = 1 − a², less noise at every t); "
        "variance exploding (a = 1, b = σ_min (σ_max/σ_min)^t: its noise end is N(0, σ_max² I)); "
        "EDM (a = 1, σ(t) on Karras et al.'s ρ = 7 levels); or the trigonometric path "
        "(a = cos(πt/2), b = sin(πt/2))",
    )
    schedule = param.Selector(
        default="linear",
        objects=SCHEDULE_LABELS,
        doc="The schedule of VP and sub-VP diffusion, every one a log-SNR λ(t) = log(a²/b²) "
        "that falls from data to noise: linear β (β_min … β_max), cosine, constant β (their "
        "mean), sigmoid, shifted cosine (λ lowered by 2 log(shift): more noise, as for large "
        "images), EDM's σ levels, or one you draw on the λ(t) plot",
    )
    beta_min = param.Number(
        default=0.1, bounds=(0.0, 2.0), step=0.05, doc="β(0) of the linear schedule"
    )
    beta_max = param.Number(
        default=20.0, bounds=(2.0, 40.0), step=0.5, doc="β(1) of the linear schedule"
    )
    shift = param.Number(
        default=2.0, bounds=(0.25, 16.0), step=0.25,
        doc="Shift s of the shifted cosine schedule: λ(t) = λ_cosine(t) − 2 log s (s > 1: more "
        "noise at every t, as image models of higher resolution need)",
    )  # fmt: skip
    schedule_points = param.String(
        default="",
        doc="The drawn schedule's control points 't:λ,…' (t rising, λ falling); the curve "
        "through them is monotone (PCHIP). Set by dragging the points of the λ(t) plot",
    )
    sigma_min = param.Number(
        default=0.01, bounds=(0.001, 1.0), step=0.001,
        doc="σ at t = 0 of the VE and EDM processes (the data, blurred this little): 0.01 for "
        "VE, 0.002 for EDM by default",
    )  # fmt: skip
    sigma_max = param.Number(
        default=10.0, bounds=(1.0, 40.0), step=0.5,
        doc="σ at t = 1 of the VE and EDM processes: their noise end is N(0, σ_max² I). Song et "
        "al.'s rule: about the largest distance between two data points (the sets span ≤ 5.5)",
    )  # fmt: skip
    source = param.Selector(
        default="gaussian",
        objects={"N(0, I)": "gaussian", **{label: name for name, label in DATASET_LABELS.items()}},
        doc="What flow matching transports to the data: standard normal noise, or another data "
        "set (8 gaussians → moons is the classic). The exact field is a mixture over pairs of "
        "components (docs/MATH.md §5.1); the SDE needs Gaussian noise",
    )

    @property
    def scheduled(self) -> bool:
        """Whether the process reads the schedule (VP and sub-VP)."""
        return self.process in SCHEDULED

    @property
    def uses_betas(self) -> bool:
        """Whether β_min, β_max shape the run: ``make_schedule`` decides, asked with two pairs."""
        return self.scheduled and (
            make_schedule(self.schedule, 0.0, 2.0, points=self._points_or_none())
            != make_schedule(self.schedule, 1.0, 3.0, points=self._points_or_none())
        )

    @property
    def uses_sigmas(self) -> bool:
        """Whether σ_min, σ_max shape the run (VE and EDM)."""
        return self.process in SIGMA_PROCESSES

    @property
    def uses_source(self) -> bool:
        """Whether the source shapes the run (linear flow matching only)."""
        return self.process == "fm"

    def path_config(self) -> dict:
        """The path's settings a ``RunConfig`` takes beyond process and β(t): those the run
        reads, the others at their defaults (so that moving them changes no run)."""
        betas = self.uses_betas
        return {
            "schedule": self.schedule if self.scheduled else "linear",
            "beta_min": self.beta_min if betas else 0.1,
            "beta_max": self.beta_max if betas else 20.0,
            "shift": self.shift if self.scheduled and self.schedule == "shifted-cosine" else 2.0,
            "schedule_points": self.schedule_points if self.scheduled and
            self.schedule == "points" else "",
            "sigma_min": self.sigma_min if self.uses_sigmas else None,
            "sigma_max": self.sigma_max if self.uses_sigmas else None,
            "source": self.data_source or "gaussian",
        }  # fmt: skip

    @property
    def data_source(self) -> str | None:
        """The data set flow matching starts from at t = 1, or None for N(0, I) (and for the
        processes that have no source)."""
        return self.source if self.uses_source and self.source != "gaussian" else None

    def _points_or_none(self) -> str | None:
        return self.schedule_points if self.schedule == "points" else None

    def drawn_from(self, name: str) -> str:
        """Control points of the schedule ``name`` (at the current β_min, β_max and shift), as
        a drawn schedule starts from them: :data:`DRAWN_START` points along its λ(t)."""
        named = make_schedule(name, self.beta_min, self.beta_max, shift=self.shift)
        return format_points(sample_log_snr(named, DRAWN_START))

    def __init__(self, **params):
        super().__init__(**params)
        self.param.watch(self._start_drawing, "schedule")
        self.param.watch(self._sigma_default, "process")
        if "sigma_min" not in params and self.uses_sigmas:
            self.sigma_min = default_sigmas(self.process)[0]
        if self.schedule == "points" and not self.schedule_points:
            self.schedule_points = self.drawn_from("linear")

    def _sigma_default(self, event) -> None:
        """VE and EDM have their own σ_min (0.01, 0.002): switching between them carries the
        user's σ_min over only where it is not the other process's default."""
        if event.new not in SIGMA_PROCESSES:
            return
        defaults = [default_sigmas(p)[0] for p in SIGMA_PROCESSES]
        if self.sigma_min in defaults:
            self.sigma_min = default_sigmas(event.new)[0]

    def _start_drawing(self, event) -> None:
        """A drawn schedule with no points yet starts from the schedule chosen before it, so
        that drawing begins from the curve on screen."""
        if event.new == "points" and not self.schedule_points:
            before = event.old if event.old != "points" else "linear"
            self.schedule_points = self.drawn_from(before)

"""The settings that guide generation toward a class (docs/MATH.md §12).

A ``param.Parameterized`` mixin of :class:`app.session.state.FlowState`: the class (−1 for
none), the kind of guidance and its strength, and the rule of when a run reads them (reverse
ODE or SDE runs from Gaussian noise; divergence guidance on the ODE only).
"""

from __future__ import annotations

import param

from models.datasets import make_dataset
from models.divergence import DEFAULT_LAMBDA
from models.guidance import LAMBDA_RANGE, WEIGHT_RANGE, class_names, present_classes

GUIDANCE_LABELS = {
    "classifier-free (CFG)": "cfg",
    "classifier (exact p(c | x_t))": "classifier",
    "divergence ∇(∇·v)": "divergence",
}
NO_CLASS = -1
# Built-in data sets always use their own mixture (it defines them, so the field is exact);
# this caps only user points, an empirical set whose field is a sum over its points.
APP_REFERENCE = 600


class GuidanceSettings(param.Parameterized):
    """Which class a reverse run is guided toward, how, and how strongly."""

    guidance_class = param.Integer(
        default=NO_CLASS, bounds=(NO_CLASS, 63),
        doc="The class generation is guided toward (none: the plain run). Every built-in data "
        "set has natural classes: the 8 gaussians' modes, each moon, each circle, the swiss "
        "roll's quarters, the checkerboard's squares, each spiral arm; your points have the "
        "labels of their file",
    )  # fmt: skip
    guidance_kind = param.Selector(
        default="cfg", objects=GUIDANCE_LABELS,
        doc="Classifier-free: v + w (v_c − v), the unconditional and the class's fields mixed. "
        "Classifier: the score plus w ∇log p(c | x_t), the exact classifier of the mixture (with "
        "the exact field it is the same field as CFG, by Bayes' rule; with a network they "
        "differ). Divergence: each ODE step plus λ ∇(∇·v), toward where the flow concentrates "
        "density (the class's field, when a class is chosen)",
    )  # fmt: skip
    guidance_weight = param.Number(
        default=1.0, bounds=WEIGHT_RANGE, step=0.25,
        doc="w: 0 is the unconditional run, 1 the conditional p(x | c). Above 1 the samples do "
        "NOT follow p(x|c)^w p(x)^(1−w) (the 'exact' heatmap and contours show that target): "
        "they crowd further into the class",
    )  # fmt: skip
    divergence_lambda = param.Number(
        default=DEFAULT_LAMBDA, bounds=LAMBDA_RANGE, step=0.005,
        doc="λ of divergence guidance (length²): each reverse step moves λ |Δt| ∇(∇·v) beyond "
        "the ODE's step",
    )  # fmt: skip
    hutchinson = param.Boolean(
        default=False,
        doc="Estimate ∇·v with Hutchinson's trace estimator, one random probe per step (one "
        "backward pass instead of two in 2D: a million-dimensional image model has no other "
        "way), instead of exactly",
    )

    point_labels = param.Array(
        default=None,
        allow_None=True,
        doc="The class of each of your points (M,) int: the brush's class when drawn, the "
        "file's label column when uploaded; None: one class",
    )
    posterior = param.Boolean(
        default=False,
        doc="Hovering either view shows p(c | x_t): the posterior over the data set's classes "
        "at that point and the frame's time, the exact Bayes rule of its mixture. On by itself "
        "when a class is chosen for guidance",
    )

    def class_options(self) -> dict[str, int]:
        """{label: class} of the classes the current data set has, "none" first (only "none"
        while the user's data set has no points yet)."""
        try:
            data = self.data_of_run()
        except ValueError:
            return {"none": NO_CLASS}
        names = class_names(data)
        present = present_classes(data.reference(APP_REFERENCE))
        return {"none": NO_CLASS} | {f"{k}: {names[k]}": k for k in present}

    def user_labels(self):
        """The labels of the user's points, (M,) int64, or None (one class, or none that fit)."""
        labels, points = self.point_labels, self.points
        if labels is None or points is None or len(labels) != len(points):
            return None
        return labels

    def data_of_run(self):
        """The data set object the run starts from (the user's points or a built-in set)."""
        user = self.user_dataset() if self.dataset == "points" else None
        return user if user is not None else make_dataset(self.dataset)

    @property
    def guidance_applies(self) -> bool:
        """Whether the run reads the guidance: a reverse ODE or SDE run from Gaussian noise
        (divergence guidance: the ODE only)."""
        if self.direction != "reverse" or self.kind == "conditional" or \
                self.data_source is not None:  # fmt: skip
            return False
        return self.guidance_kind != "divergence" or self.noise_level == 0

    @property
    def guided(self) -> bool:
        """Whether the run is guided (a class chosen, or divergence guidance) and reads it."""
        wants = self.guidance_class != NO_CLASS or self.guidance_kind == "divergence"
        return wants and self.guidance_applies

    def guidance_config(self) -> dict:
        """The guidance's ``RunConfig`` fields: those the run reads, the rest at their
        defaults (so that moving them changes no run)."""
        if not self.guided:
            return {}
        divergence = self.guidance_kind == "divergence"
        label = None if self.guidance_class == NO_CLASS else self.guidance_class
        return {"guidance_class": label, "guidance_kind": self.guidance_kind,
                "guidance": self.divergence_lambda if divergence else self.guidance_weight,
                "hutchinson": divergence and self.hutchinson}  # fmt: skip

    def _class_in_range(self, *_events) -> None:
        """A class the new data set does not have goes back to none."""
        if self.guidance_class == NO_CLASS:
            return
        try:
            n = self.data_of_run().n_labels
        except ValueError:  # no points drawn yet
            n = 0
        if self.guidance_class >= n or self.guidance_class not in self.class_options().values():
            self.guidance_class = NO_CLASS

    def __init__(self, **params):
        super().__init__(**params)
        self.param.watch(self._class_in_range, ["dataset", "points", "point_labels"])
        self.param.watch(self._show_posterior, ["guidance_class"])
        if self.guidance_class != NO_CLASS and "posterior" not in params:
            self.posterior = True

    def _show_posterior(self, event) -> None:
        """Choosing a class turns the posterior readout on (it says where points come from)."""
        if event.new != NO_CLASS and event.old == NO_CLASS:
            self.posterior = True

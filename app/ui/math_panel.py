"""The equations being integrated, with the current parameters filled in (KaTeX, bundled)."""

from __future__ import annotations

import panel as pn
import param

from app.session.state import FlowState
from app.ui.after_views import AfterViews
from app.ui.solver_rules import solver_rule


def _fmt(x: float) -> str:
    return f"{x:.3g}"


# β(t) of each VP-type schedule, written by its log-SNR λ where it has no simpler form
LOG_SNR_BETA = r"-\lambda'(t)\,\operatorname{sigmoid}(-\lambda(t))"
SCHEDULE_BETA = {
    "cosine": r"\tfrac{\pi}{1+s}\tan\!\big(\tfrac{\pi}{2}\tfrac{t+s}{1+s}\big),\ s = 0.008",
    "sigmoid": LOG_SNR_BETA + r",\ a^2 = \text{sigmoid schedule}",
    "edm": LOG_SNR_BETA + r",\ \lambda = -2\log\sigma_{\rm EDM}(t)",
    "points": LOG_SNR_BETA + r",\ \lambda = \text{PCHIP through your points}",
}


def _beta(state: FlowState) -> str:
    if state.schedule == "linear":
        return rf"{_fmt(state.beta_min)} + {_fmt(state.beta_max - state.beta_min)}\,t"
    if state.schedule == "constant":
        return _fmt(0.5 * (state.beta_min + state.beta_max))
    if state.schedule == "shifted-cosine":
        return LOG_SNR_BETA + (
            rf",\ \lambda = -2\log\tan\tfrac{{\pi t}}{{2}}"
            rf" - 2\log {_fmt(state.shift)}"
        )
    return SCHEDULE_BETA[state.schedule]


def path_terms(state: FlowState) -> dict[str, str]:
    """LaTeX for a(t), b(t), f(t) and g²(t) of the current path."""
    if state.process == "fm":
        return {"a": "1-t", "b": "t", "f": r"-\tfrac{1}{1-t}", "g2": r"\tfrac{2t}{1-t}"}
    if state.process == "trig":  # g² = 2bḃ − 2f b² = π tan(πt/2) (docs/MATH.md §2)
        half = r"\tfrac{\pi t}{2}"
        return {"a": rf"\cos{half}", "b": rf"\sin{half}", "f": rf"-\tfrac{{\pi}}{{2}}\tan{half}",
                "g2": rf"\pi\tan{half}"}  # fmt: skip
    lo, hi = _fmt(state.sigma_min), _fmt(state.sigma_max)
    if state.process == "ve":  # σ = σ_min (σ_max/σ_min)^t, g² = dσ²/dt = 2 log(σ_max/σ_min) σ²
        return {"a": "1", "b": rf"\sigma(t) = {lo}\,({hi}/{lo})^t", "f": "0",
                "g2": rf"\tfrac{{d\sigma^2}}{{dt}} = 2\log({hi}/{lo})\,\sigma(t)^2"}  # fmt: skip
    if state.process == "edm":  # Karras et al.'s ρ = 7 levels as the time variable
        return {"a": "1", "b": rf"\sigma(t) = \big({lo}^{{1/7}} + t\,({hi}^{{1/7}} - "
                               rf"{lo}^{{1/7}})\big)^7",
                "f": "0", "g2": r"\tfrac{d\sigma^2}{dt} = 2\sigma\dot\sigma"}  # fmt: skip
    beta = _beta(state)
    if state.process == "subvp":
        return {"a": r"e^{-\frac12\int_0^t\beta}", "b": r"1-a^2", "f": r"-\tfrac12\beta(t)",
                "g2": rf"\beta(t)\,(1-a^4),\quad \beta(t) = {beta}"}  # fmt: skip
    return {"a": r"e^{-\frac12\int_0^t\beta}", "b": r"\sqrt{1-a^2}", "f": r"-\tfrac12\beta(t)",
            "g2": rf"\beta(t) = {beta}"}  # fmt: skip


def equations(state: FlowState) -> list[tuple[str, str]]:
    """("text", markdown) and ("tex", latex) blocks for the kind, direction and η of the state."""
    p = path_terms(state)
    noise = r"\varepsilon"
    if state.data_source:
        noise = rf"x_1,\ x_1 \sim \text{{{state.source}}}"
    blocks = [("text", "**Path** (t = 0 data, t = 1 noise)"),
              ("tex", rf"x_t = a(t)\,x_0 + b(t)\,{noise},\quad a = {p['a']},\ b = {p['b']}"),
              ("tex", rf"f(t) = {p['f']}"), ("tex", rf"g^2(t) = {p['g2']}"),
              ("text", "**Forward SDE** with these marginals, its **reverse SDE** (Anderson) and "
                       "the **probability-flow ODE**, which share them"),
              ("tex", r"dx = f(t)\,x\,dt + g(t)\,dw"),
              ("tex", r"dx = \big[f(t)\,x - g^2(t)\,\nabla\log p_t(x)\big]\,dt"
                      r" + g(t)\,d\bar w"),
              ("tex", r"\frac{dx}{dt} = f(t)\,x - \tfrac12 g^2(t)\,\nabla\log p_t(x)"),
              ("text", "and the **Fokker–Planck equation** of the forward SDE"),
              ("tex", r"\partial_t p = -\nabla\cdot\big(f(t)\,x\,p\big) + \tfrac12\,g^2(t)\,"
                      r"\Delta p"),
              ("text", "**This run**")]  # fmt: skip
    from_data = state.data_source is not None
    if from_data:  # no diffusion: x₁ is not Gaussian given x₀, so no f, g², SDE or score form
        blocks[2:11] = [("text", "**Flow matching between two data sets**: no forward SDE (x₁ is "
                                "not Gaussian given x₀); the marginal velocity, a mixture over "
                                "pairs of components (docs/MATH.md §5.1)"),
                       ("tex", r"v(x,t) = \mathbb{E}[\,x_1 - x_0 \mid x_t = x\,]"),
                       ("text", "**This run**")]  # fmt: skip
    reverse = state.direction == "reverse"
    when = " (integrated from t = 1 to t = 0)" if reverse else " (from t = 0 to t = 1)"
    if state.kind == "conditional":
        blocks += [("text", "**Conditional paths**, one fixed ε per particle" + when),
                   ("tex", r"x_t = a(t)\,x_0 + b(t)\,\varepsilon"),
                   ("text", "They cross each other; averaged over x₀ they give the marginal "
                            "velocity v that the ODE follows.")]  # fmt: skip
    elif state.kind == "ode" or state.noise_level == 0:
        blocks += [("text", "**Probability-flow ODE**" + when),
                   ("tex", r"\frac{dx}{dt} = v(x,t)" + ("" if from_data else
                           r" = f(t)\,x - \tfrac12 g^2(t)\,\nabla\log p_t(x)")),
                   ("text", "**Continuity equation** for the density ρ"),
                   ("tex", r"\partial_t \rho + \nabla\cdot(v\,\rho) = 0")]  # fmt: skip
    else:
        eta = _fmt(state.noise_level)
        sign = "-" if reverse else "+"
        dw = r"d\bar w" if reverse else "dw"
        title = f"**SDE**, η = {eta}" + (" (reverse time, dt < 0)" if reverse else when)
        blocks += [("text", title),
                   ("tex", rf"dx = \big[v(x,t) {sign} \tfrac12\,({eta})^2 g^2(t)\,\nabla\log p_t(x)"
                           rf"\big]\,dt + {eta}\,g(t)\,{dw}"),
                   ("text", "**Fokker–Planck equation**, μ the drift in brackets"),
                   ("tex", rf"\partial_t \rho = -\nabla\cdot(\mu\,\rho) + \tfrac12\,({eta})^2 "
                           r"g^2(t)\,\Delta\rho")]  # fmt: skip
    return blocks + guidance_blocks(state)


def guidance_blocks(state: FlowState) -> list[tuple[str, str]]:
    """The guided field written out (docs/MATH.md §12), if the run is guided."""
    if not state.guided:
        return []
    if state.guidance_kind == "divergence":
        lam = _fmt(state.divergence_lambda)
        how = (
            r"\nabla\cdot v \approx u^\top (\partial_x v)\,u,\ u \sim \pm 1"
            if state.hutchinson
            else r"\nabla\cdot v = \operatorname{tr}\,\partial_x v"
        )
        return [("text", "**Divergence guidance**: v of the class, when one is chosen; each "
                         "reverse step (dt < 0) also moves toward where the flow concentrates"),
                ("tex", rf"\frac{{dx}}{{dt}} = v(x,t) - {lam}\,\nabla\big(\nabla\cdot "
                        r"v(x,t)\big)"),
                ("tex", how)]  # fmt: skip
    c, w = state.guidance_class, _fmt(state.guidance_weight)
    if state.guidance_kind == "classifier":
        return [
            (
                "text",
                f"**Classifier guidance** toward class {c}: the score plus w times the "
                "exact classifier's gradient (the velocity and ε̂ follow from it)",
            ),
            (
                "tex",
                rf"\nabla\log p_t(x) + {w}\,\nabla\log p_t(c \mid x),\quad "
                r"p_t(c\mid x) = \frac{\pi_c\,p_t(x\mid c)}{p_t(x)}",
            ),
            ("tex", rf"= \nabla\log\big[p_t(x\mid c)^{{{w}}}\,p_t(x)^{{1-{w}}}\big]"),
        ]
    return [("text", f"**Classifier-free guidance** toward class {c}: the unconditional and the "
                     "class's fields mixed (the score and ε̂ alike)"),
            ("tex", rf"v_w = v(x,t) + {w}\,\big(v(x,t\mid c) - v(x,t)\big)"),
            ("tex", rf"\nabla\log p_w = \nabla\log\big[p_t(x\mid c)^{{{w}}}\,"
                    rf"p_t(x)^{{1-{w}}}\big]"),
            ("text", "a score at every t, but not of one diffusion's marginals: for w ≠ 0, 1 the "
                     "samples do not follow p(x | c)^w p(x)^(1−w) at t = 0.")]  # fmt: skip


def _pane(kind: str, text: str):
    if kind == "tex":
        return pn.pane.LaTeX(
            f"$${text}$$",
            renderer="katex",
            margin=(0, 5),
            sizing_mode="stretch_width",
            # a long formula scrolls in its own box, never the page sideways (1024 px)
            styles={"font-size": "13px", "max-width": "100%", "overflow-x": "auto"},
        )
    return pn.pane.Markdown(text, margin=(0, 5))


class MathPanel(pn.viewable.Viewer):
    """The equations of the run on screen; rebuilt when a run with other settings lands."""

    state = param.ClassSelector(class_=FlowState)

    def __init__(self, after: AfterViews | None = None, **params):
        """``after``: the page's updates that follow its views (``app.ui.after_views``); None:
        this panel's own, at once."""
        super().__init__(**params)
        self.column = pn.Column(name="math", sizing_mode="stretch_width")
        # the equations of the run on screen: updated just after it lands (see SchedulePlot)
        (after or AfterViews(self.state)).add(self._update)
        self._update()

    def _update(self, *_events) -> None:
        result = self.state.result  # the rule of the solver that ran, at its first step
        config = result.config if result is not None else self.state.config()
        blocks = equations(self.state) + solver_rule(config)
        kinds = [kind for kind, _ in blocks]
        if kinds == getattr(self, "_kinds", None):
            # Same structure (a slider moved): new text in the panes there are. Rebuilding
            # them made the browser re-lay out the page, delaying the new frames by ~150 ms.
            for pane, (kind, text) in zip(self.column.objects, blocks, strict=True):
                pane.object = f"$${text}$$" if kind == "tex" else text
        else:
            self.column.objects = [_pane(kind, text) for kind, text in blocks]
        self._kinds = kinds

    def __panel__(self):
        return self.column

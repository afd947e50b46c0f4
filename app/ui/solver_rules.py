"""The update rule of the run's solver, with the numbers of its first step filled in
(docs/MATH.md §4): what the equations panel shows under the ODE or SDE it integrates."""

from __future__ import annotations

import math

import torch

from app.session.readouts import SOLVER_NAMES
from models.run.config import RunConfig
from models.run.simulate import path_of, run_times


def _f(x: float) -> str:
    """A number for LaTeX: 4 significant digits, infinities as ∞ (λ at a = 0 or b = 0)."""
    if math.isinf(x):
        return r"\infty" if x > 0 else r"-\infty"
    return f"{x:.4g}"


def first_step(config: RunConfig) -> dict[str, float]:
    """t, s (the first step's ends), h = s − t, and a, b, λ = log(a/b) at both."""
    path = path_of(config)
    times = run_times(config, path)
    t, s = float(times[0]), float(times[1])
    c = path.coefficients(torch.tensor([t, s], dtype=torch.float64))
    a, b = c.a.tolist(), c.b.tolist()

    def lam(a_, b_):
        if a_ <= 0:
            return -math.inf
        return math.inf if b_ <= 0 else math.log(a_ / b_)

    return {"t": t, "s": s, "h": s - t, "a_t": a[0], "b_t": b[0], "a_s": a[1], "b_s": b[1],
            "lam_t": lam(a[0], b[0]), "lam_s": lam(a[1], b[1])}  # fmt: skip


def _sci(x: float) -> str:
    r"""A tolerance for LaTeX: 10^{-6}, 3 \cdot 10^{-7}."""
    mantissa, exponent = f"{x:.0e}".split("e")
    power = rf"10^{{{int(exponent)}}}"
    return power if mantissa == "1" else rf"{mantissa} \cdot {power}"


def solver_rule(config: RunConfig) -> list[tuple[str, str]]:
    """("text", markdown) and ("tex", latex) blocks: the rule of ``config.solver_used`` with
    its first step's numbers; [] for the closed forms (they take no steps)."""
    used = config.solver_used
    if used in ("closed-form", "exact-transition"):
        return []
    k = first_step(config)
    step = (rf"t_0 = {_f(k['t'])},\ t_1 = {_f(k['s'])},\ h = t_1 - t_0 = {_f(k['h'])}"
            rf"\quad \text{{({config.time_grid} grid)}}")  # fmt: skip
    v = r"v(x_i, t_i)"
    rules = {
        "euler": [rf"x_{{i+1}} = x_i + h\,{v}"],
        "euler-maruyama": [r"x_{i+1} = x_i + h\,\mu(x_i, t_i) + \eta\,g(t_i)\sqrt{|h|}\,z,"
                           r"\quad z \sim \mathcal N(0, I)"],
        "heun": [rf"\tilde x = x_i + h\,{v}",
                 rf"x_{{i+1}} = x_i + \tfrac h2\big[{v} + v(\tilde x, t_{{i+1}})\big]"],
        "midpoint": [rf"x_{{i+1}} = x_i + h\,v\big(x_i + \tfrac h2\,{v},\ t_i + \tfrac h2\big)"],
        "rk4": [r"k_1 = v(x_i, t_i),\ k_2 = v(x_i + \tfrac h2 k_1, t_i + \tfrac h2),\ "
                r"k_3 = v(x_i + \tfrac h2 k_2, t_i + \tfrac h2),\ k_4 = v(x_i + h k_3, t_{i+1})",
                r"x_{i+1} = x_i + \tfrac h6\,(k_1 + 2k_2 + 2k_3 + k_4)"],
        "ddim": [r"x_{i+1} = a(t_{i+1})\,\hat x(x_i, t_i) + b(t_{i+1})\,\hat\varepsilon(x_i, t_i)",
                 rf"a(t_1) = {_f(k['a_s'])},\ b(t_1) = {_f(k['b_s'])}"],
        "dpmpp2m": [r"x_{i+1} = \tfrac{b_{i+1}}{b_i}\,x_i + a_{i+1}\big(1 - e^{-h_\lambda}\big)"
                    r"\,D_i,\quad h_\lambda = \lambda_{i+1} - \lambda_i,\ \lambda = \log\tfrac ab",
                    r"D_i = \big(1 + \tfrac{1}{2r_i}\big)\hat x_i - \tfrac{1}{2r_i}\hat x_{i-1},"
                    r"\ r_i = \tfrac{h_{\lambda,i-1}}{h_{\lambda,i}}",
                    r"D_i = \hat x_i\ \text{on the first and last step, and after a step "
                    r"from } a = 0\ (h_{\lambda,i-1} = \infty)",
                    rf"\lambda(t_0) = {_f(k['lam_t'])},\ \lambda(t_1) = {_f(k['lam_s'])}"],
        "dopri5": [r"x' = x + h\sum_{j=1}^{7} b_j k_j,\quad "
                   r"e = h\sum_j (\hat b_j - b_j) k_j\quad (h\ \text{its own step})",
                   r"\text{accepted if}\ \sqrt{\operatorname{mean}\Big(\tfrac{e}"
                   rf"{{{_sci(config.atol)} + {_sci(config.rtol)}\,\max(|x|, |x'|)}}\Big)^2}}"
                   r" \le 1"],
    }  # fmt: skip
    if used == "ddim" and config.noise_level > 0:
        rho = math.exp(-abs(k["lam_s"] - k["lam_t"])) if math.isfinite(k["lam_t"]) else 0.0
        one = r"\text{DDPM's ancestral step, the exact posterior}"
        if config.direction == "forward":
            one = r"\text{the exact forward transition}"
        rules["ddim"] = [
            r"x_{i+1} = a_{i+1}\hat x + b_{i+1}\Big[\sqrt{1 - \eta^2(1-\rho^2)}\,\hat\varepsilon"
            r" + \eta\sqrt{1-\rho^2}\,z\Big],\quad \rho = e^{-|\lambda_{i+1} - \lambda_i|}",
            rf"\eta = {_f(config.noise_level)},\ \rho_0 = {_f(rho)}\ (\eta = 1:\ {one})",
        ]
    name = SOLVER_NAMES.get(used, used.replace("-", " "))
    text = f"**Solver**: {name}, with the numbers of its first step"
    if used == "dopri5":
        text = f"**Solver**: {name}: it picks its own steps; the frames are its dense output"
    if used == "dopri5":  # its steps are its own: the grid only says where frames are shown
        step = rf"\text{{frames at the {config.time_grid} grid's times}}"
    return [("text", text), ("tex", step), *(("tex", r) for r in rules[used])]

"""The solver lab in a run: every solver and time grid through ``simulate``, model calls
counted, the reference beside the run, one rule for what applies, and the settings in the URL,
the command line and the equations panel."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest
import torch

from app.cli import main
from app.session.runner import Recomputer
from app.session.state import FlowState
from app.session.url import query_of, read_query, read_url_values
from app.ui.controls import sidebar
from app.ui.solver_rules import solver_rule
from models.run.config import RunConfig
from models.run.reference import with_reference
from models.run.result import FieldSource
from models.run.simulate import path_of, simulate
from models.solvers import SOLVERS

QUICK = dict(steps=12, particles=256, resolution=16, exact_density=False)


class Calls:
    """The field, counting its calls and rows from outside the code under test."""

    def __init__(self, field):
        self.field, self.rows, self.lock = field, 0, threading.Lock()

    def __call__(self, x, t, want=("velocity",)):
        with self.lock:
            self.rows += len(x)
        return self.field(x, t, want)

    def __getattr__(self, name):
        return getattr(self.__dict__["field"], name)


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("workers", [1, 2])
def test_every_solver_runs_and_its_model_calls_are_counted(solver, workers):
    made = []

    def make(path, exact):
        made.append(Calls(exact))
        return made[-1]

    config = RunConfig(process="vp", solver=solver, **QUICK)
    run = simulate(config, source=FieldSource(make=make), workers=workers)
    assert np.isfinite(run.trajectories).all()
    calls = made[0].rows / config.particles  # every evaluation sees every particle once
    assert run.nfe == calls, (run.nfe, calls)
    if SOLVERS[solver].evals_per_step is not None:
        assert calls == SOLVERS[solver].evals_per_step * config.steps
    else:
        assert run.solver_stats["nfe"] == calls and run.solver_stats["accepted"] >= 1


@pytest.mark.parametrize("process", ["vp", "fm", "trig"])
def test_the_logsnr_grid_is_uniform_in_log_snr_and_stops_at_t_min(process):
    config = RunConfig(process=process, solver="dpmpp2m", time_grid="logsnr", **QUICK)
    run = simulate(config)
    assert run.times[-1] == config.data_end == 1e-3 and run.times[0] == 1.0
    c = path_of(config).coefficients(torch.from_numpy(run.times[1:]))
    lam = (torch.log(c.a) - torch.log(c.b)).numpy()
    steps = np.diff(lam)
    np.testing.assert_allclose(steps, steps[0], rtol=1e-6)  # the first step: from t = 1 itself
    assert simulate(RunConfig(process=process, **QUICK)).times[-1] == 0.0  # uniform: to 0


def test_the_reference_shows_the_solvers_order():
    """Independent of the solvers: dopri5 at rtol 1e-8 in float64. Euler's endpoint error
    halves with twice the steps (order 1), Heun's quarters (order 2), within a loose band."""
    errors = {}
    for solver in ("euler", "heun"):
        for steps in (20, 40):
            config = RunConfig(process="fm", dataset="8gaussians", solver=solver, steps=steps,
                               particles=400, resolution=16, exact_density=False)  # fmt: skip
            run = with_reference(simulate(config))
            assert run.reference_errors[0] == 0.0 and run.reference.shape == (steps + 1, 400, 2)
            errors[solver, steps] = run.reference_errors[-1]
    assert 1.6 < errors["euler", 20] / errors["euler", 40] < 2.6, errors
    assert 3.0 < errors["heun", 20] / errors["heun", 40] < 5.5, errors
    assert errors["heun", 20] < errors["euler", 20]


def test_a_stochastic_run_has_no_reference():
    run = simulate(RunConfig(kind="sde", **QUICK))
    with pytest.raises(ValueError, match="stochastic"):
        with_reference(run)


def test_asking_for_the_reference_adds_it_to_the_shown_run():
    s = FlowState(steps=15, particles=300, solver="heun")
    s.recompute()
    shown = s.result
    runner = Recomputer(s)
    published = []
    s.param.watch(lambda e: published.append(e.new), ["result"])
    s.reference = True
    deadline = time.time() + 60
    while not published and time.time() < deadline:
        time.sleep(0.05)
    (run,) = published
    assert run.same_particles(shown) and run.reference is not None
    text = s.solver_text()
    assert "NFE 30" in text and "error vs reference" in text and "SW2/floor" in text
    runner.shutdown()


def test_the_sde_offers_only_solvers_with_a_stochastic_form():
    state = FlowState(kind="sde", eta=0.5, solver="rk4")
    widgets = {w.name: w for w in sidebar(state).select(lambda w: hasattr(w, "disabled_options"))}
    solver = next(w for w in widgets.values() if "Runge–Kutta 4" in w.options)
    assert {"heun", "midpoint", "dpmpp2m", "dopri5"} <= set(solver.disabled_options)
    assert "ddim" not in solver.disabled_options and "euler" not in solver.disabled_options
    assert "rk4" not in solver.disabled_options  # the user's own, shown: the notice says why
    assert state.config().solver_used == "euler-maruyama"  # what ran, and the page says so
    state.recompute()
    assert "no stochastic form" in state.notice
    state.kind = "ode"
    assert solver.disabled_options == []


def test_ddim_steps_the_sde_with_its_own_eta_family():
    config = RunConfig(kind="sde", eta=0.5, solver="ddim", **QUICK)
    assert config.solver_used == "ddim"
    run = simulate(config)
    assert np.isfinite(run.trajectories).all() and run.nfe == config.steps


def test_for_flow_matching_ddim_is_euler():
    """a = 1 − t, b = t: the exponential step is the Euler step (to rounding)."""
    runs = [simulate(RunConfig(process="fm", solver=s, **QUICK)) for s in ("euler", "ddim")]
    np.testing.assert_allclose(runs[0].trajectories, runs[1].trajectories, atol=2e-5)


def test_log_density_rides_the_velocity_solvers_only():
    run = simulate(RunConfig(solver="rk4", log_density=True, **QUICK))
    assert np.isfinite(run.log_density).all() and run.nfe == 4 * QUICK["steps"]
    with pytest.raises(ValueError, match="log-density"):
        simulate(RunConfig(solver="dpmpp2m", log_density=True, **QUICK))


def test_the_solver_settings_travel_in_the_url():
    state = FlowState(solver="dpmpp2m", time_grid="karras", t_min=0.002, rtol=1e-6,
                      reference=True)  # fmt: skip
    good, bad = read_url_values(read_query(query_of(state)))
    assert bad == {}
    assert (good["solver"], good["time_grid"], good["t_min"]) == ("dpmpp2m", "karras", 0.002)
    assert good["rtol"] == 1e-6 and good["reference"] is True


def test_the_equations_panel_shows_the_first_step_of_the_run():
    config = RunConfig(process="vp", solver="dpmpp2m", time_grid="logsnr", steps=10)
    blocks = solver_rule(config)
    run = simulate(RunConfig(**{**config.__dict__, "particles": 50, "exact_density": False}))
    h = run.times[1] - run.times[0]
    assert f"h = t_1 - t_0 = {h:.4g}" in blocks[1][1] and "lambda" in blocks[2][1]
    assert solver_rule(RunConfig(kind="conditional")) == []


def test_the_command_line_writes_the_reference_and_the_model_calls(tmp_path):
    out = tmp_path / "run.npz"
    args = ["sample", "--solver", "rk4", "--time-grid", "quadratic", "--steps", "10",
            "--particles", "200", "--reference", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    with np.load(out) as f:
        meta = json.loads(str(f["meta"]))
        assert f["reference"].shape == (11, 200, 2) and f["reference_errors"].shape == (11,)
        assert math.isclose(meta["reference_endpoint_error"], float(f["reference_errors"][-1]))
    assert meta["nfe"] == 40 and meta["solver"] == "rk4" and meta["time_grid"] == "quadratic"
    assert main([*args[:-2], "--kind", "sde", "--out", str(out)]) == 2


def test_shading_with_an_exponential_solver_keeps_the_run_and_says_why():
    """The app never asks for what cannot run: log p is carried by velocity solvers only."""
    state = FlowState(solver="ddim", shade=True, steps=10, particles=100)
    state.recompute()
    assert state.result.log_density is None and np.isfinite(state.result.trajectories).all()
    assert "steps on x̂ and ε̂" in state.notice
    state.solver = "heun"
    state.recompute()
    assert state.result.log_density is not None and "x̂" not in state.notice


def test_carrying_log_p_leaves_the_adaptive_solvers_steps_alone():
    """dopri5's error norm reads the positions only: the shading moves no particle."""
    plain = simulate(RunConfig(solver="dopri5", **QUICK))
    carried = simulate(RunConfig(solver="dopri5", **{**QUICK, "exact_density": False},
                                 log_density=True))  # fmt: skip
    assert carried.solver_stats == plain.solver_stats and carried.nfe == plain.nfe
    np.testing.assert_array_equal(carried.trajectories, plain.trajectories)


def test_the_notice_names_a_solver_swap_only_where_one_happened():
    forward = FlowState(kind="sde", direction="forward", solver="rk4", steps=8, particles=100)
    forward.recompute()  # η = 1 forward: the exact transition, no solver at all
    assert "stochastic form" not in forward.notice
    assert forward.solver_text().startswith("Exact transition: no solver steps")
    reverse = FlowState(kind="sde", solver="rk4", steps=8, particles=100)
    reverse.recompute()
    assert "Runge–Kutta 4 has no stochastic form" in reverse.notice
    assert reverse.solver_text().startswith("Euler–Maruyama on the uniform grid")


def test_t_min_travels_as_typed_and_the_meta_says_where_runs_stop():
    state = FlowState(t_min=0.0123456789)
    good, _ = read_url_values(read_query(query_of(state)))
    assert good["t_min"] == 0.0123456789
    assert RunConfig(t_min=-0.0).to_dict()["t_min"] == 0.0 == math.copysign(0.0, 1.0)
    assert math.copysign(1.0, RunConfig(t_min=-0.0).to_dict()["t_min"]) == 1.0
    forward = RunConfig(direction="forward", time_grid="logsnr").to_dict()
    assert forward["t_min"] == 0.0, "a forward run starts at t = 0"
    assert RunConfig(time_grid="logsnr").to_dict()["t_min"] == 1e-3


def test_an_export_carries_the_reference(tmp_path):
    from app.export.caption import settings_text

    out = tmp_path / "run.npz"
    assert main(["export", "--solver", "heun", "--steps", "6", "--particles", "100",
                 "--reference", "--out", str(out)]) == 0  # fmt: skip
    with np.load(out) as f:
        assert f["reference"].shape == (7, 100, 2)
    run = with_reference(simulate(RunConfig(solver="heun", **QUICK)))
    assert f"error vs reference {run.reference_errors[-1]:.2g}" in settings_text(run)
    assert main(["export", "--kind", "conditional", "--reference", "--out", str(out)]) == 2


def test_switching_the_shading_on_with_an_exponential_solver_says_why_at_once():
    state = FlowState(solver="dpmpp2m", steps=8, particles=100)
    state.recompute()
    runner = Recomputer(state)
    state.shade = True  # no rerun can carry log p here: the notice says so now
    assert "steps on x̂ and ε̂" in state.notice
    runner.shutdown()


def test_the_solvers_command_checks_the_schedule_before_any_work(tmp_path, capsys):
    out = tmp_path / "t.csv"
    assert main(["solvers", "--process", "vp", "--beta-max", "1e9", "--out", str(out)]) == 2
    assert "beta-max" in capsys.readouterr().err and not out.exists()

"""The trigonometric path end to end in the app: runs, its field learned here, the equations
and the URL (the command line's ``--process trig`` has its own tests)."""

from __future__ import annotations

import math

import numpy as np
import torch

from app.session.state import FlowState
from app.session.training_job import TrainingJob
from app.session.url import query_of, read_query, read_url_values
from app.ui.math_panel import path_terms
from models.datasets import make_dataset
from models.evaluation.metrics import sliced_w2


def test_a_trig_run_generates_the_data_set():
    """Against fresh samples of the data, not the code's own numbers: the reverse ODE of the
    trigonometric path lands as close to the data as a second fresh sample does (2 x)."""
    state = FlowState(process="trig", dataset="moons", steps=60, particles=1500, solver="heun")
    state.recompute()
    run = state.result
    assert run.config.process == "trig" and state.notice == ""
    data = make_dataset("moons")
    g = torch.Generator().manual_seed(5)
    fresh, other = (data.sample(1500, g)[0] for _ in range(2))
    floor = sliced_w2(other, fresh, generator=torch.Generator().manual_seed(1))
    got = sliced_w2(torch.from_numpy(run.trajectories[-1]), fresh,
                    generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert got < 2.0 * floor + 1e-3, (got, floor)


def test_the_equations_panel_states_the_trig_path():
    terms = path_terms(FlowState(process="trig"))
    assert "cos" in terms["a"] and "sin" in terms["b"] and "tan" in terms["g2"]
    # the g² it states is the path's own: π tan(πt/2) at a few times
    curves = FlowState(process="trig").schedule_curves(11)
    t = curves["t"][1:-1]
    np.testing.assert_allclose(curves["g2"][1:-1], math.pi * np.tan(np.pi * t / 2), rtol=1e-9)


def test_no_pretrained_weights_for_trig_runs_exact_and_says_so():
    state = FlowState(process="trig", field="pretrained", steps=5, particles=100)
    state.recompute()
    assert state.result.source.kind == "exact" and state.result.source.asked == "pretrained"
    assert "showing the exact field" in state.notice


def test_trig_travels_in_the_url():
    good, bad = read_url_values(read_query(query_of(FlowState(process="trig"))))
    assert bad == {} and good["process"] == "trig"


def test_the_train_panel_trains_a_trig_field():
    state = FlowState(process="trig", dataset="8gaussians")
    job = TrainingJob(state=state, steps=40, batch=128)
    assert job.start(), state.notice
    job.join(120)
    assert state.trained is not None and state.trained.arch.process == "trig"
    state.param.update(field="trained", steps=5, particles=100)
    state.recompute()
    assert state.result.source.kind == "trained" and np.isfinite(state.result.trajectories).all()

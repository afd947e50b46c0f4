"""The app's field choice, memorization readout, difference overlay and training job, on the
GUI-free state (no server, no browser)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import torch

from app.session.fairshare import TURNS
from app.session.state import FlowState
from app.session.training_job import CHUNK_SECONDS, TrainingJob
from app.session.url import query_of, read_query, read_url_values
from models.learned.checkpoint import load, pretrained_path
from models.overlay import arrow_grid
from models.run.simulate import build


def run(**settings) -> tuple[FlowState, dict]:
    state = FlowState(**{"particles": 400, "steps": 40, "dataset": "moons", **settings})
    state.recompute()
    return state, json.loads(state.result.meta)


@pytest.mark.parametrize("field", ["exact", "pretrained", "exact_m"])
def test_the_run_meta_names_the_field_that_moved_the_particles(field):
    _, meta = run(field=field, train_size=200)
    assert meta["field"] == field


def test_the_pretrained_field_is_the_shipped_network():
    state, meta = run(field="pretrained")
    assert meta["weights"] == "moons-fm.safetensors"
    exact, _ = run(field="exact")
    assert not np.allclose(state.result.trajectories[-1], exact.result.trajectories[-1])
    # the run's last step, recomputed from the weights file: one Euler step of its velocity
    learned, _, _ = load(pretrained_path("moons", "fm"))
    traj, times = state.result.trajectories, state.result.times
    x = torch.from_numpy(traj[-2]).double()
    v = learned(x, times[-2])["velocity"]
    step = x + (times[-1] - times[-2]) * v
    np.testing.assert_allclose(step.numpy(), traj[-1], atol=1e-4)


def test_pretrained_vp_on_another_schedule_falls_back_to_exact_and_says_so():
    state, meta = run(process="vp", schedule="cosine", field="pretrained")
    assert meta["field"] == "exact" and meta["field_asked"] == "pretrained"
    assert "linear schedule" in state.notice and "showing the exact field" in state.notice
    _, meta = run(process="vp", field="pretrained")  # the schedule it was trained on
    assert meta["field"] == "pretrained"


def test_trained_here_before_any_training_runs_exact_with_a_notice():
    state, meta = run(field="trained")
    assert meta["field"] == "exact"
    assert "no weights trained in this session yet" in state.notice


def test_exact_of_m_points_memorizes_and_the_true_field_does_not():
    # T = 100 (the app's default): the last Euler step lands on the posterior mean at t = 0.01,
    # sharp enough to pick one point; at T = 40 (t = 0.025) it averages neighbours (64 %)
    _, memorizing = run(field="exact_m", train_size=200, steps=100)
    _, exact = run(field="exact", train_size=200, steps=100)
    assert memorizing["memorized"] > 0.9
    assert exact["memorized"] < 0.2
    assert memorizing["memorization_delta"] == exact["memorization_delta"]  # one training set
    _, none = run(field="exact", train_size=0)
    assert "memorized" not in none  # unlimited data: no training set to land on


def test_exact_of_m_without_a_finite_m_falls_back_with_a_notice():
    state, meta = run(field="exact_m", train_size=0)
    assert meta["field"] == "exact" and "M ≥ 2" in state.notice


def test_difference_overlay_is_learned_minus_exact_velocity():
    state, _ = run(field="pretrained", overlay="difference")
    arrows = state.arrows
    assert set(arrows) >= {"difference", "velocity"}
    config = state.result.config
    _, _, exact = build(config)
    points = arrow_grid(config.extent, 17)
    i = 20
    t = float(state.result.times[i])
    v_exact = exact(points, t)["velocity"].numpy()
    # reverse run: both overlays point the way particles move, sign(dt) = −1, so the velocity
    # overlay is −v_learned and the difference −(v_learned − v_exact)
    np.testing.assert_allclose(arrows["difference"][i], arrows["velocity"][i] + v_exact,
                               atol=1e-4)  # fmt: skip
    assert np.abs(arrows["difference"][i]).max() > 1e-2  # a network is not the exact field
    exact_state, _ = run(field="exact", overlay="difference")
    assert "difference" not in exact_state.arrows
    assert "needs a learned field" in exact_state.notice
    exact_state.overlay = "velocity"  # and the notice goes with the overlay
    assert "needs a learned field" not in exact_state.notice


def test_field_and_train_size_travel_in_the_url():
    state = FlowState(field="exact_m", train_size=300)
    good, bad = read_url_values(read_query(query_of(state)))
    assert good["field"] == "exact_m" and good["train_size"] == 300 and not bad
    _, bad = read_url_values({"field": "learned", "train_size": "999999"})
    assert set(bad) == {"field", "train_size"}


def test_training_in_chunks_yields_the_turn_stops_cleanly_and_publishes_weights():
    state = FlowState(particles=300, steps=20, dataset="moons", field="trained", train_size=64)
    curve = []
    job = TrainingJob(state, on_losses=lambda s, loss, ema: curve.append(int(s[0])))
    job.steps = 100_000
    assert job.start()
    deadline = time.time() + 30
    while job.step == 0 and time.time() < deadline:
        time.sleep(0.05)
    # another run asks for the turn: it gets it within about one chunk, not after the training
    waits = []
    for _ in range(5):
        t0 = time.perf_counter()
        with TURNS.turn():
            waits.append(time.perf_counter() - t0)
        time.sleep(0.02)
    # a run of 50 steps hands the turn on after every step: training must not take a chunk
    # each time (that made a 100-step run 5 s slower); it waits until the run is done
    t0 = time.perf_counter()
    with TURNS.turn():
        for _ in range(50):
            TURNS.pass_turn()
            time.sleep(0.001)
    run_seconds = time.perf_counter() - t0
    steps_before = job.step
    deadline = time.time() + 30
    while job.step == steps_before and time.time() < deadline:  # and then trains on
        time.sleep(0.02)
    job.stop()
    job.join(timeout=10)
    assert not job.running and job._thread is not None and not job._thread.is_alive()
    assert max(waits) < CHUNK_SECONDS + 0.5, waits  # generous: the CPU is shared and noisy
    assert run_seconds < 50 * CHUNK_SECONDS / 2, run_seconds  # 2.5 s when training took turns
    assert job.step > steps_before
    model = state.trained
    assert model is not None and 0 < model.steps == job.step < 100_000
    assert model.dataset == "moons" and model.train_size == 64
    assert curve == sorted(curve) and curve[-1] <= job.step
    assert "stopped" in job.status
    state.recompute()
    assert json.loads(state.result.meta)["field"] == "trained"
    assert json.loads(state.result.meta)["trained_steps"] == model.steps


def test_a_finished_short_training_lowers_the_loss_and_is_the_trained_field():
    state = FlowState(particles=300, steps=20, dataset="8gaussians")
    curve = []
    job = TrainingJob(state, on_losses=lambda s, loss, ema: curve.append(float(ema[0])))
    job.steps = 300
    assert job.start()
    job.join(timeout=60)
    assert state.trained.steps == 300 and "Trained 300 steps" in job.status
    assert curve[-1] < curve[0]
    state.field = "trained"
    state.recompute()
    assert json.loads(state.result.meta)["field"] == "trained"
    state.process = "vp"  # weights for FM: the VP run falls back to exact
    state.recompute()
    assert json.loads(state.result.meta)["field"] == "exact"
    assert "trained for process fm" in state.notice


def test_bad_training_settings_are_one_line_and_start_nothing():
    state = FlowState(dataset="points")  # no points drawn yet
    job = TrainingJob(state)
    assert not job.start() and not job.running
    assert state.notice.startswith("Training not started: no points yet")
    assert state.trained is None


def test_a_second_start_while_running_is_ignored():
    state = FlowState(dataset="moons")
    job = TrainingJob(state)
    job.steps = 100_000
    assert job.start()
    try:
        assert not job.start()
    finally:
        job.stop()
        job.join(timeout=10)
    assert not threading.Thread.is_alive(job._thread)


def test_the_readout_says_whether_the_field_saw_the_points():
    texts = {}
    for field in ("exact_m", "pretrained"):
        s = FlowState(particles=300, steps=20, dataset="moons", field=field, train_size=40)
        s.recompute()
        texts[field] = s.memorization_text()
    assert "M = 40 points it was built from" in texts["exact_m"]
    assert "never saw them" in texts["pretrained"]

"""The solver lab's sweep without a page: real sweeps on 8 gaussians (flow matching), a stop
that keeps the rows so far, a failure as one line, and the NFE-to-reach interpolation."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

import app.session.solver_sweep as sweep_module
from app.session.fairshare import TURNS
from app.session.solver_sweep import SolverSweep, nfe_to_reach
from app.session.state import FlowState

TINY = dict(solvers=["euler", "heun"], grids=["uniform"], max_nfe=16, nfe_points=3,
            particles=100)  # fmt: skip


def _run(job: SolverSweep) -> None:
    assert job.start()
    job.join(120)
    assert not job.running


def test_a_tiny_sweep_gives_rows_orders_and_full_progress():
    job = SolverSweep(FlowState(dataset="8gaussians", process="fm"), **TINY)
    seen = []
    job.param.watch(lambda e: seen.append(e.new), ["progress"])
    _run(job)
    table = job.table
    assert table is not None and not table.stopped
    assert {r["solver"] for r in table.rows} == {"euler", "heun"}
    for solver in ("euler", "heun"):
        rows = [r for r in table.rows if r["solver"] == solver]
        assert len(rows) == 3, rows  # NFE 4, 8, 16: three step counts each
        assert all(r["endpoint_error"] > 0 for r in rows)
        assert math.isfinite(table.orders[(solver, "uniform")])
    # heun (order 2) is more accurate than euler at the largest NFE
    best = {s: min(r["endpoint_error"] for r in table.rows if r["solver"] == s)
            for s in ("euler", "heun")}  # fmt: skip
    assert best["heun"] < best["euler"]
    assert job.progress == 1.0 and seen[-1] == 1.0
    assert job.status.startswith("Measured 6 runs")
    assert "8gaussians · flow matching · exact field" == job.subject
    assert TURNS.idle  # the turn was given back


def test_a_stop_mid_way_keeps_the_rows_so_far(monkeypatch):
    job = SolverSweep(FlowState(dataset="8gaussians", process="fm"), **TINY)
    real = sweep_module.error_vs_nfe

    def stop_after_two_runs(*args, progress, **kwargs):
        def report(fraction):
            progress(fraction)
            if fraction >= 3 / 7:  # the reference and two runs of seven are done
                job.stop()

        return real(*args, progress=report, **kwargs)

    monkeypatch.setattr(sweep_module, "error_vs_nfe", stop_after_two_runs)
    _run(job)
    assert job.table.stopped
    assert len(job.table.rows) == 2
    assert job.status.startswith("Stopped after 2 runs")
    assert 0 < job.progress < 1


def test_a_failure_is_one_line(monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("the solver blew up\nTraceback (most recent call last): ...")

    monkeypatch.setattr(sweep_module, "error_vs_nfe", broken)
    job = SolverSweep(FlowState(dataset="8gaussians", process="fm"), **TINY)
    _run(job)
    assert job.status == "The measurement failed: the solver blew up"
    assert job.table is None and TURNS.idle


def test_bad_settings_do_not_start():
    state = FlowState(dataset="8gaussians", process="fm")
    job = SolverSweep(state, **{**TINY, "grids": []})
    assert not job.start() and job.status == "Not measured: choose at least one time grid"
    state.dataset = "points"  # with no points yet
    job.grids = ["uniform"]
    assert not job.start() and job.status.startswith("Not measured: no points yet")
    with pytest.raises(ValueError):
        job.particles = 5000  # bounded: the sweep's time stays bounded


def test_a_waiting_run_gets_its_turn_during_a_sweep():
    """Another session's step, asked while the sweep computes, is served within a solver
    step, not after the whole sweep."""
    job = SolverSweep(FlowState(dataset="8gaussians", process="vp"),
                      **{**TINY, "max_nfe": 200, "nfe_points": 6, "particles": 400})  # fmt: skip
    started = threading.Event()
    job.param.watch(lambda e: started.set() if e.new > 0 else None, ["progress"])
    assert job.start()
    assert started.wait(60)  # the reference is done: the runs step now
    t0 = time.perf_counter()
    with TURNS.turn():
        waited = time.perf_counter() - t0
        still = job.running
    job.stop()  # the rest of the sweep is not this test's
    job.join(60)
    assert still, "the sweep ended before the turn was asked: make it longer"
    assert waited < 0.5, f"a run waited {waited:.2f} s for the sweep's turn"


def test_nfe_to_reach_interpolates_on_log_log():
    nfe, error = np.array([10.0, 100.0]), np.array([1e-1, 1e-3])
    assert nfe_to_reach(nfe, error) == pytest.approx(math.sqrt(10 * 100))  # halfway in logs
    assert nfe_to_reach(nfe, error, target=1.0) == 10.0  # already below at the first run
    assert math.isinf(nfe_to_reach(nfe, error, target=1e-5))

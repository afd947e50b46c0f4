"""Extras of the run on screen (its exact density, its reference) computed after it: each lands
on the run shown then, keeping the others; a closed page or an untick stops a reference."""

from __future__ import annotations

import threading
import time

import pytest

from app.session import runner as runner_module
from app.session.runner import Recomputer
from app.session.state import FlowState
from models.samplers import Cancelled


def wait(condition, seconds: float = 60) -> bool:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.02)  # polls the state (the condition is the test's subject)
    return condition()


@pytest.fixture
def shown():
    state = FlowState(steps=10, particles=200)
    state.recompute()
    runner = Recomputer(state)
    yield state, runner
    runner.shutdown()


def slow_reference(monkeypatch, until: threading.Event, stopped: threading.Event):
    """with_reference that keeps polling (passing the compute turn) until ``until`` is set;
    ``stopped`` is set if a poll stops it."""
    real = runner_module.with_reference

    def slow(run, poll=None):
        try:
            while not until.is_set():
                poll()
                time.sleep(0.01)
        except Cancelled:
            stopped.set()
            raise
        return real(run, poll)

    monkeypatch.setattr(runner_module, "with_reference", slow)


def test_the_exact_density_landing_first_is_kept_when_the_reference_lands(monkeypatch, shown):
    state, _ = shown
    exact_landed, stopped = threading.Event(), threading.Event()
    slow_reference(monkeypatch, exact_landed, stopped)
    state.param.watch(lambda e: e.new.exact_density is not None and exact_landed.set(),
                      ["result"])  # fmt: skip
    state.reference = True
    state.contours = True  # asked while the reference computes; lands before it
    assert wait(lambda: state.result.reference is not None)
    assert state.result.exact_density is not None, "the reference dropped the exact density"


@pytest.mark.parametrize("how", ["close the page", "untick the reference"])
def test_a_reference_stops_when_no_longer_wanted(monkeypatch, shown, how):
    state, runner = shown
    never, stopped = threading.Event(), threading.Event()
    slow_reference(monkeypatch, never, stopped)
    state.reference = True
    time.sleep(0.2)  # the reference is computing (it polls until stopped)
    if how == "close the page":
        runner.shutdown()
    else:
        state.reference = False
    assert stopped.wait(10), "the reference kept computing"
    assert state.result.reference is None


def test_a_guided_run_gains_its_readouts_and_its_class_map_after_it_lands():
    state = FlowState(steps=10, particles=200, guidance_class=2, guidance_weight=2.0)
    runner = Recomputer(state)
    try:
        runner.request()
        assert wait(lambda: state.result is not None and state.result.guidance_share is not None)
        assert state.result.guidance_share > 0.9 and state.result.guidance_gap is not None
        assert state.result.posterior_map is None  # made only while shown
        state.density_source = "posterior"
        assert wait(lambda: state.result.posterior_map is not None)
        assert state.result.posterior_class == 2 and state.result.guidance_share is not None
    finally:
        runner.shutdown()

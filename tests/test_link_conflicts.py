"""Settings that pass one by one but not together: the one value whose default makes them work
is dropped, the others kept (before, every setting of the link went back to its default)."""

from __future__ import annotations

from app.session.links import drop_conflicting_values
from app.session.state import FlowState


def test_one_conflicting_value_is_dropped_and_the_rest_kept():
    state = FlowState(dataset="points", steps=40, process="vp", direction="forward")
    notice = drop_conflicting_values(state)
    assert "no points yet" in notice and "dataset='points' is not used" in notice, notice
    assert (state.dataset, state.steps, state.process, state.direction) == \
        ("8gaussians", 40, "vp", "forward")  # fmt: skip


def test_settings_that_work_are_left_alone():
    state = FlowState(steps=40, process="vp")
    assert drop_conflicting_values(state) == ""
    assert (state.steps, state.process) == (40, "vp")

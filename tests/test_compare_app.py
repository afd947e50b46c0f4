"""Compare mode in the session (GUI-free): B follows A except where it changes a setting,
presets, the pair computed and published together, its extras, the link, and what is packed
for the browser."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app.session.compare import PRESETS, Comparison
from app.session.readouts import pair_text
from app.session.runner import Recomputer
from app.session.state import FlowState
from app.session.url import compare_query, read_compare_values
from app.ui.compare.frames import CENTRE, DIVERGING, diverging_codes, pack_pair, pack_rows


def _comparison(**settings) -> Comparison:
    return Comparison(FlowState(particles=300, steps=20, **settings))


def _wait(predicate, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_b_follows_a_except_where_it_changes():
    c = _comparison()
    a, b = c.a, c.b
    b.steps = 10
    assert c.changes == {"steps": 10}
    a.steps = 50
    a.seed = 4
    assert b.steps == 10 and b.seed == 4  # its change stays; the rest follows A
    b.solver = "heun"
    assert c.changes_text() == "B: solver Heun (2nd order), steps 10"
    b.steps = 50  # equal to A's: no longer a change
    assert c.changes == {"solver": "heun"}
    a.density_source = "exact"
    assert b.density_source == "exact"  # display settings are A's
    c.reset_b()
    assert c.changes == {} and b.solver == a.solver and c.changes_text().startswith("B = A")


@pytest.mark.parametrize("label", list(PRESETS))
def test_presets_set_a_and_b(label):
    c = _comparison()
    c.apply_preset(label)
    a_settings, b_changes = PRESETS[label]
    assert c.on
    for name, value in a_settings.items():
        assert getattr(c.a, name) == value
    for name, value in b_changes.items():
        assert getattr(c.b, name) == value and c.changes[name] == value
    for name in ("dataset", "particles", "seed"):  # what the preset does not name: A's
        assert getattr(c.b, name) == getattr(c.a, name)


def test_the_pair_is_computed_and_published_together():
    c = _comparison()
    runner = Recomputer(c.a, comparison=c)
    c.on = True
    _wait(lambda: c.pair is not None and not runner.busy)
    assert c.a.result is c.pair.a and c.b.result is c.pair.b
    np.testing.assert_array_equal(c.pair.a.trajectories, c.pair.b.trajectories)  # B = A
    timeline, dstore, rows, note = pack_pair(c.pair, "particles")
    assert note == "" and (dstore["diff"][0] == CENTRE).all()  # a blank difference
    assert not rows["twin"][0].any() and list(timeline["a"][0]) == list(range(21))
    c.b.steps = 5
    _wait(lambda: c.pair is not None and len(c.pair.b.times) == 6 and not runner.busy)
    assert list(c.pair.frames.b[::4]) == [0, 1, 2, 3, 4, 5]
    _wait(lambda: c.pair.a.sw2_ratio is not None and c.pair.b.sw2_ratio is not None)
    _wait(lambda: c.pair.sw2_known)  # SW2 between A and B: after the paint
    assert np.isfinite(pack_rows(c.pair, np.zeros(21))["sw2"][0]).all()
    assert c.a.result.sw2_ratio == c.pair.a.sw2_ratio  # A's own readout has it too
    text = pair_text(c.pair)
    assert "B (steps 5)" in text and "twins" in text and "SW2/floor" in text
    assert "SW2(A, B)" in text
    c.on = False
    _wait(lambda: c.pair is None)
    assert c.b.result is None and c.a.result is not None


def test_what_the_display_asks_of_b_is_computed():
    c = _comparison()
    runner = Recomputer(c.a, comparison=c)
    c.on = True
    _wait(lambda: c.pair is not None and not runner.busy)
    c.a.contours = True  # the exact density: B's too
    _wait(lambda: c.pair.b.exact_density is not None and c.pair.a.exact_density is not None)
    c.a.reference = True  # both ODE runs: each one's error against its reference
    _wait(lambda: c.pair.b.reference_errors is not None and
          c.pair.a.reference_errors is not None)  # fmt: skip
    c.a.overlay = "velocity"
    _wait(lambda: c.b.arrows is not None and c.a.arrows is not None)


def test_the_link_holds_both_runs():
    c = _comparison()
    c.b.steps, c.b.solver, c.layout = 10, "heun", "overlay"
    assert compare_query(c) == {}  # compare mode off: nothing in the link
    c.on = True
    query = compare_query(c)
    assert query == {"compare": "true", "layout": "overlay", "b_solver": "heun", "b_steps": "10"}
    fresh = _comparison()
    good, bad = read_compare_values(query | {"b_eta": "7", "b_kind": "nope", "layout": "x"},
                                    fresh)  # fmt: skip
    assert good == {"on": True, "changes": {"solver": "heun", "steps": 10}}
    assert bad == {"b_eta": "7", "b_kind": "nope", "layout": "x"}


def test_difference_codes_are_symmetric_and_centred():
    assert DIVERGING[CENTRE] == "#ffffff"
    from app.export.pair_frames import difference_codes

    for frame in np.random.default_rng(0).standard_normal((3, 5, 4)):  # the export's codes
        assert (diverging_codes(frame[None])[0][0] == difference_codes(frame)[0]).all()
    assert DIVERGING[255] != DIVERGING[0] and len(DIVERGING) == 256
    diff = np.array([[[0.0, 1.0], [-1.0, 0.5]], [[0.0, 0.0], [0.0, 0.0]]])
    codes, scale = diverging_codes(diff)
    assert codes[0].tolist() == [[128, 255], [1, 192]]
    assert (codes[1] == CENTRE).all() and scale.tolist() == [1.0, 0.0]


class _Deferred:
    """A session thread that runs its callbacks only when told (races made to happen)."""

    def __init__(self):
        self.waiting = []

    def __call__(self, fn) -> None:
        self.waiting.append(fn)

    def run(self) -> None:
        while self.waiting:
            self.waiting.pop(0)()


def test_a_pair_landing_after_compare_mode_left_shows_a_alone():
    c = _comparison()
    session = _Deferred()
    runner = Recomputer(c.a, schedule=session, comparison=c)
    c.on = True
    _wait(lambda: session.waiting)  # the pair is computed, not yet published
    c.on = False
    session.run()
    assert c.pair is None and c.b.result is None and c.a.result is not None
    assert not runner.busy


def test_b_is_set_before_the_runner_hears_of_a_change():
    """A preset or B's changes, with compare mode on: the runner is told after B is set, so
    no pair of the old B is published for the new settings."""
    c = _comparison()
    seen = []
    c.param.watch(lambda e: seen.append((dict(e.new), c.b.steps, c.b.solver)), ["changes"])
    c.on = True
    c.set_changes({"steps": 10})
    assert seen[-1] == ({"steps": 10}, 10, c.a.solver)
    c.apply_preset("Euler vs Heun, 10 steps")
    assert seen[-1] == ({"solver": "heun"}, 10, "heun")
    runner = Recomputer(c.a, comparison=c)
    runner.request()
    _wait(lambda: c.pair is not None and not runner.busy)
    assert c.pair.b.config.solver == "heun" and c.pair.a.config.steps == 10


def test_the_cap_on_n_keeps_the_twins():
    """B raising the steps past A's cap on N x (T+1) runs both at the smaller N: twins."""
    c = Comparison(FlowState(particles=8000, steps=400))
    c.b.steps = 999
    pair = c.compute()[0]
    assert pair.a.config.particles == pair.b.config.particles == 4000
    assert pair.twin_distance is not None


def test_a_refused_b_says_it_is_b():
    c = _comparison()
    c.b.dataset = "points"  # and no points
    with pytest.raises(ValueError, match=r"^run B: no points yet"):
        c.compute()

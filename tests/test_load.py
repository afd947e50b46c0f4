"""The load test (benchmarks/load_test.py) runs briefly, so that it cannot rot: real sessions
driven by Bokeh's client get new runs for the controls they change. No timing thresholds."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

# On sys.path, not loaded from its file: the heavy session's child process imports it by name.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import load_test

BRIEF = ["--sessions", "2", "--seconds", "3", "--recomputes", "8", "--settle", "0"]


def _check_light(drivers) -> None:
    for d in drivers:
        assert d.error is None
        assert len(d.latencies) > 0
        assert all(math.isfinite(x) and x > 0 for x in d.latencies)


def test_sessions_recompute_for_the_controls_they_change(capsys):
    report = load_test.main([*BRIEF, "--no-heavy"])
    _check_light(report.light)
    assert sum(len(d.latencies) for d in report.light) >= 8  # the phase waits for them
    # The third change asks for 80 steps: a run with 81 frames is the server's answer to it
    # (each driver also raises if a steps change brings any other frame count).
    assert any(81 in d.frames for d in report.light)
    assert {2, 4, 8} <= set(report.rss) and min(report.rss.values()) > 0  # and every 50th
    # the bound was checked on these readings (its verdict on 8 recomputes is not a test: the
    # verdict itself is tested on readings made up for it, below)
    assert report.memory_ok in (True, False)
    out = capsys.readouterr().out
    assert "p50" in out and "p95" in out and "server RSS after 8 recomputes" in out


@pytest.mark.slow
def test_a_heavy_session_keeps_its_capped_run_beside_light_ones(capsys):
    report = load_test.main(BRIEF)
    _check_light(report.light + report.loaded)
    heavy = report.heavy
    assert heavy is not None and heavy.error is None and len(heavy.latencies) > 0
    assert set(heavy.frames) == {1001}  # its 1,000 steps held; N capped by the app
    assert "the others' p95" in capsys.readouterr().out


@pytest.mark.parametrize("late, verdict", [
    ([110.0, 120.0, 125.0], True),  # median 120 against 100: within 1.3
    ([60.0, 129.0, 500.0], True),  # one high reading does not fail it: median 129
    ([100.0, 131.0, 200.0], False),  # median 131: past 1.3
    ([135.0, 140.0, 90.0], False),
])  # fmt: skip
def test_the_memory_verdict_is_the_median_late_reading_against_the_first(late, verdict):
    assert load_test.RSS_BOUND_RATIO == 1.3
    rss = {2: 100.0, 4: late[0], 6: late[1], 8: late[2]}
    assert load_test.memory_summary(rss, first=2, half=4, last=8) is verdict


def test_the_memory_verdict_is_none_before_its_readings():
    assert load_test.memory_summary({2: 100.0, 4: 120.0}, first=2, half=4, last=8) is None
    assert load_test.memory_summary({4: 120.0, 8: 120.0}, first=2, half=4, last=8) is None


def test_arguments_are_checked():
    with pytest.raises(SystemExit):
        load_test.parse_args(["--sessions", "0"])

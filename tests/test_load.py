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
    assert report.memory_ok is not None  # the bound was checked (its verdict is not a test)
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


def test_arguments_are_checked():
    with pytest.raises(SystemExit):
        load_test.parse_args(["--sessions", "0"])

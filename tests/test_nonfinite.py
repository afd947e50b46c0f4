"""A run that produces a non-finite value is refused with a one-line message, never shown."""

import time

import numpy as np
import pytest
import torch

import models.run.simulate as simulate_module
from app.cli import main
from app.session.runner import Recomputer
from app.session.state import FlowState
from models.run.config import RunConfig
from models.run.nonfinite import NonFiniteRun
from models.run.simulate import simulate

T_BAD = 0.5


def _nan_field_from(t_bad: float):
    """Wrap ``build`` so the exact field returns NaN at every t ≤ t_bad (a reverse run)."""
    real_build = simulate_module.build

    def build(config, dataset=None):
        path, data, field = real_build(config, dataset)

        def broken(x, t, want=("velocity",)):
            out = field(x, t, want)
            if float(t) <= t_bad:
                out = {k: torch.full_like(v, float("nan")) for k, v in out.items()}
            return out

        broken.nearest_label = field.nearest_label
        broken.reference = field.reference
        return path, data, broken

    return build


@pytest.mark.parametrize("solver, frame", [("euler", 6), ("heun", 5)])
def test_a_field_that_turns_nan_stops_the_run_at_its_first_bad_frame(monkeypatch, solver, frame):
    monkeypatch.setattr(simulate_module, "build", _nan_field_from(T_BAD))
    config = RunConfig(steps=10, particles=50, resolution=16, solver=solver)
    with pytest.raises(NonFiniteRun) as info:
        simulate(config)
    err = info.value
    # times 1.0, 0.9, ...: Euler's step from t = 0.5 (frame 5) first writes NaN into frame 6;
    # Heun's step from t = 0.6 already evaluates the field at 0.5, spoiling frame 5.
    assert err.frame == frame and err.t == pytest.approx(1 - frame / 10)
    message = str(err)
    assert "\n" not in message and f"frame {frame} (t = {1 - frame / 10:g})" in message
    assert "process fm" in message and "dataset 8gaussians" in message


def test_cli_exits_1_and_writes_nothing_for_a_non_finite_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(simulate_module, "build", _nan_field_from(T_BAD))
    out = tmp_path / "run.npz"
    code = main(["sample", "--steps", "10", "--particles", "50", "--out", str(out)])
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("flowscope: error: non-finite positions from frame 6")
    assert "\n" not in err


def test_user_points_far_out_of_range_are_refused_not_nan(tmp_path, capsys):
    pts = tmp_path / "far.npy"
    np.save(pts, np.array([[1e30, 0.0], [0.0, 1.0]]))
    out = tmp_path / "run.npz"
    code = main(["sample", "--points", str(pts), "--steps", "5", "--particles", "50",
                 "--out", str(out)])  # fmt: skip
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "within ±1000" in err and "1e+30" in err and err.count("\n") == 1


def test_user_points_outside_the_view_are_reported(tmp_path, capsys):
    pts = tmp_path / "outside.npy"
    np.save(pts, np.array([[100.0, 100.0], [101.0, 99.0]]))
    out = tmp_path / "run.npz"
    code = main(["sample", "--points", str(pts), "--steps", "5", "--particles", "50",
                 "--out", str(out)])  # fmt: skip
    assert code == 0 and out.exists()
    err = capsys.readouterr().err
    assert "warning: 2 of 2 points lie outside the view" in err
    with np.load(out) as f:
        assert np.isfinite(f["trajectories"]).all()


def test_the_app_keeps_the_last_good_run_and_names_the_bad_frame(monkeypatch):
    s = FlowState(steps=10, particles=200)
    s.recompute()
    good = s.result
    monkeypatch.setattr(simulate_module, "build", _nan_field_from(T_BAD))
    runner = Recomputer(s)
    s.seed = 5
    deadline = time.time() + 10
    while runner.busy and time.time() < deadline:
        time.sleep(0.02)
    assert s.result is good
    assert "non-finite positions from frame 6 (t = 0.4)" in s.notice
    assert "last good run" in s.notice
    runner.shutdown()


def test_the_first_bad_frame_whatever_the_sum_of_the_frames():
    """The check sums first: finite entries whose sum overflows are still finite frames, and
    a NaN, +inf or −inf is found in the frame where it is (also where +inf and −inf meet)."""
    from models.run.nonfinite import first_bad_frame

    frames = torch.zeros(5, 3, 2)
    assert first_bad_frame(frames) is None and first_bad_frame(frames[:0]) is None
    huge = torch.full((5, 3, 2), 3e38)  # float32's largest is 3.4e38: the sum is +inf
    assert not torch.isfinite(huge.sum()) and first_bad_frame(huge) is None
    for frame, bad in ((0, float("nan")), (3, float("inf")), (4, -float("inf"))):
        hit = frames.clone()
        hit[frame, 1, 0] = bad
        assert first_bad_frame(hit) == frame
    both = frames.clone()
    both[2, 0, 0], both[1, 2, 1] = float("inf"), -float("inf")
    assert first_bad_frame(both) == 1

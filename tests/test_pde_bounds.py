"""The PDE solve's work is bounded and can be cancelled within a frame (docs/MATH.md §6,
"Sub-steps"): a run whose frames would need an unbounded number of advection sub-steps is
refused in one line, and a superseded run stops between sub-steps, not only between frames."""

import subprocess
import sys

import numpy as np
import pytest

from models.accel import split
from models.pde import solver as pde
from models.pde import work
from models.run.config import RunConfig
from models.run.simulate import simulate
from models.samplers import Cancelled

CLI = "import sys; from app.cli import main; sys.exit(main(sys.argv[1:]))"


def run_cli(args, timeout=90):
    """``flowscope`` in a subprocess: a solve that never ends fails the test instead of hanging."""
    try:
        return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"flowscope {' '.join(args)} still running after {timeout} s")


@pytest.mark.parametrize(
    "make_args",
    [
        lambda tmp: ["--dataset", "moons", "--process", "vp", "--kind", "sde", "--steps", "1"],
        lambda tmp: ["--points", str(tmp / "far.csv"), "--resolution", "96"],
    ],
    ids=["one-sde-step", "points-far-outside"],
)
def test_unbounded_solves_are_refused_in_one_line(tmp_path, make_args):
    (tmp_path / "far.csv").write_text("x,y\n300,300\n-300,-300\n")
    out = tmp_path / "o.npz"
    done = run_cli(["sample", *make_args(tmp_path), "--pde", "--out", str(out)])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("flowscope: error: the PDE needs")
    assert "sub-steps" in lines[0] and "use more steps" in lines[0]
    assert not out.exists()


def test_the_refusal_is_a_one_line_value_error():
    config = RunConfig(process="vp", dataset="moons", kind="sde", steps=1, particles=10,
                       resolution=32, pde=True, exact_density=False)  # fmt: skip
    with pytest.raises(ValueError, match="sub-steps") as info:
        simulate(config)
    assert "\n" not in str(info.value)


NORMAL = dict(process="vp", dataset="moons", kind="sde", steps=100, particles=100,
              resolution=64, pde=True, exact_density=False)  # fmt: skip


def test_a_normal_run_is_unchanged(monkeypatch):
    """Bit-identical with an unbounded budget, and the figures the solver gave before it had one."""
    run = simulate(RunConfig(**NORMAL))
    monkeypatch.setattr(work, "SUBSTEPS_PER_CELL", 10**9)
    free = simulate(RunConfig(**NORMAL))
    for name in ("pde_density", "pde_mass", "pde_outflow"):
        np.testing.assert_array_equal(getattr(run, name), getattr(free, name))
    # recorded before the budget and the in-frame polling existed
    np.testing.assert_allclose(run.pde_mass[-1], 0.9955955656342681, rtol=1e-9)
    np.testing.assert_allclose(run.pde_outflow[-1], 0.00427779963772215, rtol=1e-9)
    np.testing.assert_allclose(run.pde_density[50].sum(dtype=np.float64), 63.78718004825984,
                               rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize("beside", [False, True], ids=["serial", "beside-the-particles"])
def test_cancellation_is_polled_between_sub_steps(monkeypatch, beside):
    """A run superseded K sub-steps into a long frame stops within a few more sub-steps."""
    done = {"n": 0, "frames": 0}
    advect = pde.advect

    def counting(*args):
        done["n"] += 1
        return advect(*args)

    monkeypatch.setattr(pde, "advect", counting)
    config = RunConfig(process="fm", dataset="moons", kind="sde", steps=3, particles=10,
                       resolution=64, pde=True, exact_density=False)  # fmt: skip
    simulate(config)  # frames of hundreds of sub-steps each
    assert done["n"] > 300
    first = int(np.ceil(done["n"] / 3))
    k = 40
    if beside:  # the PDE in a thread beside the particles' (the server's runs)
        monkeypatch.setattr(split, "worth_a_thread", lambda field, n: True)
    done["n"] = 0
    with pytest.raises(Cancelled):
        simulate(config, should_stop=lambda: done["n"] >= k, workers=2 if beside else 1)
    assert k <= done["n"] <= k + pde.POLL_SUBSTEPS, done["n"]
    assert done["n"] < first  # inside the first frame, not at its end


def test_the_solver_polls_every_few_sub_steps_of_a_frame(monkeypatch):
    """``poll(i)`` is called during frame i and changes nothing."""
    calls = []
    config = RunConfig(**NORMAL)
    plain = simulate(config)
    solve = pde.solve

    def spy(*args, **kw):
        result = solve(*args, **kw)
        calls.append(result.substeps)
        return result

    monkeypatch.setattr(pde, "solve", spy)
    seen = []
    polled = simulate(config, should_stop=lambda: seen.append(1) and False)
    for name in ("pde_density", "pde_mass", "pde_outflow"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(polled, name))
    # one call per particle step, one per frame and after the particles, and the polls
    assert len(seen) > 2 * config.steps + 2 + calls[0] // (2 * pde.POLL_SUBSTEPS)


def test_a_refused_first_run_says_there_is_no_run_to_show():
    """A link whose first run is refused has no last good run to show: the notice says so."""
    from app.session.runner import Recomputer
    from app.session.state import FlowState

    state = FlowState(dataset="moons", process="vp", kind="sde", steps=1, density_source="pde")
    runner = Recomputer(state)
    runner._fail(runner._generation, ValueError("the PDE needs 202,490 sub-steps"))
    assert "no run to show yet" in state.notice and "last good run" not in state.notice

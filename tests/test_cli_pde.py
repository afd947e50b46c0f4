"""``flowscope sample --pde / --log-density`` and the run behind them."""

import numpy as np
import pytest
import torch

from app.cli import main
from models.density import Grid, smooth
from models.pde import solver as pde
from models.run.config import RunConfig
from models.run.simulate import build, simulate


def test_pde_and_log_density_arrays_in_the_file(tmp_path):
    out = tmp_path / "run.npz"
    args = ["sample", "--steps", "20", "--particles", "200", "--resolution", "64",
            "--solver", "heun", "--out", str(out)]  # fmt: skip
    assert main([*args, "--pde", "--log-density"]) == 0
    with np.load(out) as f:
        assert f["pde_density"].shape == f["exact_density"].shape == (21, 64, 64)
        assert f["pde_density"].dtype == np.float32
        assert f["pde_mass"].shape == f["pde_outflow"].shape == (21,)
        np.testing.assert_allclose(f["pde_mass"] + f["pde_outflow"], f["pde_mass"][0], atol=1e-6)
        assert f["log_density"].shape == (21, 200)
        traj, logp = f["trajectories"], f["log_density"]
    # log p_0 of particles drawn from N(0, I): the prior's own density
    np.testing.assert_allclose(logp[0], -0.5 * (traj[0] ** 2).sum(1) - np.log(2 * np.pi), atol=1e-5)
    plain = tmp_path / "plain.npz"
    assert main([*args[:-1], str(plain)]) == 0
    with np.load(plain) as f:  # the same particles with or without the carried density
        np.testing.assert_array_equal(f["trajectories"], traj)
        assert "pde_density" not in f and "log_density" not in f


@pytest.mark.parametrize(
    "extra", [["--kind", "sde"], ["--kind", "sde", "--eta", "0"], ["--kind", "conditional"]]
)
def test_log_density_refused_off_the_ode(tmp_path, capsys, extra):
    out = tmp_path / "run.npz"
    code = main(["sample", "--steps", "5", "--particles", "10", "--log-density", *extra,
                 "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "log-density" in err
    assert not out.exists()


def test_particles_and_pde_agree_within_sampling_noise():
    """The particle histogram is as far from the PDE as from the closed form (its noise).

    Heun: Euler–Maruyama at T = 30 has its own error near t = 0 (TV 0.15 there)."""
    config = RunConfig(
        process="vp",
        dataset="8gaussians",
        direction="reverse",
        solver="heun",
        steps=30,
        particles=20_000,
        resolution=64,
        bandwidth=0.15,
        pde=True,
    )
    r = simulate(config)
    grid = Grid(config.extent, (64, 64))
    px = 0.15 / grid.cell[0]  # the histogram's own smoothing, applied to both grid densities

    def tv_to(frames):
        blurred = smooth(torch.from_numpy(frames), (px, px)).numpy()
        return pde.total_variation(r.density, blurred, grid)

    to_pde, to_exact = tv_to(r.pde_density), tv_to(r.exact_density)
    assert np.all(to_pde < to_exact + 0.03)
    assert to_pde.max() < 0.1


def test_carried_log_density_in_a_run_matches_the_closed_form():
    config = RunConfig(
        process="fm",
        dataset="8gaussians",
        direction="forward",
        solver="heun",
        steps=200,
        particles=300,
        log_density=True,
        exact_density=False,
    )
    r = simulate(config)
    _, _, field = build(config)
    closed = np.stack([
        field.log_density(torch.from_numpy(x), float(t)).numpy()
        for x, t in zip(r.trajectories, r.times, strict=True)
    ])  # fmt: skip
    assert np.abs(r.log_density - closed).max() < 1e-2

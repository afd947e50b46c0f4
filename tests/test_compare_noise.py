"""The noise two compared runs share (models/compare/noise.py), tested on the generator, not
on a picture: replayed normals are the run's own, and B's normals are A's Brownian path read on
B's grid (sums, bridges, fresh beyond), against the laws of Brownian motion."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from models.compare.noise import (
    GivenNoise,
    bridged_normals,
    draws_step_noise,
    shared_noise,
    step_normals,
)
from models.datasets import make_dataset
from models.run.config import RunConfig
from models.run.simulate import path_of, run_times, simulate

BASE = RunConfig(particles=300, steps=20, exact_density=False)


@pytest.mark.parametrize(
    "changes",
    [
        dict(kind="sde"),  # reverse Euler–Maruyama
        dict(kind="sde", eta=0.5, solver="ddim"),  # DDIM's η-family
        dict(kind="sde", direction="forward"),  # the exact forward transition
        dict(kind="sde", direction="forward", eta=0.4, solver="ddim"),
        dict(kind="sde", process="vp", dataset="spirals", particles=1500),  # split in blocks
    ],
)
def test_replayed_normals_are_the_runs_own(changes):
    """A run given its own replayed normals is the run that draws them, bit for bit (also
    split over two threads in row blocks)."""
    config = replace(BASE, **changes)
    assert draws_step_noise(config)
    normals = step_normals(config, make_dataset(config.dataset), config.steps)
    for workers in (1, 2):
        plain = simulate(config, workers=workers)
        given = simulate(config, workers=workers, step_noise=GivenNoise(normals))
        np.testing.assert_array_equal(plain.trajectories, given.trajectories)


def test_what_draws_step_noise():
    assert not draws_step_noise(BASE)
    assert not draws_step_noise(replace(BASE, kind="conditional"))
    assert draws_step_noise(replace(BASE, kind="sde"))
    assert not draws_step_noise(replace(BASE, kind="sde", eta=0.0))  # the ODE
    assert draws_step_noise(replace(BASE, kind="sde", eta=0.3, solver="ddim"))


def test_same_grid_different_solvers_share_every_increment():
    a = replace(BASE, kind="sde", process="vp")
    b = replace(a, solver="ddim")
    path = path_of(a)
    noise, text = shared_noise(
        a, run_times(a, path), b, run_times(b, path), make_dataset(a.dataset)
    )
    assert "every increment" in text
    torch.testing.assert_close(noise.normals, step_normals(a, make_dataset(a.dataset), a.steps),
                               rtol=0, atol=0)  # fmt: skip


def _increments(z: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    h = (times[1:] - times[:-1]).abs().sqrt()
    return h[:, None, None] * z.double()


def test_a_coarser_grid_sums_the_increments():
    """B every 5th of A's points: each B increment is the sum of A's five."""
    gen = torch.Generator().manual_seed(1)
    z_a = torch.randn(20, 400, 2, generator=gen)
    ta = torch.linspace(1, 0, 21, dtype=torch.float64)
    tb = ta[::5]
    z_b = bridged_normals(z_a, ta, tb, seed=0)
    dw_a, dw_b = _increments(z_a, ta), _increments(z_b, tb)
    torch.testing.assert_close(dw_b, dw_a.reshape(4, 5, 400, 2).sum(1), rtol=0, atol=1e-6)


def test_a_finer_grid_bridges_the_increments():
    """B with 8 points in each of A's steps: its increments add up to A's, are independent
    N(0, h) (normals of mean 0, variance 1, uncorrelated between steps) and correlate with
    the step of A they lie in as √(h / H) (Cov(ΔW_k, ΔW_A) = h)."""
    n = 20_000
    z_a = torch.randn(4, n, 2, generator=torch.Generator().manual_seed(2))
    ta = torch.tensor([0.0, 0.1, 0.35, 0.6, 1.0], dtype=torch.float64)
    tb = torch.cat([torch.linspace(float(ta[j]), float(ta[j + 1]), 9, dtype=torch.float64)[:-1]
                    for j in range(4)] + [ta[-1:]])  # fmt: skip
    z_b = bridged_normals(z_a, ta, tb, seed=0)
    assert z_b.shape == (32, n, 2)
    sums = _increments(z_b, tb).reshape(4, 8, n, 2).sum(1)
    torch.testing.assert_close(sums, _increments(z_a, ta), rtol=0, atol=1e-5)
    flat = z_b.double().reshape(32, -1)
    assert flat.mean(1).abs().max() < 0.03  # 4 / √(2n)
    assert (flat.var(1) - 1).abs().max() < 0.05
    lag1 = (flat[1:] * flat[:-1]).mean(1)
    assert lag1.abs().max() < 0.03
    for k in range(32):
        j = k // 8
        corr = float((flat[k] * z_a[j].double().reshape(-1)).mean())
        assert abs(corr - math.sqrt(1 / 8)) < 0.03, (k, corr)


def test_grids_that_do_not_nest_keep_brownian_variance():
    """B on a grid that does not nest in A's, starting before A and ending after it: W read on
    B's points has Var(W(s) − W(1)) = 1 − s (fresh increments before and after A's span, bridges
    inside: the law of Brownian motion whatever the grids), and between two of B's points that
    are A's points it moved exactly as A's increments did."""
    n = 20_000
    ta = torch.linspace(0.9, 0.1, 9, dtype=torch.float64)  # 0.9, 0.8, ..., 0.1
    tb = torch.tensor([1.0, 0.95, 0.77, 0.5, 0.43, 0.2, 0.1, 0.05, 0.0], dtype=torch.float64)
    z_a = torch.randn(8, n, 2, generator=torch.Generator().manual_seed(3))
    z_b = bridged_normals(z_a, ta, tb, seed=4)
    w = torch.cat([torch.zeros(1, n, 2, dtype=torch.float64),
                   _increments(z_b, tb).cumsum(0)])  # W(s) − W(1) at B's points  # fmt: skip
    torch.testing.assert_close(w.reshape(9, -1).var(1), 1.0 - tb, rtol=0.05, atol=0.01)
    dw_a = _increments(z_a, ta)
    # from 0.5 (A's point 4) to 0.2 (A's point 7) and to 0.1 (A's end): A's own increments
    torch.testing.assert_close(w[5] - w[3], dw_a[4:7].sum(0), rtol=0, atol=1e-6)
    torch.testing.assert_close(w[6] - w[3], dw_a[4:8].sum(0), rtol=0, atol=1e-6)


def test_independent_when_seed_or_direction_differ():
    a = replace(BASE, kind="sde")
    path = path_of(a)
    for b in (replace(a, seed=1), replace(a, particles=301), replace(a, direction="forward")):
        noise, text = shared_noise(a, run_times(a, path), b, run_times(b, path),
                                   make_dataset(a.dataset))  # fmt: skip
        assert noise is None and "independent" in text


def test_given_noise_refuses_to_run_out():
    noise = GivenNoise(torch.zeros(2, 3, 2))
    x = torch.zeros(3, 2)
    noise.draw(x)
    noise.draw(x)
    with pytest.raises(RuntimeError):
        noise.draw(x)

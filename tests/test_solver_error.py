"""Solver error measurement: the reference against a closed form, the error measures on
hand-made tensors, the order fit on exact power laws, and a small error-vs-NFE sweep
(docs/MATH.md §4)."""

import itertools
import math

import pytest
import torch

from models.datasets import EightGaussians, Reference
from models.evaluation.solver_error import (
    COLUMNS,
    endpoint_error,
    error_vs_nfe,
    fitted_order,
    frame_errors,
    nfe_targets,
    reference,
    sw2_ratio,
)
from models.fields import ExactField
from models.paths import VPPath
from models.samplers import time_grid
from models.schedules import make_schedule

VP = VPPath(make_schedule("linear"))
MU, SD = torch.tensor([1.5, -0.5], dtype=torch.float64), 0.3


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_the_reference_is_the_closed_form_at_every_time():
    field = ExactField(VP, Reference(MU[None].clone(), torch.zeros(1, dtype=torch.long), SD),
                       dtype=torch.float64)  # fmt: skip
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    times = time_grid(1.0, 1e-3, 6)
    ref, stats = reference(field, VP, x, times)
    c = VP.coefficients(times)
    cc = torch.sqrt(c.a**2 * SD**2 + c.b**2)  # x_t − a_t μ scales like c_t
    want = c.a[:, None, None] * MU + (cc / cc[0])[:, None, None] * (x - c.a[0] * MU)
    assert float(frame_errors(ref, want).max()) < 1e-7
    assert stats["nfe"] == 2 + 6 * (stats["accepted"] + stats["rejected"])


def test_error_measures_on_hand_made_trajectories():
    ref = torch.zeros(3, 2, 2, dtype=torch.float64)
    traj = ref.clone()
    traj[1, 0] = torch.tensor([3.0, 4.0])  # one particle 5 away at frame 1
    traj[2] = torch.tensor([[0.0, 1.0], [0.0, -3.0]])  # 1 and 3 away at the end
    want = torch.tensor([0.0, 2.5, 2.0], dtype=torch.float64)
    torch.testing.assert_close(frame_errors(traj, ref), want)
    assert endpoint_error(traj, ref) == 2.0 == endpoint_error(traj[-1], ref[-1])


def test_fitted_order_recovers_power_laws_and_leaves_out_the_rounding_floor():
    nfes = [4, 8, 16, 32, 64, 128]
    assert fitted_order(nfes, [3.0 * n**-2.0 for n in nfes]) == pytest.approx(2.0, abs=1e-12)
    # pre-asymptotic start (larger errors at small NFE) is left out: the upper half is fitted
    errors = [1.0, 0.9, 16.0**-4, 32.0**-4, 64.0**-4, 128.0**-4]
    assert fitted_order(nfes, errors) == pytest.approx(4.0, abs=1e-9)
    # errors at the rounding floor are dropped, not fitted
    floored = [n**-1.0 for n in nfes[:4]] + [1e-17, 1e-17]
    assert fitted_order(nfes, floored) == pytest.approx(1.0, abs=1e-9)
    assert math.isnan(fitted_order([4, 8], [0.1, 0.05]))


def test_nfe_targets_are_log_spaced_whole_numbers():
    values = nfe_targets(4, 200, 9)
    assert values[0] == 4 and values[-1] == 200 and values == sorted(set(values))
    ratios = [b / a for a, b in itertools.pairwise(values)]
    assert max(ratios) / min(ratios) < 1.3


def test_sw2_ratio_tells_data_from_noise():
    data, gen = EightGaussians(), torch.Generator().manual_seed(0)
    fresh = data.sample(400, gen, dtype=torch.float64)[0]
    assert sw2_ratio(fresh, data) < 1.6
    assert sw2_ratio(torch.randn(400, 2, generator=gen), data) > 3


def test_error_vs_nfe_small_sweep():
    seen, data = [], EightGaussians()
    table = error_vs_nfe(data, VP, solvers=["euler", "heun", "dopri5"], grids=["uniform"],
                         nfes=[16, 32, 64, 128], particles=64, sw2=False,
                         progress=seen.append)  # fmt: skip
    assert not table.stopped
    assert all(set(row) == set(COLUMNS) for row in table.rows)
    heun = [r for r in table.rows if r["solver"] == "heun"]
    assert [r["nfe"] for r in heun] == [16, 32, 64, 128] and [r["steps"] for r in heun] == [
        8, 16, 32, 64]  # fmt: skip
    errors = [r["endpoint_error"] for r in heun]
    assert errors == sorted(errors, reverse=True)
    assert table.orders[("euler", "uniform")] == pytest.approx(1.0, abs=0.25)
    assert table.orders[("heun", "uniform")] == pytest.approx(2.0, abs=0.25)
    adaptive = [r for r in table.rows if r["solver"] == "dopri5"]
    assert {r["grid"] for r in adaptive} == {"adaptive"}
    assert all(r["nfe"] >= 2 + 6 * r["steps"] and (r["nfe"] - 2) % 6 == 0 for r in adaptive)
    assert min(r["endpoint_error"] for r in adaptive) < 1e-5
    assert all(math.isnan(r["sw2_ratio"]) for r in table.rows)
    (row,) = error_vs_nfe(data, VP, solvers=["heun"], grids=["logsnr"], nfes=[64]).rows
    assert row["grid"] == "logsnr" and row["nfe"] == 64 and 0.5 < row["sw2_ratio"] < 1.6
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)


def test_error_vs_nfe_stops_when_asked():
    reports = []

    def should_stop():
        return len(reports) > 2  # after the reference and two runs

    table = error_vs_nfe(
        EightGaussians(), VP, solvers=["euler", "rk4"], grids=["uniform"], nfes=[8, 16, 32],
        particles=32, sw2=False, should_stop=should_stop, progress=reports.append,
    )  # fmt: skip
    assert table.stopped and len(table.rows) == 2


def test_error_vs_nfe_polls_inside_the_reference():
    """The reference's adaptive solve polls at every evaluation: a stop lands at once."""
    polls = []

    def should_stop():
        polls.append(1)
        return len(polls) > 5

    table = error_vs_nfe(EightGaussians(), VP, solvers=["euler"], grids=["uniform"],
                         nfes=[8], particles=32, sw2=False, should_stop=should_stop)  # fmt: skip
    assert table.stopped and table.rows == [] and len(polls) == 6

"""Eulerian frames: particle densities and the exact mixture density on the grid.

See docs/MATH.md §5-6.
"""

import numpy as np
import pytest
import torch

from models.datasets import Moons, Reference
from models.density import Grid, histogram_density, mixture_density
from models.fields import ExactField
from models.paths import LinearFMPath, VPPath
from models.schedules import make_schedule

GRID = Grid((-4.0, 4.0, -4.0, 4.0), (64, 80))


def cell_area(grid):
    dx, dy = grid.cell
    return dx * dy


def test_histogram_mass_is_the_fraction_inside_the_box(gen):
    x = 3 * torch.randn(1, 10_000, 2, generator=gen)
    inside = ((x.abs() < 4).all(-1)).float().mean()
    mass = histogram_density(x, GRID, bandwidth=0).sum() * cell_area(GRID)
    assert float(mass) == pytest.approx(float(inside), rel=1e-5)


def test_histogram_puts_mass_in_the_right_cell():
    x = torch.tensor(
        [[[1.05, -2.95]]]
    )  # x in column (1.05+4)/0.1 = 50, y in row (−2.95+4)/0.125 = 8
    d = histogram_density(x, GRID, bandwidth=0)[0]
    assert d.nonzero().tolist() == [[8, 50]]


def test_smoothing_keeps_mass_and_mean(gen):
    x = 0.5 * torch.randn(3, 5000, 2, generator=gen) + torch.tensor([0.7, -0.4])
    d = histogram_density(x, GRID, bandwidth=0.3)
    xs, ys = GRID.centres()
    area = cell_area(GRID)
    for frame in d.double():
        assert float(frame.sum() * area) == pytest.approx(1.0, abs=1e-4)
        assert float((frame.sum(0) * xs).sum() * area) == pytest.approx(0.7, abs=0.03)
        assert float((frame.sum(1) * ys).sum() * area) == pytest.approx(-0.4, abs=0.03)


@pytest.mark.parametrize(
    "path", [VPPath(make_schedule("linear")), LinearFMPath()], ids=["vp", "fm"]
)
def test_mixture_density_equals_pointwise_mixture(path):
    ref = Moons().reference(200)
    times = torch.tensor([0.0, 0.3, 0.8, 1.0], dtype=torch.float64)
    grid_d = mixture_density(ref, path, times, GRID)
    field = ExactField(path, ref, dtype=torch.float64)
    xs, ys = GRID.centres()
    pts = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    for i, t in enumerate(times.tolist()):
        direct = field.log_density(pts, t).exp().reshape(GRID.shape)
        torch.testing.assert_close(grid_d[i].double(), direct, rtol=1e-4, atol=1e-6)


def test_particle_density_converges_to_the_exact_density(gen):
    """Particles drawn from p_t, gridded, approach p_t as N grows (L1 error shrinks)."""
    ref = Reference(
        torch.tensor([[1.0, 1.0], [-1.5, 0.0]], dtype=torch.float64), torch.arange(2), 0.5
    )
    path = LinearFMPath()
    exact = mixture_density(ref, path, torch.tensor([0.3], dtype=torch.float64), GRID)[0]
    errors = []
    for n in (2_000, 200_000):
        idx = torch.randint(0, 2, (n,), generator=gen)
        x0 = ref.points[idx] + 0.5 * torch.randn(n, 2, generator=gen, dtype=torch.float64)
        xt, _ = path.sample(x0, 0.3, gen)
        d = histogram_density(xt[None].float(), GRID, bandwidth=0.1)[0]
        errors.append(float((d - exact).abs().sum() * cell_area(GRID)))
    assert errors[1] < 0.1 and errors[1] < errors[0] / 2, errors


def test_density_arrays_have_frame_row_column_layout():
    d = histogram_density(torch.zeros(5, 10, 2), GRID, bandwidth=0.0)
    assert d.shape == (5, 64, 80) and d.dtype == torch.float32
    assert np.isclose(float(d[0, 32, 40]) * cell_area(GRID), 1.0)


@pytest.mark.parametrize("sigma", [(0.7, 0.7), (0.96, 2.3), (0.0, 1.5)])
def test_smooth_is_the_truncated_gaussian_and_loses_what_passes_the_border(sigma):
    """A unit spike blurs into the outer product of the normalised Gaussians truncated at
    ⌈3σ⌉ (closed form); next to the border, the part beyond it is gone."""
    import math

    from models.density import smooth

    def taps(s, n, centre):
        if s == 0:
            return torch.nn.functional.one_hot(torch.tensor(centre), n).double()
        r = math.ceil(3 * s)
        u = torch.arange(n, dtype=torch.float64) - centre
        g = torch.exp(-0.5 * (u / s) ** 2) * (u.abs() <= r)
        full = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / s) ** 2).sum()
        return g / full

    for cy, cx in [(20, 17), (0, 1), (39, 38)]:  # inside, and at the borders
        img = torch.zeros(2, 40, 41, dtype=torch.float64)
        img[1, cy, cx] = 1.0
        out = smooth(img, sigma)
        want = torch.outer(taps(sigma[0], 40, cy), taps(sigma[1], 41, cx))
        torch.testing.assert_close(out[1], want, rtol=1e-12, atol=1e-15)
        assert float(out[0].abs().max()) == 0.0
    assert float(out[1].sum()) < 0.99  # a spike by the edge loses the mass blurred past it


@pytest.mark.parametrize("process", ["fm", "vp"])
def test_mixture_density_of_grid_blocks_equals_the_plain_sum(process):
    """The checkerboard's exact density summed per axis, against the sum over its 1152
    components (float32 throughout), at the ends and between."""
    import dataclasses

    from models.datasets import Checkerboard
    from models.paths import make_path

    ref = Checkerboard().mixture
    path = make_path(process, make_schedule("linear"))
    times = torch.tensor([0.0, 1e-7, 0.02, 0.3, 0.8, 1.0], dtype=torch.float64)
    grid = Grid((-4.0, 4.0, -4.0, 4.0), (48, 40))
    got = mixture_density(ref, path, times, grid)
    want = mixture_density(dataclasses.replace(ref, grid=None), path, times, grid)
    scale = want.amax((1, 2), keepdim=True)
    torch.testing.assert_close(got / scale, want / scale, rtol=0, atol=1e-5)

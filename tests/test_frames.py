"""Frame packing: the columns shipped to the browser (shapes, dtypes, sizes, faithfulness)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from app.session.state import ARROWS, FlowState
from app.ui.frames import (
    CONTOUR_LEVELS,
    nbytes,
    pack_arrows,
    pack_contours,
    pack_grid,
    pack_particles,
    positions_fine_enough,
    quantize,
    quantize_positions,
)
from app.ui.views import stacks_sent
from models.density import histogram_density


@pytest.fixture(scope="module")
def state():
    s = FlowState(dataset="moons", steps=30, particles=500, overlay="velocity", contours=True)
    s.recompute()
    return s


def test_particle_array_is_frame_major_int16_within_half_a_step(state):
    data = pack_particles(state.result)
    (xy,), (scale,), (labels,), (n,) = data["xy"], data["scale"], data["label"], data["n"]
    assert xy.dtype == np.int16 and xy.shape == (31 * 2 * 500,) and n == 500
    largest = np.abs(state.result.trajectories).max()
    assert scale == pytest.approx(largest / 32767) and np.abs(xy).max() == 32767
    for i in (0, 15, 30):  # the slices render.js decodes for frame i
        for axis in (0, 1):
            codes = xy[(2 * i + axis) * n : (2 * i + axis + 1) * n]
            np.testing.assert_allclose(
                codes * scale, state.result.trajectories[i, :, axis], rtol=0, atol=0.5001 * scale
            )
    assert set(np.unique(labels)) <= {0.0, 1.0}


def test_float32_positions_are_rounded_in_float64_whatever_their_layout():
    # a float32 division would round a code off by one now and then (its error ~0.002 of a
    # step at 32767); the transposed view is how pack_particles passes them
    positions = (np.random.default_rng(1).standard_normal((7, 300, 2)) * 3).astype(np.float32)
    view = positions.transpose(0, 2, 1)
    codes, scale = quantize_positions(view)
    assert scale == float(np.abs(positions).max()) / 32767
    np.testing.assert_array_equal(codes, np.rint(view.astype(np.float64) / scale))
    assert codes.dtype == np.int16 and codes.shape == (7, 2, 300)


def test_positions_of_a_still_run_quantize_without_dividing_by_zero():
    codes, scale = quantize_positions(np.zeros((3, 2, 4)))
    assert scale == 1.0 and not codes.any()


def test_quantized_density_is_faithful_to_half_a_level():
    rng = np.random.default_rng(0)
    frames = rng.random((4, 8, 8)).astype(np.float32) * np.array([1, 10, 0.01, 0])[:, None, None]
    images, peaks = quantize(frames)
    assert images.dtype == np.uint8 and images.shape == (4, 8, 8)
    np.testing.assert_allclose(peaks, frames.reshape(4, -1).max(1))
    for img, peak, frame in zip(images, peaks, frames, strict=True):
        np.testing.assert_allclose(img / 255.0 * peak, frame, atol=peak / 510 + 1e-12)


def test_grid_columns(state):
    rows, images = pack_grid(state.result)
    assert len(rows["t"]) == len(rows["peak"]) == len(rows["exact_peak"]) == 31
    assert images["density"][0].shape == images["exact"][0].shape == (31, 96, 96)
    assert images["exact"][0].dtype == np.uint8
    assert rows["t"][0] == 1.0 and rows["t"][-1] == 0.0


def test_arrows_point_along_the_field_and_are_bounded(state):
    data = pack_arrows(state.arrows, state.result.extent, ARROWS)
    cell = 8 / ARROWS
    (uv,), p = data["velocity"], len(data["x"][0])
    for i in (0, 30):
        u, v = uv[2 * i * p : (2 * i + 1) * p], uv[(2 * i + 1) * p : (2 * i + 2) * p]
        assert np.hypot(u, v).max() <= 1.8 * cell + 1e-6
        field = state.arrows["velocity"][i]
        cos = (u * field[:, 0] + v * field[:, 1]) / (
            np.hypot(u, v) * np.linalg.norm(field, axis=1) + 1e-12
        )
        assert np.all(cos[np.hypot(u, v) > 1e-6] > 0.999)


def test_contours_lie_on_their_levels(state):
    data = pack_contours(state.result)
    exact = state.result.exact_density
    x0, x1, y0, y1 = state.result.extent
    i = 10
    pts = np.concatenate([np.stack([xs, ys], 1) for xs, ys in zip(data["xs"][i], data["ys"][i],
                                                                 strict=True)])  # fmt: skip
    h, w = exact.shape[1:]
    col = np.clip(((pts[:, 0] - x0) / (x1 - x0) * w - 0.5).round().astype(int), 0, w - 1)
    row = np.clip(((pts[:, 1] - y0) / (y1 - y0) * h - 0.5).round().astype(int), 0, h - 1)
    values = exact[i][row, col] / exact[i].max()
    nearest = np.min(np.abs(values[:, None] - np.array(CONTOUR_LEVELS)[None]), axis=1)
    assert np.median(nearest) < 0.05


def test_payload_of_the_default_run_is_its_positions():
    s = FlowState()
    s.recompute()
    # what a default recompute ships: 2000 x 101 x 2 int16 = 0.8 MB of positions, and no
    # density stack (the page histograms the particles itself; 101 x 96² uint8 = 0.93 MB more)
    _, images = pack_grid(s.result, stacks=stacks_sent(s.density_source))
    total = nbytes(pack_particles(s.result)) + nbytes(images)
    assert 0.8e6 < total < 0.85e6


def test_the_particles_density_travels_only_when_the_page_cannot_make_it(state):
    """The page histograms int16 positions: faithful while their rounding step is a small
    share of a cell. A run that flew far out (|x| ~ 80: a step of 3% of a cell) sends it."""
    assert positions_fine_enough(state.result)
    assert stacks_sent("particles", state.result) == ()
    far = dataclasses.replace(state.result, trajectories=state.result.trajectories * 20)
    assert np.abs(far.trajectories).max() > 50 and not positions_fine_enough(far)
    assert stacks_sent("particles", far) == ("density",)
    assert stacks_sent("exact", far) == ("exact",)  # a shown stack travels whatever the run


def test_the_server_histograms_the_particles_only_when_asked():
    """A default run's publish leaves the particles' density unmade (the page makes it, its
    peak too); asked for, it is the histogram of the run's own positions, and a copy of the
    run with other positions makes its own."""
    s = FlowState(steps=20, particles=500)
    s.recompute()
    result = s.result
    rows, images = pack_grid(result, stacks=stacks_sent(s.density_source, result))
    assert result._density is None and np.isnan(rows["peak"]).all()
    assert images["density"][0].shape == (0, 96, 96)
    frames = torch.from_numpy(result.trajectories)
    want = histogram_density(frames, result.config.grid, result.config.bandwidth).numpy()
    np.testing.assert_array_equal(result.density, want)
    rows, _ = pack_grid(result, stacks=("density",))
    np.testing.assert_allclose(rows["peak"], want.reshape(21, -1).max(1), rtol=1e-6)
    moved = dataclasses.replace(result, trajectories=result.trajectories + 0.5)
    assert moved._density is None and not np.array_equal(moved.density, result.density)


def test_only_the_shown_stack_travels(state):
    _, images = pack_grid(state.result, stacks=("exact",))
    assert images["density"][0].shape == (0, 96, 96) and images["exact"][0].shape == (31, 96, 96)


def test_difference_arrows_take_the_velocity_scale():
    """A learned field off by 0.1 % of the velocity draws arrows 0.1 % as long as the velocity
    overlay's, not as long (which per-frame scaling of the difference alone drew)."""
    rng = np.random.default_rng(0)
    points = rng.uniform(-4, 4, size=(40, 2)).astype(np.float32)
    sizes = np.array([1, 10, 100], np.float32)[:, None, None]  # frames of different magnitude
    velocity = rng.normal(size=(3, 40, 2)).astype(np.float32) * sizes
    rotate = np.array([[0.0, -1.0], [1.0, 0.0]], np.float32)
    arrows = {"points": points, "velocity": velocity, "difference": 1e-3 * velocity @ rotate}
    data = pack_arrows(arrows, (-4.0, 4.0, -4.0, 4.0), ARROWS)
    p = len(points)
    for i in range(3):
        vel = data["velocity"][0].reshape(3, 2, p)[i]
        diff = data["difference"][0].reshape(3, 2, p)[i]
        unclipped = np.hypot(*vel) < 2 * 0.9 * 8 / ARROWS - 1e-6
        np.testing.assert_allclose(np.hypot(*diff)[unclipped], 1e-3 * np.hypot(*vel)[unclipped],
                                   rtol=1e-4)  # fmt: skip
        np.testing.assert_allclose(diff.T, 1e-3 * vel.T @ rotate, atol=1e-6)
    zero = pack_arrows({**arrows, "difference": 0 * velocity}, (-4.0, 4.0, -4.0, 4.0), ARROWS)
    assert not zero["difference"][0].any()

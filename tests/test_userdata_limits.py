"""A user's points within the limits the field can take: coordinates within ±MAX_COORD unless
they are to be fitted, and a fit that would squeeze the points onto one spot refused.
Edges at the exact limit and one ulp either side."""

from __future__ import annotations

import numpy as np
import pytest

from app.session.userdata import SQUEEZED, check_points, fit_into_view
from models.datasets import MAX_COORD

EXTENT = (-4.0, 4.0, -4.0, 4.0)
RNG = np.random.default_rng(0)
NORMAL = RNG.normal(size=(20, 2))


@pytest.mark.parametrize("far", [1e308, -1e308, 1001.0, np.nextafter(MAX_COORD, np.inf)])
def test_a_far_point_is_refused_with_the_limit(far):
    points = np.vstack([NORMAL, [[far, 0.0]]])
    with pytest.raises(ValueError, match="±1000"):
        check_points(points, "u.csv")


@pytest.mark.parametrize("edge", [MAX_COORD, -MAX_COORD, np.nextafter(MAX_COORD, 0)])
def test_points_at_the_limit_are_kept(edge):
    points = np.vstack([NORMAL, [[edge, edge]]])
    assert np.array_equal(check_points(points), points)


def test_unbounded_points_are_kept_for_fitting():
    points = NORMAL * 1e6
    assert np.array_equal(check_points(points, bounded=False), points)


@pytest.mark.parametrize("far", [1e308, -1.7e308, 1e12])
def test_a_fit_that_would_squeeze_the_points_is_refused(far):
    points = np.vstack([NORMAL * 100 + 500, [[far, 0.0]]])
    with pytest.raises(ValueError, match="squeeze"):
        fit_into_view(points, EXTENT)


def test_opposite_extremes_do_not_overflow():
    points = np.vstack([NORMAL, [[1.7e308, 0.0], [-1.7e308, 0.0]]])
    with np.errstate(all="raise"), pytest.raises(ValueError, match="squeeze"):
        fit_into_view(points, EXTENT)


def test_a_fit_fills_the_view_and_keeps_the_shape():
    """Pixel coordinates: moved and scaled into the box less its margin, aspect kept."""
    pixels = np.column_stack([RNG.uniform(100, 900, 500), RNG.uniform(200, 400, 500)])
    fitted = fit_into_view(pixels, EXTENT)
    span = fitted.max(0) - fitted.min(0)
    assert span[0] == pytest.approx(6.5)  # 8 less a margin of 0.75 on each side
    assert span[1] / span[0] == pytest.approx(np.ptp(pixels[:, 1]) / np.ptp(pixels[:, 0]))
    assert np.abs(fitted).max() <= 3.25 + 1e-12


def test_a_tight_cluster_alone_is_fitted_not_refused():
    """The same shape a million times smaller: no far points, nothing squeezed."""
    fitted = fit_into_view(NORMAL * 1e-6 + 3, EXTENT)
    assert np.ptp(fitted, axis=0).max() == pytest.approx(6.5)
    assert SQUEEZED < 0.1


def test_identical_points_are_centred():
    fitted = fit_into_view(np.ones((5, 2)) * 700, EXTENT)
    assert np.allclose(fitted, 0.0)

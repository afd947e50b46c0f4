"""Every built-in data set is exactly the Gaussian mixture its exact field uses."""

import pytest
import torch

from models.datasets import DATASETS, Points, make_dataset

CURVES = ("moons", "circles", "swissroll", "spirals", "checkerboard")
# δ/σ_d at most; the spiral's innermost r² steps are longest
SPACING = {"moons": 1.0, "circles": 1.5, "swissroll": 1.5, "spirals": 1.8, "checkerboard": 1.05}


@pytest.mark.parametrize("name", CURVES)
def test_components_are_dense_against_their_width(name):
    """Spacing δ ≤ 1.5 σ_d: the mixture equals the curve blurred by σ_d up to a ripple of
    2 exp(−2π² σ_d²/δ²) ≤ 3e−4 (4e-3 at the spirals' nearly empty centre)."""
    mix = make_dataset(name).mixture
    d = torch.cdist(mix.points, mix.points)
    d.fill_diagonal_(float("inf"))
    assert float(d.min(1).values.max()) <= SPACING[name] * mix.sigma + 1e-12


@pytest.mark.parametrize("name", list(DATASETS))
def test_sampling_draws_from_the_mixture(name, gen):
    """Fresh samples have the mixture's mean and covariance (component spread + σ_d² I)."""
    data = make_dataset(name)
    mix = data.mixture
    n = 200_000
    x, labels = data.sample(n, gen, dtype=torch.float64)
    mean = mix.points.mean(0)
    cov = torch.cov(mix.points.T, correction=0) + mix.sigma**2 * torch.eye(2, dtype=torch.float64)
    se = (cov.diagonal() / n).sqrt()
    assert (x.mean(0) - mean).abs().max() < 5 * se.max()
    torch.testing.assert_close(torch.cov(x.T), cov, rtol=0.02, atol=0.02 * float(cov.max()))
    assert labels.max() < data.n_labels and labels.min() >= 0


@pytest.mark.parametrize("name", list(DATASETS))
def test_the_field_uses_the_data_sets_own_mixture(name):
    data = make_dataset(name)
    for m in (None, 10, 600, 4000):
        ref = data.reference(m)
        assert ref is data.mixture and ref.sigma == data.sigma


def test_user_points_are_their_own_empirical_mixture(gen):
    pts = torch.randn(5000, 2, generator=gen, dtype=torch.float64)
    data = Points(pts, bandwidth=0.2)
    assert len(data.reference(600).points) == 600 and data.reference(600).sigma == 0.2
    assert torch.equal(data.mixture.points, pts)

"""The memorization readout against hand-made sets whose answer is known by construction."""

from __future__ import annotations

import pytest
import torch

from models.datasets import make_dataset
from models.evaluation.memorization import (
    memorization_delta,
    memorized_share,
    nearest_distance,
    training_points,
)
from models.learned.training import TrainConfig, Trainer


def test_share_counts_samples_within_delta_of_a_training_point():
    train = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    samples = torch.tensor([
        [0.05, 0.0],   # 0.05 from (0, 0): in
        [1.0, 0.09],   # 0.09 from (1, 0): in
        [0.5, 0.5],    # 0.707 from all: out
        [0.0, 1.2],    # 0.2 from (0, 1): out
    ])  # fmt: skip
    assert memorized_share(samples, train, 0.1) == pytest.approx(0.5)
    assert memorized_share(samples, train, 0.25) == pytest.approx(0.75)
    assert memorized_share(samples, train, 0.0) == 0.0
    assert memorized_share(train, train, 0.0) == 1.0  # the points themselves


def test_delta_is_a_fraction_of_the_median_nearest_neighbour_spacing():
    # points on a line at 0, 1, 3, 5, 9: nearest other point 1, 1, 2, 2, 4 away → median 2
    train = torch.tensor([[0.0, 0], [1, 0], [3, 0], [5, 0], [9, 0]])
    assert nearest_distance(train, train, exclude_self=True).tolist() == [1, 1, 2, 2, 4]
    assert memorization_delta(train) == pytest.approx(0.25 * 2)
    assert memorization_delta(train, 0.5) == pytest.approx(1.0)


def test_chunked_distances_match_a_direct_computation():
    g = torch.Generator().manual_seed(1)
    x, p = torch.randn(9000, 2, generator=g), torch.randn(50, 2, generator=g)
    direct = torch.cdist(x.double(), p.double()).min(1).values
    assert torch.allclose(nearest_distance(x, p), direct)


def test_training_points_are_the_trainers_training_set():
    data = make_dataset("moons")
    trainer = Trainer(TrainConfig(dataset="moons", train_size=37, seed=5, steps=1,
                                  device="cpu"))  # fmt: skip
    points, labels = training_points(data, 37, 5)
    assert torch.equal(points, trainer.train_points)
    assert labels.shape == (37,)

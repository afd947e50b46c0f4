"""Your points with classes: a label column in a file, the brush's class, the link, the CSV."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from bokeh.plotting import figure

from app.session.state import FlowState
from app.session.userdata import decode_labelled_points, encode_points, points_csv
from app.ui.data_panel import DataPanel
from models.pointfiles import PointFileError, read_labelled_points, read_points


def _npz(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _npy(array) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def test_a_label_column_is_read_from_csv_npy_and_npz():
    points = np.array([[0.5, 1.0], [2.0, -1.0], [0.0, 0.25]])
    labels = np.array([0, 3, 1])
    csv = "x,y,label\n" + "".join(
        f"{x},{y},{k}\n" for (x, y), k in zip(points, labels, strict=True)
    )
    for data, name in ((csv.encode(), "a.csv"), (_npy(np.c_[points, labels]), "a.npy"),
                       (_npz(points=points, labels=labels), "a.npz")):  # fmt: skip
        got, got_labels = read_labelled_points(data, name)
        assert np.array_equal(got, points) and np.array_equal(got_labels, labels)
        assert np.array_equal(read_points(data, name), points)
    assert read_labelled_points(b"1,2\n3,4\n", "b.csv")[1] is None


@pytest.mark.parametrize(("data", "name", "words"), [
    (b"1,2,0.5\n", "c.csv", "whole numbers 0..63"),
    (b"1,2,64\n", "c.csv", "whole numbers 0..63"),
    (b"1,2,-1\n", "c.csv", "whole numbers 0..63"),
    (b"1,2,nan\n", "c.csv", "NaN"),
    (b"1,2\n3,4,1\n", "c.csv", "line 2 has 3 columns; expected 2"),
    (b"1,2,3,4\n", "c.csv", "expected 2 (x, y) or 3"),
    (_npz(points=np.zeros((3, 2)), labels=np.zeros(2, int)), "c.npz", "one label per point"),
    (_npz(points=np.zeros((3, 2)), labels=np.zeros((3, 1))), "c.npz", "shape (M,)"),
    (_npy(np.zeros(5)), "c.npy", "(M, 2)"),
])  # fmt: skip
def test_bad_labels_are_refused_in_one_line_naming_the_file(data, name, words):
    with pytest.raises(PointFileError, match=re.escape(words)) as caught:
        read_labelled_points(data, name)
    assert str(caught.value).startswith(name) and "\n" not in str(caught.value)


def test_labels_travel_in_the_link_and_the_csv():
    rng = np.random.default_rng(1)
    points, labels = rng.uniform(-3, 3, (300, 2)), rng.integers(0, 5, 300)
    got, got_labels = decode_labelled_points(encode_points(points, labels))
    assert np.abs(got - points).max() < 1e-3 and np.array_equal(got_labels, labels)
    assert decode_labelled_points(encode_points(points))[1] is None
    back, back_labels = read_labelled_points(points_csv(points, labels).encode(), "d.csv")
    assert np.allclose(back, points) and np.array_equal(back_labels, labels)


def test_a_damaged_labelled_link_is_refused():
    text = encode_points(np.zeros((4, 2)) + 1.0, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="damaged"):
        decode_labelled_points(text[:-6])


def test_the_brush_class_labels_the_stroke_and_undo_restores_the_labels():
    state = FlowState()
    panel = DataPanel(figure(), state=state)
    panel.add_stroke([0.0, 1.0], [0.0, 0.0])  # class 0: one class, no labels
    assert state.point_labels is None
    first = len(state.points)
    panel.brush_class = 3
    panel.add_stroke([0.0, 0.0], [1.0, 2.0])
    assert state.point_labels[:first].tolist() == [0] * first
    assert set(state.point_labels[first:].tolist()) == {3}
    assert "3: class 3" in state.class_options()
    state.guidance_class = 3
    panel.undo_last()  # back to one class: the class it named goes
    assert state.point_labels is None and state.guidance_class == -1


def test_only_the_classes_the_points_have_are_offered():
    state = FlowState(dataset="points", points=np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]]),
                      point_labels=np.array([3, 3, 3]))  # fmt: skip
    assert list(state.class_options().values()) == [-1, 3]
    state.guidance_class = 0  # not one of them: back to none
    state.guidance_class = 3
    state.recompute()
    assert state.result.config.guidance_class == 3


def test_a_link_refuses_labels_it_cannot_carry():
    with pytest.raises(ValueError, match=r"0\.\.63"):
        encode_points(np.zeros((3, 2)), np.array([0, 1, 256]))


def test_a_density_without_mass_cannot_be_sampled():
    import torch

    from models.class_maps import sample_grid
    from models.density import Grid

    with pytest.raises(ValueError, match="no mass"):
        sample_grid(torch.zeros(4, 4), Grid((0, 1, 0, 1), (4, 4)), 10, torch.Generator())

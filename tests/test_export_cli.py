"""``flowscope export`` draws what the page can show (``--contours``, ``--overlay``,
``--shade``, named as the URL's parameters), and takes its format from ``--out``'s suffix:
a ``--format`` that disagrees with it, or neither telling, is one line and exit code 2."""

from types import SimpleNamespace

import numpy as np
import pytest

from app.cli import main
from app.session.state import FlowState
from models.run.config import RunConfig
from models.run.simulate import simulate
from tests.test_export_overlays import (
    FRAME,
    SIZE,
    STRAY,
    arrow_mask,
    changed,
    contour_mask,
    read,
    shade_fraction,
    unchanged,
)

RUN = ("--dataset", "moons", "--steps", "8", "--particles", "300", "--resolution", "48")
DRAW = ("--size", str(SIZE), "--trail", "0")


@pytest.fixture(scope="module")
def run():
    """The run the command line makes of RUN, and the overlay fields of its exact field."""
    result = simulate(
        RunConfig(dataset="moons", steps=8, particles=300, resolution=48, log_density=True)
    )
    return SimpleNamespace(result=result, arrows=FlowState().field_arrows(result))


def export_frame(tmp_path, name, *options) -> np.ndarray:
    out = tmp_path / name
    assert main(["export", *RUN, *DRAW, *options, "--out", str(out)]) == 0
    return read(out)[FRAME].astype(int)


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_contours_overlay_and_shading_are_drawn(run, fmt, tmp_path):
    plain = export_frame(tmp_path, f"plain.{fmt}")
    lines = export_frame(tmp_path, f"lines.{fmt}", "--contours")
    diff = changed(lines[:SIZE, SIZE:], plain[:SIZE, SIZE:])
    assert diff.sum() > 300 and (diff & ~contour_mask(run.result)).sum() < STRAY[fmt] * diff.sum()

    arrows = export_frame(tmp_path, f"arrows.{fmt}", "--overlay", "score")
    diff = changed(arrows[:SIZE, :SIZE], plain[:SIZE, :SIZE])
    mask = arrow_mask(run, "score")
    assert diff.sum() > 200 and (diff & ~mask).sum() < STRAY[fmt] * diff.sum()

    shaded = export_frame(tmp_path, f"shaded.{fmt}", "--shade")
    assert shade_fraction(shaded, run.result) > 0.8 > 0.4 > shade_fraction(plain, run.result)
    assert unchanged(shaded[:SIZE, SIZE:], plain[:SIZE, SIZE:])


def test_the_difference_overlay_of_a_learned_field(tmp_path):
    plain = export_frame(tmp_path, "plain.gif", "--field", "learned")
    arrows = export_frame(tmp_path, "diff.gif", "--field", "learned", "--overlay", "difference")
    assert changed(arrows[:SIZE, :SIZE], plain[:SIZE, :SIZE]).sum() > 200


def no_compute(*_args, **_kwargs):
    raise AssertionError("computed before refusing")


def exit_code(argv) -> int:
    """main's exit code, argparse's refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "bad",
    [
        ("--overlay", "difference"),  # of the exact field: nothing to draw
        ("--shade", "--kind", "sde"),  # a stochastic path carries no density
        ("--overlay", "curl"),
    ],
)
def test_options_that_cannot_be_drawn_are_one_line_exit_2(bad, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("models.run.simulate.simulate", no_compute)
    out = tmp_path / "run.gif"
    assert exit_code(["export", *RUN, *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowscope: error: ") and err.count("\n") == 1
    assert not out.exists()


def test_the_format_is_taken_from_the_suffix(tmp_path, capsys):
    out = tmp_path / "run.GIF"
    assert main(["export", *RUN, "--size", "64", "--out", str(out)]) == 0
    assert out.read_bytes()[:6] == b"GIF89a"
    assert "gif" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ("--format", "mp4", "--out", "e.gif"),  # disagree
        ("--format", "npz", "--out", "run"),  # no suffix to agree with
        ("--out", "run.png"),  # neither tells
        ("--out", "run"),
    ],
)
def test_a_format_the_suffix_does_not_confirm_is_one_line_exit_2(
    args, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr("models.run.simulate.simulate", no_compute)
    monkeypatch.chdir(tmp_path)
    assert exit_code(["export", *RUN, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowscope: error: ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_overlay_fields_are_the_apps(run):
    from app.session.state import ARROWS
    from models.overlay import run_overlay

    mine = run_overlay(run.result, ARROWS)
    assert mine.keys() == run.arrows.keys()
    for kind, frames in run.arrows.items():
        np.testing.assert_array_equal(mine[kind], frames)

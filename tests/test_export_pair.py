"""A comparison's exports (``app/export/pair.py``) read back: the npz and CSV hold both runs as
the single-run files hold one, the pictures put A and B side by side as the single-run export
draws each, with A − B beside them (white where B equals A), one frame per step of the
timeline; a cancel or the bound leaves no file."""

import json

import numpy as np
import pytest

from app.export import Cancelled, ExportSettings, TooLarge
from app.export.data import npz_arrays, write_csv
from app.export.pair import export_pair, pair_estimate
from app.export.pair_frames import DIVERGING, ZERO, PairRasterizer, difference_codes
from app.export.raster import Rasterizer
from models.compare.pair import Side, density_difference, simulate_pair
from models.run.config import RunConfig
from tests.test_export_files import read_gif, read_mp4
from tests.test_export_raster import own_colour_fraction

SIZE = 96
BASE = {"dataset": "moons", "particles": 300, "resolution": 32, "seed": 4}


def pair_of(a: dict, b: dict):
    return simulate_pair(Side(RunConfig(**(BASE | a))), Side(RunConfig(**(BASE | b))))


@pytest.fixture(scope="module")
def pair():
    """A: Euler at 20 steps; B: Heun at 5 (its frame k at A's step 4k)."""
    return pair_of({"steps": 20}, {"steps": 5, "solver": "heun"})


@pytest.fixture(scope="module")
def twin():
    """B equal to A: the same run twice."""
    return pair_of({"steps": 8}, {"steps": 8})


def test_npz_holds_both_runs_as_sample_writes_each_and_the_timeline(pair, tmp_path):
    out = export_pair(pair, "npz", tmp_path / "pair.npz")
    with np.load(out, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    for name, run in (("a", pair.a), ("b", pair.b)):
        for key, value in npz_arrays(run).items():
            if key != "meta":
                np.testing.assert_array_equal(data[f"{name}_{key}"], value)
    assert data["a_trajectories"].shape == (21, 300, 2)
    assert data["b_trajectories"].shape == (6, 300, 2)
    assert "a_exact_density" in data and "b_exact_density" in data
    np.testing.assert_array_equal(data["frames_a"], np.arange(21))
    np.testing.assert_array_equal(data["frames_b"][::4], np.arange(6))
    np.testing.assert_array_equal(data["frame_times"], pair.a.times)
    np.testing.assert_array_equal(data["twin_distance"], pair.twin_distance)
    np.testing.assert_array_equal(data["sw2_ab"], pair.sw2)
    meta = json.loads(str(data["meta"]))
    assert meta["a"] == json.loads(pair.a.meta) and meta["b"]["solver"] == "heun"
    assert ["steps", 20, 5] in meta["changes"] and meta["shared"] == pair.shared


def test_csv_is_both_runs_rows_behind_their_run(pair, tmp_path):
    out = export_pair(pair, "csv", tmp_path / "pair.csv")
    lines = out.read_text().splitlines()
    assert lines[0] == "run,frame,t,particle,x,y,label"
    for name, run in (("a", pair.a), ("b", pair.b)):
        single = tmp_path / f"{name}.csv"
        write_csv(run, single)
        body = single.read_text().splitlines()[1:]
        mine = [line[2:] for line in lines[1:] if line.startswith(name + ",")]
        assert mine == body  # the single-run CSV's rows, character for character
    assert len(lines) - 1 == 21 * 300 + 6 * 300


def test_each_run_is_drawn_as_the_single_run_export_draws_it(pair):
    raster = PairRasterizer(pair, SIZE, trail=3)
    assert raster.n_frames == 21
    alone = [Rasterizer(pair.a, SIZE, trail=3), Rasterizer(pair.b, SIZE, trail=3)]
    below_tag = raster.tag.height  # the corner of each particle view holds its name
    for f in (0, 9, 20):
        picture = raster.frame(f)
        assert picture.shape == raster.shape and picture.shape[1] >= 5 * SIZE
        assert picture.shape[0] % 2 == 0 and picture.shape[1] % 2 == 0
        height = alone[0].shape[0]
        own_a = alone[0].frame(pair.frames.a[f])
        own_b = alone[1].frame(pair.frames.b[f])
        np.testing.assert_array_equal(picture[below_tag:height, : 2 * SIZE], own_a[below_tag:])
        np.testing.assert_array_equal(picture[below_tag:height, 2 * SIZE : 4 * SIZE],
                                      own_b[below_tag:])  # fmt: skip
        assert own_colour_fraction(picture[:, 2 * SIZE :], pair.b, pair.frames.b[f], SIZE) > 0.9


def test_the_difference_panel_is_a_minus_b_on_a_symmetric_scale(pair):
    raster = PairRasterizer(pair, SIZE, trail=0)
    diff = density_difference(pair)
    f = 10
    codes, top = raster.difference(f)
    assert top == pytest.approx(np.abs(diff[f]).max()) and top > 0
    expected = np.clip(ZERO + np.rint(diff[f].astype(float) * 127 / top), 1, 255)
    np.testing.assert_array_equal(codes, expected)
    panel = raster.frame(f)[:SIZE, 4 * SIZE : 5 * SIZE]
    # the grid is 32 cells: a cell is 3 px; its top-left pixel shows the cell (y up)
    np.testing.assert_array_equal(panel[0, 0], DIVERGING[codes[-1, 0]])
    red = panel[..., 0].astype(int) - panel[..., 2]
    assert (red > 30).any() and (red < -30).any()  # A denser here, B there


def test_b_equal_to_a_draws_a_white_difference(twin, tmp_path):
    assert twin.changes == [] and not twin.twin_distance.any()
    codes, top = difference_codes(np.zeros((4, 4), np.float32))
    assert top == 0 and (DIVERGING[codes] == 255).all()
    raster = PairRasterizer(twin, SIZE, trail=2)
    assert (raster.frame(5)[:SIZE, 4 * SIZE : 5 * SIZE] == 255).all()
    out = export_pair(twin, "gif", tmp_path / "twin.gif", ExportSettings(size=SIZE, fps=10))
    image, pictures = read_gif(out)
    assert image.n_frames == 9 and image.size == (raster.shape[1], raster.shape[0])
    for picture in pictures:
        assert (picture[:SIZE, 4 * SIZE : 5 * SIZE] >= 250).all()


def test_mp4_and_gif_have_a_frame_per_step_of_the_timeline(pair, tmp_path):
    settings = ExportSettings(size=101, fps=20, trail=2)  # odd: 5 x 101 is padded to even
    meta, pictures = read_mp4(export_pair(pair, "mp4", tmp_path / "pair.mp4", settings))
    height, width, _ = PairRasterizer(pair, 101).shape
    assert len(pictures) == 21 and meta["size"] == (width, height) == (506, height)
    image, _ = read_gif(export_pair(pair, "gif", tmp_path / "pair.gif", settings))
    assert image.n_frames == 21 and image.size == (width, height)


def test_html_page_has_both_runs_and_the_difference(pair, tmp_path):
    out = export_pair(pair, "html", tmp_path / "pair.html", ExportSettings(size=120))
    text = out.read_text()
    assert "<script src=" not in text and "<link" not in text  # nothing to fetch
    for title in (
        "A: particles",
        "A: density",
        "B: particles",
        "B: density",
        "B density (from particles)",
    ):  # A − B, its minus escaped in JSON
        assert title in text
    assert "const frame = shown[cb_obj.value]" in text and "SW2(A, B)" in text


def test_a_cancel_leaves_no_file(pair, tmp_path):
    def cancel_at_three(done, _total):
        if done == 3:
            raise Cancelled

    for fmt in ("mp4", "gif", "csv"):
        with pytest.raises(Cancelled):
            export_pair(pair, fmt, tmp_path / f"pair.{fmt}", ExportSettings(size=64),
                        progress=cancel_at_three)  # fmt: skip
    asked = []
    with pytest.raises(Cancelled):
        export_pair(pair, "mp4", tmp_path / "stop.mp4", ExportSettings(size=64),
                    should_stop=lambda: asked.append(1) or len(asked) > 4)  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_the_bound_covers_the_whole_wider_frame(pair, tmp_path):
    settings = ExportSettings(size=256)
    height, width, _ = PairRasterizer(pair, 256).shape
    assert pair_estimate(pair, "gif", settings) == 21 * height * width
    with pytest.raises(TooLarge, match="GIF of this comparison"):
        export_pair(pair, "gif", tmp_path / "big.gif", settings, max_bytes=20 * height * width)
    with pytest.raises(TooLarge, match="CSV of this comparison"):
        export_pair(pair, "csv", tmp_path / "big.csv", max_bytes=100_000)
    assert list(tmp_path.iterdir()) == []


def test_different_grids_and_particle_counts(tmp_path):
    pair = pair_of({"steps": 6}, {"steps": 6, "resolution": 24, "particles": 200})
    assert pair.twin_distance is None
    raster = PairRasterizer(pair, 64, trail=0)
    assert raster.difference(0) is None
    panel = raster.frame(3)[:64, 4 * 64 : 5 * 64]
    assert (panel == 225).all()  # grey: nothing to subtract
    with np.load(export_pair(pair, "npz", tmp_path / "p.npz")) as f:
        assert "twin_distance" not in f.files and f["b_trajectories"].shape == (7, 200, 2)
    lines = export_pair(pair, "csv", tmp_path / "p.csv").read_text().splitlines()
    assert len(lines) - 1 == 7 * 300 + 7 * 200

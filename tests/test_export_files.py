"""Every export format read back; ``flowscope export`` and its refusals (exit 2, no file)."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from app.cli import main
from app.export import Cancelled, ExportSettings, export
from app.export.raster import Rasterizer
from models.run.config import RunConfig
from models.run.simulate import simulate
from tests.test_export_raster import own_colour_fraction

SIZE = 400  # the app's view: squares of 4 px keep their colour through H.264's 4:2:0 chroma


@pytest.fixture(scope="module")
def result():
    config = RunConfig(dataset="8gaussians", steps=9, particles=300, seed=2, resolution=48,
                       n_reference=200)  # fmt: skip
    return simulate(config)


def read_mp4(path: Path) -> tuple[dict, list[np.ndarray]]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


def read_gif(path: Path) -> tuple[Image.Image, list[np.ndarray]]:
    image = Image.open(path)
    pictures = []
    for i in range(image.n_frames):
        image.seek(i)
        pictures.append(np.asarray(image.convert("RGB")))
    return image, pictures


def test_mp4_has_every_frame_at_its_size_and_the_particles_where_the_run_has_them(result, tmp_path):
    out = export(result, "mp4", tmp_path / "run.mp4", ExportSettings(size=SIZE, fps=20))
    meta, pictures = read_mp4(out)
    raster = Rasterizer(result, SIZE)
    shape = raster.shape
    assert len(pictures) == len(result.times) == 10
    assert meta["size"] == (2 * SIZE, shape[0]) and meta["fps"] == 20
    for i in (0, len(pictures) - 1):
        assert own_colour_fraction(pictures[i], result, i, SIZE) > 0.9
        assert np.abs(pictures[i].astype(int) - raster.frame(i)).mean() < 3  # lossy, but close
        assert own_colour_fraction(pictures[i], result, i, SIZE, flip=True) < 0.5


def test_gif_has_every_frame_at_its_size_and_the_particles_where_the_run_has_them(result, tmp_path):
    out = export(result, "gif", tmp_path / "run.gif", ExportSettings(size=SIZE, fps=10))
    image, pictures = read_gif(out)
    assert image.n_frames == len(result.times)
    assert image.size == (2 * SIZE, Rasterizer(result, SIZE).shape[0])
    assert image.info["duration"] == 100 and image.info["loop"] == 0
    for i in (0, image.n_frames - 1):
        assert own_colour_fraction(pictures[i], result, i, SIZE) > 0.9
        assert own_colour_fraction(pictures[i], result, i, SIZE, flip=True) < 0.5


def test_mp4_of_an_odd_size_has_even_dimensions(result, tmp_path):
    out = export(result, "mp4", tmp_path / "odd.mp4", ExportSettings(size=101))
    meta, pictures = read_mp4(out)
    assert len(pictures) == 10 and meta["size"][0] == 202 and meta["size"][1] % 2 == 0


def test_npz_is_the_sample_format(result, tmp_path):
    out = export(result, "npz", tmp_path / "run.npz")
    with np.load(out, allow_pickle=False) as data:
        np.testing.assert_array_equal(data["trajectories"], result.trajectories)
        np.testing.assert_array_equal(data["times"], result.times)
        np.testing.assert_array_equal(data["labels"], result.labels)
        np.testing.assert_array_equal(data["density"], result.density)
        np.testing.assert_array_equal(data["exact_density"], result.exact_density)
        assert tuple(data["extent"]) == result.extent
        assert json.loads(str(data["meta"]))["particles"] == 300


def test_csv_has_one_row_per_particle_and_frame(result, tmp_path):
    out = export(result, "csv", tmp_path / "run.csv")
    assert out.read_text().splitlines()[0] == "frame,t,particle,x,y,label"
    rows = np.loadtxt(out, delimiter=",", skiprows=1)
    frames, n = result.trajectories.shape[:2]
    assert rows.shape == (frames * n, 6)
    np.testing.assert_array_equal(rows[:, 0], np.repeat(np.arange(frames), n))
    np.testing.assert_array_equal(rows[:, 1], np.repeat(result.times, n))
    np.testing.assert_array_equal(rows[:, 2], np.tile(np.arange(n), frames))
    np.testing.assert_array_equal(rows[:, 3:5].astype(np.float32),
                                  result.trajectories.reshape(-1, 2))  # fmt: skip
    np.testing.assert_array_equal(rows[:, 5], np.tile(result.labels, frames))


def test_html_page_inlines_its_resources(result, tmp_path):
    text = export(result, "html", tmp_path / "run.html", ExportSettings(size=200)).read_text()
    assert "<script src=" not in text and "<link" not in text  # nothing to fetch
    assert "Particles (Lagrangian view)" in text and "const frame = cb_obj.value" in text


def test_html_page_carries_the_contours_and_overlay_shown_in_the_app(result):
    from app.export.page import standalone_html
    from app.session.state import FlowState

    plain = len(standalone_html(result, ExportSettings(size=200)))
    contours = len(standalone_html(result, ExportSettings(size=200, contours=True)))
    arrows = FlowState().field_arrows(result)
    overlay = standalone_html(result, ExportSettings(size=200, overlay="velocity"), arrows)
    assert contours > plain + 1000 and len(overlay) > plain + 1000


def test_a_cancelled_export_leaves_no_file(result, tmp_path):
    def cancel_at_frame_three(done, _total):
        if done == 3:
            raise Cancelled

    for fmt in ("mp4", "gif", "csv"):
        with pytest.raises(Cancelled):
            export(result, fmt, tmp_path / f"run.{fmt}", progress=cancel_at_frame_three)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_keeps_the_old_file(result, tmp_path):
    out = tmp_path / "run.mp4"
    out.write_bytes(b"old")

    def fail(_done, _total):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        export(result, "mp4", out, progress=fail)
    assert out.read_bytes() == b"old" and list(tmp_path.iterdir()) == [out]


# --- the command line ---------------------------------------------------------------------
SMALL = ("--steps", "6", "--particles", "200", "--resolution", "32")


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("fmt", ["gif", "npz"])
def test_cli_export_writes_t_plus_one_frames(tmp_path, fmt):
    out = tmp_path / f"run.{fmt}"
    proc = run_cli("export", "--format", fmt, "--dataset", "moons", *SMALL, "--size", "96",
                   "--trail", "3", "--density-source", "exact", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    if fmt == "gif":
        image = Image.open(out)
        assert image.n_frames == 7 and image.size[0] == 2 * 96
    else:
        with np.load(out) as data:
            assert data["trajectories"].shape == (7, 200, 2)


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores permission bits: /sys)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    for candidate in (folder, Path("/sys")):
        try:
            tempfile.TemporaryFile(dir=candidate).close()
        except OSError:
            return candidate
    pytest.skip("no unwritable folder available")


@pytest.mark.parametrize("where", ["missing folder", "unwritable folder", "a folder"])
def test_cli_bad_destination_is_one_line_exit_2_before_computing(tmp_path, where, monkeypatch,
                                                                 capsys):  # fmt: skip
    out = {"missing folder": tmp_path / "nope" / "run.mp4",
           "unwritable folder": unwritable_folder(tmp_path) / "run.mp4",
           "a folder": tmp_path}[where]  # fmt: skip
    before = set(os.listdir(out.parent)) if out.parent.is_dir() else set()

    def no_compute(*_args, **_kwargs):
        raise AssertionError("computed before checking the destination")

    monkeypatch.setattr("models.run.simulate.simulate", no_compute)
    assert main(["export", "--format", "mp4", *SMALL, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowscope: error: ") and err.count("\n") == 1
    if out.parent.is_dir():
        assert set(os.listdir(out.parent)) == before  # no partial or temporary file


@pytest.mark.parametrize("bad", [["--size", "8"], ["--fps", "0"], ["--trail", "99"],
                                 ["--steps", "0"]])  # fmt: skip
def test_cli_bad_settings_are_one_line_exit_2(tmp_path, bad, capsys):
    out = tmp_path / "run.gif"
    assert main(["export", "--format", "gif", *SMALL, *bad, "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not out.exists()

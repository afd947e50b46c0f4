"""The rasterized frames show what the app shows: particles where the run has them, in their
label's colour, and the heatmap of each frame scaled to its own peak through Inferno."""

import numpy as np
import pytest
from bokeh.palettes import Category10_10, Inferno256

from app.export.raster import TRAIL_ALPHA, TRAIL_CAP, Rasterizer
from models.run.config import RunConfig
from models.run.simulate import simulate

SIZE = 256


def rgb(colors) -> np.ndarray:
    return np.array([[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in colors], float)


PALETTE = rgb(Category10_10)
ON_WHITE = 0.85 * PALETTE + 0.15 * 255  # the app's squares: alpha 0.85


@pytest.fixture(scope="module")
def result():
    config = RunConfig(dataset="8gaussians", steps=12, particles=300, seed=1, resolution=64,
                       n_reference=200)  # fmt: skip
    return simulate(config)


@pytest.fixture(scope="module")
def moons():
    """A run whose density is not symmetric under y → −y (so a flipped heatmap shows)."""
    return simulate(RunConfig(dataset="moons", steps=6, particles=300, resolution=48,
                              n_reference=200))  # fmt: skip


def centre_pixels(result, frame, size, flip=False):
    """(rows, cols) of every particle's position in frame, projected independently of the
    exporter: x to the right, y up, the extent filling the view; and the mask of those inside."""
    x0, x1, y0, y1 = result.extent
    x, y = result.trajectories[frame].T.astype(float)
    if flip:
        y = -y
    col = np.floor((x - x0) / (x1 - x0) * size).astype(int)
    row = np.floor((y1 - y) / (y1 - y0) * size).astype(int)
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    return row, col, inside


def own_colour_fraction(picture, result, frame, size, flip=False) -> float:
    """Fraction of particles (inside the view) whose centre pixel has the colour of their own
    label (nearest of the ten palette colours as drawn on white)."""
    row, col, inside = centre_pixels(result, frame, size, flip)
    got = picture[row[inside], col[inside]].astype(float)  # (n, 3)
    nearest = np.linalg.norm(got[:, None] - ON_WHITE[None], axis=-1).argmin(1)
    close = np.linalg.norm(got - ON_WHITE[nearest], axis=-1) < 60
    own = nearest == result.labels[inside] % 10
    return float((own & close).mean())


def test_frames_have_the_layout_and_show_every_particle_in_its_colour(result):
    raster = Rasterizer(result, SIZE, trail=4)
    assert raster.n_frames == 13
    for i in (0, 12):
        picture = raster.frame(i)
        assert picture.shape == raster.shape and picture.shape[1] == 2 * SIZE
        assert picture.shape[0] > SIZE and picture.shape[0] % 2 == 0  # H.264 needs even
        assert own_colour_fraction(picture, result, i, SIZE) > 0.95
        # the check can fail: mirrored positions mostly fall on the background
        assert own_colour_fraction(picture, result, i, SIZE, flip=True) < 0.5


def test_heatmap_is_each_frame_scaled_to_its_peak_through_inferno(moons):
    raster = Rasterizer(moons, SIZE, trail=0, density_source="exact")
    inferno = rgb(Inferno256)
    for i in (0, 3, 6):
        picture = raster.frame(i)[:SIZE, SIZE:]
        density = moons.exact_density[i]
        h, w = density.shape
        for j, k in [np.unravel_index(density.argmax(), density.shape), (3, w - 5), (h // 3, 7)]:
            # grid row j is at height y_j: row 0 at the bottom of the picture
            r = int((h - 1 - j + 0.5) * SIZE / h)
            c = int((k + 0.5) * SIZE / w)
            want = inferno[int(np.rint(density[j, k] / density.max() * 255))]
            np.testing.assert_allclose(picture[r, c], want, atol=1)


def test_trails_draw_past_positions_and_only_when_asked(result):
    frame = 10
    with_trail = Rasterizer(result, SIZE, trail=6).frame(frame)[:SIZE, :SIZE]
    without = Rasterizer(result, SIZE, trail=0).frame(frame)[:SIZE, :SIZE]
    changed = np.abs(with_trail.astype(int) - without).sum(-1) > 0
    row, col, inside = centre_pixels(result, frame - 3, SIZE)  # a position three frames back
    moved = inside & (np.abs(result.trajectories[frame] - result.trajectories[frame - 3])
                      .max(1) > 0.2)  # fmt: skip
    assert changed[row[moved], col[moved]].mean() > 0.6
    assert changed.mean() < 0.2


def test_caption_changes_with_t_and_views_stay_put(result):
    raster = Rasterizer(result, SIZE, trail=0)
    a, b = raster.frame(0)[SIZE:], raster.frame(1)[SIZE:]
    assert (a < 128).any(), "no caption text"
    assert (a != b).any(), "the caption must show the frame's t"


def test_constants_agree_with_the_app():
    from app.ui.views import TRAIL_ALPHA as APP_ALPHA
    from app.ui.views import TRAIL_CAP as APP_CAP

    assert (TRAIL_CAP, TRAIL_ALPHA) == (APP_CAP, APP_ALPHA)


@pytest.mark.parametrize("size", [15, 5000])
def test_size_out_of_range_is_refused(result, size):
    with pytest.raises(ValueError, match="size"):
        Rasterizer(result, size)

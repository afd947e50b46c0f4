"""Exported MP4 and GIF frames show what the page shows: contour lines of the exact density,
the overlay's arrows (every kind the page offers, learned − exact too) and particles coloured
by the log-density they carry. Each is checked on the frames read back from the file, against
an export without it: the pixels that differ lie where the lines or arrows are."""

import numpy as np
import pytest
from bokeh.palettes import Inferno256

from app.export import ExportSettings, export
from app.session.state import FlowState
from app.ui.export_menu import ExportMenu
from app.ui.frames import pack_arrows, pack_contours
from tests.test_export_files import read_gif, read_mp4

SIZE = 400  # the app's view: 4 px squares keep their colour through H.264's 4:2:0 chroma
FRAME = 5
OVERLAY_KINDS = [v for v in FlowState.param.overlay.objects.values() if v != "none"]


@pytest.fixture(scope="module")
def learned():
    """The page of a run of the shipped moons network with every display option on."""
    state = FlowState(
        dataset="moons",
        field="pretrained",
        steps=8,
        particles=300,
        overlay="difference",
        contours=True,
        shade=True,
    )
    state.recompute()
    assert "difference" in state.arrows and state.result.log_density is not None
    return state


def read(path):
    return (read_mp4 if path.suffix == ".mp4" else read_gif)(path)[1]


def exported(state, fmt, tmp_path, name, **options) -> np.ndarray:
    """Frame ``FRAME`` of ``state``'s run exported as ``fmt`` with these display options."""
    settings = ExportSettings(size=SIZE, trail=0, **options)
    out = export(state.result, fmt, tmp_path / f"{name}.{fmt}", settings, arrows=state.arrows)
    return read(out)[FRAME].astype(int)


def to_view(points, extent):
    """Data coordinates (..., 2) → (rows, cols) in a view of SIZE px, projected here."""
    x0, x1, y0, y1 = extent
    col = np.floor((points[..., 0] - x0) / (x1 - x0) * SIZE).astype(int)
    row = np.floor((y1 - points[..., 1]) / (y1 - y0) * SIZE).astype(int)
    return row, col


def near(starts, ends, extent, radius) -> np.ndarray:
    """(SIZE, SIZE) mask of the pixels within ``radius`` px of the segments starts → ends."""
    u = np.linspace(0, 1, 200)[:, None, None]
    row, col = to_view(starts[None] + (ends - starts)[None] * u, extent)
    inside = (row >= 0) & (row < SIZE) & (col >= 0) & (col < SIZE)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[row[inside], col[inside]] = True
    grown = mask.copy()
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            grown |= np.roll(np.roll(mask, dr, 0), dc, 1)
    return grown


def contour_mask(result, radius=3) -> np.ndarray:
    lines = pack_contours(result)
    pieces = [
        np.stack([x, y], 1) for x, y in zip(lines["xs"][FRAME], lines["ys"][FRAME], strict=True)
    ]
    starts = np.concatenate([p[:-1] for p in pieces])
    ends = np.concatenate([p[1:] for p in pieces])
    return near(starts, ends, result.extent, radius)


def arrow_mask(state, kind, radius=8) -> np.ndarray:
    """Pixels within ``radius`` of the arrows' shafts: the heads (size 8 at 400 px: wings 4
    across and 8 back) and the outline's width (3 px) reach up to ~7."""
    packed = pack_arrows(state.arrows, state.result.extent, 17, kinds=(kind,))
    tails = np.stack([packed["x"][0], packed["y"][0]], 1)
    disp = packed[kind][0].reshape(-1, 2, len(tails))[FRAME].T
    return near(tails, tails + disp, state.result.extent, radius)


def changed(a, b, threshold=90) -> np.ndarray:
    return np.abs(a - b).sum(-1) > threshold


# Share of the changed pixels that may lie away from what was drawn: H.264 spreads a change
# a little (ringing, and the bits it moves between blocks); the GIF's palettes hardly.
STRAY = {"mp4": 0.08, "gif": 0.03}


def unchanged(a, b) -> bool:
    """Whether a view is the same in both pictures, H.264's noise aside."""
    return changed(a, b).mean() < 0.002


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_contour_lines_of_the_exact_density_are_drawn_on_the_density_view(learned, fmt, tmp_path):
    plain = exported(learned, fmt, tmp_path, "plain")
    lines = exported(learned, fmt, tmp_path, "lines", contours=True)
    diff = changed(lines[:SIZE, SIZE:], plain[:SIZE, SIZE:])
    mask = contour_mask(learned.result)
    assert diff.sum() > 300, "no contour lines drawn"
    assert (diff & ~mask).sum() < STRAY[fmt] * diff.sum(), "changes away from the lines"
    assert (diff & contour_mask(learned.result, 0)).sum() > 0.3 * contour_mask(
        learned.result, 0
    ).sum(), "most of the lines are missing"
    assert unchanged(lines[:SIZE, :SIZE], plain[:SIZE, :SIZE])


@pytest.mark.parametrize("kind", OVERLAY_KINDS)
@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_the_arrows_of_every_overlay_the_page_offers_are_drawn(learned, kind, fmt, tmp_path):
    plain = exported(learned, fmt, tmp_path, "plain")
    arrows = exported(learned, fmt, tmp_path, kind, overlay=kind)
    mask = arrow_mask(learned, kind)
    # on both views, as the page
    for view, threshold in ((np.s_[:SIZE, :SIZE], 90), (np.s_[:SIZE, SIZE:], 40)):
        diff = changed(arrows[view], plain[view], threshold)
        assert diff.sum() > 200, f"no {kind} arrows drawn"
        assert (diff & ~mask).sum() < STRAY[fmt] * diff.sum(), "changes away from the arrows"


def shade_fraction(picture, result) -> float:
    """Fraction of particles whose centre pixel has the heatmap's colour of the density each
    carries (Inferno, scaled to the frame's peak of the density shown), as the page colours."""
    row, col = to_view(result.trajectories[FRAME], result.extent)
    inside = (row >= 0) & (row < SIZE) & (col >= 0) & (col < SIZE)
    peak = result.density[FRAME].max()
    code = np.minimum(255, np.exp(result.log_density[FRAME].astype(float)) * 255 / peak)
    index = np.minimum(255, np.floor(code * 256 / 255)).astype(int)
    want = np.array([[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in Inferno256])[index]
    got = picture[row[inside], col[inside]]
    return float((np.linalg.norm(got - want[inside], axis=-1) < 60).mean())


@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_particles_are_coloured_by_their_carried_log_density(learned, fmt, tmp_path):
    plain = exported(learned, fmt, tmp_path, "plain")
    shaded = exported(learned, fmt, tmp_path, "shaded", shade=True)
    assert shade_fraction(shaded, learned.result) > 0.8
    assert shade_fraction(plain, learned.result) < 0.4  # the check can fail
    assert unchanged(shaded[:SIZE, SIZE:], plain[:SIZE, SIZE:])


@pytest.mark.parametrize("fmt", ["mp4", "gif", "html", "npz", "csv"])
def test_the_menu_exports_every_format_with_the_difference_overlay_on(learned, fmt):
    menu = ExportMenu(state=learned)
    menu.format.value, menu.size.value = fmt, 256
    menu._start()
    menu.thread.join(120)
    assert menu.message.object == "" and menu.download.visible, menu.message.object
    menu.cancel_and_clean()


def test_the_menu_hands_every_display_setting_to_the_export(learned):
    s = ExportMenu(state=learned).settings()
    assert (s.contours, s.overlay, s.shade) == (True, "difference", True)


def test_the_export_takes_every_overlay_the_page_offers():
    from app.export import OVERLAYS

    assert set(OVERLAYS) == set(FlowState.param.overlay.objects.values())


def test_the_caption_of_a_pde_heatmap_has_the_pages_readout():
    from app.export.caption import Caption
    from app.ui.frames import total_variation

    state = FlowState(dataset="moons", steps=6, particles=300, density_source="pde")
    state.recompute()
    result = state.result
    x0, x1, y0, y1 = result.extent
    cell = (x1 - x0) * (y1 - y0) / result.density[0].size
    tv = total_variation(result.density, result.pde_density, cell)
    line = Caption(result, SIZE, "pde").top_line(4, 0.5)
    assert f"TV(particles, PDE) {tv[4]:.3f}" in line
    assert f"mass in box {result.pde_mass[4]:.4f}" in line
    assert "TV" not in Caption(result, SIZE, "particles").top_line(4, 0.5)


def test_the_html_page_shows_the_shaded_particles(learned):
    from app.export.page import page_views

    # render.js paints the particles in the heatmap's colours while its settings say so and
    # the run carries the densities (tests/ui/test_pde_view.py checks the pixels)
    shaded = page_views(learned.result, ExportSettings(shade=True), learned.arrows)
    assert shaded.settings.data["shade"] == [True] and learned.result.log_density is not None
    assert page_views(learned.result, ExportSettings(), learned.arrows).settings.data["shade"] \
        == [False]  # fmt: skip


def test_the_arrows_are_drawn_in_the_pages_colours():
    """An outline pass in the page's dark colour, then a body pass in its light one."""
    from app.export.overlays import ARROW_PASSES
    from app.ui.view_figures import ARROW_BODY, ARROW_OUTLINE

    def hex_of(rgb) -> str:
        return "#" + "".join(f"{int(c):02x}" for c in rgb)

    assert [hex_of(rgb) for rgb, _, _ in ARROW_PASSES] == [ARROW_OUTLINE, ARROW_BODY]
    assert ARROW_PASSES[0][1] > ARROW_PASSES[1][1], "the outline is wider than the body"

"""Export in a real Chromium: the standalone page plays from disk with the network blocked, and
the app's Export menu hands over the run on screen as a file."""

from __future__ import annotations

import io
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.export import ExportSettings, export
from app.session.state import FlowState
from models.run.config import RunConfig
from models.run.simulate import simulate
from tests.test_export_files import read_gif
from tests.test_export_overlays import (
    FRAME,
    SIZE,
    STRAY,
    arrow_mask,
    changed,
    contour_mask,
    shade_fraction,
)
from tests.ui.conftest import BENIGN, SETTLED, changed_fraction


@pytest.fixture
def offline(page):
    """The page with every request but file:// aborted; collects errors and fetched URLs."""
    fetched, errors = [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        fetched.append(r.request.url)
        r.continue_() if r.request.url.startswith("file://") else r.abort()

    page.route("**/*", route)
    return page, fetched, errors


def screenshot(page) -> np.ndarray:
    png = page.screenshot(clip={"x": 0, "y": 0, "width": 700, "height": 340})
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def test_standalone_page_animates_from_disk_with_no_network(offline, tmp_path):
    page, fetched, errors = offline
    result = simulate(RunConfig(dataset="moons", steps=40, particles=500, resolution=48,
                                n_reference=200))  # fmt: skip
    out = export(result, "html", tmp_path / "run.html", ExportSettings(size=300, fps=20))
    page.goto(out.as_uri())
    page.wait_for_function("() => window.flowscope_frames > 5", timeout=30_000)  # playing
    page.get_by_role("button", name=re.compile("pause")).click()
    seek = ("(f) => { const s = Bokeh.documents[0].roots()[0].select_one({type: 'Slider'});"
            " s.value = f; }")  # fmt: skip
    pictures = []
    for frame in (2, 38):
        page.evaluate(seek, frame)
        page.wait_for_function(f"() => window.flowscope_frame === {frame}")
        page.wait_for_function(SETTLED, timeout=30_000)  # still, and painted
        pictures.append(screenshot(page))
    assert changed_fraction(*pictures) > 0.01, "frames 2 and 38 look the same"
    assert pictures[1].std() > 10
    # the density view too: the page makes the particles' density from their positions
    heat = "Bokeh.documents[0].get_model_by_name('heat').data.image[0]"
    assert page.evaluate(f"() => Math.max(...{heat})") == 255
    assert [u for u in fetched if not u.startswith("file://")] == []
    assert [e for e in errors if not any(b in e for b in BENIGN)] == []


def test_export_menu_downloads_the_run_on_screen(app, tmp_path):
    page = app()
    page.pause_at(0)
    p = page.page
    first = page.js("() => { const d = Bokeh.documents[0].get_model_by_name('particle_store')"
                    ".data; const n = d.n[0]; return [Array.from(d.xy[0].slice(0, 2 * n)),"
                    " d.scale[0], n]; }")  # fmt: skip
    downloads = {}
    for fmt in ("npz", "gif"):
        p.locator("select:has(option[value='gif'])").select_option(fmt)
        if fmt == "gif":
            p.locator("select:has(option[value='256 px'])").select_option("256 px")
        p.get_by_role("button", name="Export", exact=True).click()
        button = p.get_by_role("button", name=re.compile(rf"Download .*\.{fmt}"))
        button.wait_for(timeout=60_000)
        with p.expect_download(timeout=30_000) as info:
            button.click()
        downloads[fmt] = tmp_path / info.value.suggested_filename
        info.value.save_as(downloads[fmt])
    codes, scale, n = first
    xy0 = np.asarray(codes, float).reshape(2, n).T * scale  # frame 0 as the page has it
    with np.load(downloads["npz"], allow_pickle=False) as data:
        assert data["trajectories"].shape == (101, 2000, 2)
        np.testing.assert_allclose(data["trajectories"][0], xy0, atol=scale)
    image = Image.open(downloads["gif"])
    assert image.n_frames == 101 and image.size[0] == 2 * 256
    assert page.errors == []


def export_from_page(p, fmt: str, size: str, path):
    """Export the run on screen as ``fmt`` at ``size`` with the page's menu, download it to
    ``path``, and return the path."""
    p.locator("select:has(option[value='gif'])").select_option(fmt)
    p.locator("select:has(option[value='256 px'])").select_option(size)
    p.get_by_role("button", name="Export", exact=True).click()
    button = p.get_by_role("button", name=re.compile(rf"Download .*\.{fmt}"))
    button.wait_for(timeout=60_000)
    with p.expect_download(timeout=30_000) as info:
        button.click()
    info.value.save_as(path)
    return path


def kept_exports(name: str, since: float) -> list:
    """The server's copies of an export named ``name`` made since ``since`` (the server runs
    in this process)."""
    files = Path(tempfile.gettempdir()).glob(f"flowscope-export-*/{name}")
    return [f for f in files if f.stat().st_mtime >= since]


def page_run(page, **settings):
    """The run on screen, computed again here (the same settings give the same run), checked
    against the page's own first frame."""
    state = FlowState(**settings)
    state.recompute()
    codes, scale, n = page.js(
        "() => { const d = Bokeh.documents[0].get_model_by_name('particle_store').data;"
        " const n = d.n[0]; return [Array.from(d.xy[0].slice(0, 2 * n)), d.scale[0], n]; }"
    )
    xy0 = np.asarray(codes, float).reshape(2, n).T * scale
    np.testing.assert_allclose(state.result.trajectories[0], xy0, atol=scale)
    return state


def test_export_with_the_learned_minus_exact_overlay_draws_its_arrows(app, tmp_path):
    query = "?dataset=moons&field=pretrained&overlay=difference&steps=20&particles=500&trail=0"
    page = app(query)
    page.pause_at(0)
    p = page.page
    name, started = "flowscope-fm-moons-reverse.gif", time.time()
    with_arrows = read_gif(export_from_page(p, "gif", "400 px", tmp_path / "arrows.gif"))[1]
    assert p.get_by_text("Export failed").count() == 0
    # downloaded: the server keeps no copy, and says so
    p.get_by_text("the server keeps no copy").wait_for(timeout=10_000)
    assert kept_exports(name, started) == []
    p.get_by_label("Overlay").select_option("none")
    plain = read_gif(export_from_page(p, "gif", "400 px", tmp_path / "plain.gif"))[1]
    state = page_run(page, dataset="moons", field="pretrained", overlay="difference", steps=20,
                     particles=500)  # fmt: skip
    diff = changed(with_arrows[FRAME].astype(int)[:SIZE, :SIZE],
                   plain[FRAME].astype(int)[:SIZE, :SIZE])  # fmt: skip
    assert diff.sum() > 200, "no arrows drawn"
    assert (diff & ~arrow_mask(state, "difference")).sum() < STRAY["gif"] * diff.sum()
    assert page.errors == []


def test_export_draws_the_contours_arrows_and_shading_on_screen(app, tmp_path):
    settings = dict(dataset="moons", contours=True, shade=True, overlay="velocity", steps=20,
                    particles=500, trail=0)  # fmt: skip
    page = app("?" + "&".join(f"{k}={str(v).lower()}" for k, v in settings.items()))
    page.pause_at(0)
    shown = read_gif(export_from_page(page.page, "gif", "400 px", tmp_path / "shown.gif"))[1]
    state = page_run(page, **settings)
    plain = export(state.result, "gif", tmp_path / "plain.gif", ExportSettings(size=SIZE, trail=0))
    shown, plain = shown[FRAME].astype(int), read_gif(plain)[1][FRAME].astype(int)
    lines = changed(shown[:SIZE, SIZE:], plain[:SIZE, SIZE:])
    near = contour_mask(state.result) | arrow_mask(state, "velocity")
    assert lines.sum() > 300 and (lines & ~near).sum() < STRAY["gif"] * lines.sum()
    assert (lines & contour_mask(state.result, 0)).sum() > 200  # the contour lines, not only arrows
    assert shade_fraction(shown, state.result) > 0.8 > 0.4 > shade_fraction(plain, state.result)
    assert page.errors == []

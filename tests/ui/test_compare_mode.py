"""Compare mode in a real Chromium: switching it on and off, editing run B, a preset, frames
matched by t, the overlaid layout with the twins and the difference heatmap, export of a
comparison, and a link that restores one."""

from __future__ import annotations

import re

import numpy as np

DOC = "Bokeh.documents[0]"
DATA = f"(n, c) => Array.from({DOC}.get_model_by_name(n).data[c][0] ?? [])"


def column(page, name: str, col: str) -> list:
    """Row 0 of a one-row column of the source named ``name`` (the timeline, pair_rows)."""
    return page.js(f"([n, c]) => ({DATA})(n, c)", [name, col])


def frames(page, store: str = "grid_store") -> int:
    return len(page.model_data(store, "t"))


def wait_pair(page, a_frames: int, b_frames: int) -> None:
    """Until both runs of the pair are on the page, with their timeline, and the server idle."""
    page.page.wait_for_function(
        f"""([a, b]) => {{ const m = (n) => {DOC}.get_model_by_name(n);
          const tb = m('b_grid_store'), tl = m('timeline');
          return tb !== null && m('grid_store').data.t.length === a
            && tb.data.t.length === b && tl.data.a[0].length > 0
            && m('status').data.busy[0] === 0; }}""",
        arg=[a_frames, b_frames], timeout=60_000,
    )  # fmt: skip


# Whether the figure named n is on the page: its model has a view (models may outlive views)
ON_PAGE = f"""(n) => {{ const m = {DOC}.get_model_by_name(n);
  return m !== null && Bokeh.index.roots.some((r) => Boolean(r.owner.find_one(m))); }}"""


def laid_out(page, name: str) -> bool:
    """Whether the figure named ``name`` is on the page (has a view)."""
    return page.js(ON_PAGE, name)


def wait_laid_out(page, *names: str) -> None:
    """Until the figures named are on the page (a layout lands a moment after its models)."""
    page.page.wait_for_function(f"(names) => names.every({ON_PAGE})", arg=list(names),
                                timeout=30_000)  # fmt: skip


def wait_gone(page, *names: str) -> None:
    """Until none of the figures named is on the page."""
    page.page.wait_for_function(f"(names) => !names.some({ON_PAGE})", arg=list(names),
                                timeout=30_000)  # fmt: skip


def pause_step(page, step: int) -> None:
    """Pause the player at step ``step`` of the timeline, drawn."""
    page.player(direction=0)
    page.player(value=step)
    page.page.wait_for_function(f"() => {DOC}.get_model_by_name('timeline').data.at[0] === "
                                f"{step}")  # fmt: skip
    page.settled()


def label(page, name: str) -> str:
    return page.js(f"(n) => {DOC}.get_model_by_name(n).data.text[0]", name)


def coloured(pixels: np.ndarray) -> float:
    """Share of the pixels in the difference's colours (red or blue, not grey or white)."""
    r, b = pixels[..., 0], pixels[..., 2]
    return float((np.abs(r - b) > 60).mean())


def test_compare_mode_on_and_off(app):
    page = app("?particles=500")
    page.page.get_by_text("compare two runs (A and B)").click()
    wait_pair(page, 101, 101)
    wait_laid_out(page, "b_particle_fig", "b_density_fig")
    # B = A: no twin apart
    page.page.wait_for_function(f"() => {DOC}.get_model_by_name('pair_rows').data.t.length")
    assert set(column(page, "pair_rows", "twin")) == {0}
    # side by side shows no difference: none is made or sent (overlaid: see below)
    assert column(page, "difference_store", "diff") == []
    page.page.screenshot(path="/tmp/compare_on.png")
    page.page.get_by_text("compare two runs (A and B)").click()
    page.page.wait_for_function(f"() => {DOC}.get_model_by_name('timeline').data.a[0].length "
                                "=== 0")  # fmt: skip
    # B's views go when the page has rebuilt the layout's children, which Bokeh does
    # asynchronously, after the timeline's change may already have landed
    wait_gone(page, "b_particle_fig", "b_density_fig")
    assert page.player_props("end") == [100]
    assert page.errors == []


def test_editing_run_b(app):
    page = app("?particles=500&compare=true")
    wait_pair(page, 101, 101)
    a_steps = page.page.locator(".noUi-handle >> visible=true").nth(1).element_handle()
    page.page.get_by_role("button", name="run B", exact=True).click()
    a_steps.wait_for_element_state("hidden", timeout=30_000)  # B's controls in A's place
    # the visible sliders are B's now: η, then steps T
    handle = page.page.locator(".noUi-handle >> visible=true").nth(1)
    handle.focus()
    for _ in range(3):
        page.page.keyboard.press("PageDown")
    page.page.get_by_text("B: steps").wait_for(timeout=30_000)
    page.page.wait_for_function(f"() => {DOC}.get_model_by_name('b_grid_store').data.t.length "
                                "< 101", timeout=60_000)  # fmt: skip
    assert frames(page) == 101  # A keeps its own
    assert "b_steps=" in page.wait_url("compare=true", "b_steps=")
    # A's controls are back with "run A", and move A alone
    page.page.get_by_role("button", name="run A", exact=True).click()
    assert page.page.locator(".noUi-handle >> visible=true").count() >= 2
    assert page.errors == []


def test_a_preset_and_frames_matched_by_t(app):
    page = app("?particles=500")
    page.page.get_by_role("button", name="presets ▾").click()
    page.page.get_by_text("Euler, 100 vs 10 steps").click()
    wait_pair(page, 101, 11)
    assert column(page, "timeline", "a") == list(range(101))
    b = column(page, "timeline", "b")
    assert [b[10 * k] for k in range(11)] == list(range(11)) and b[35] == 3
    pause_step(page, 30)
    a_text, b_text = label(page, "time_label"), label(page, "b_time_label")
    assert a_text.startswith("t = 0.700") and "frame 30/100" in a_text, a_text
    assert b_text.startswith("t = 0.700") and "frame 3/10" in b_text, b_text
    pause_step(page, 35)  # B holds its frame until A reaches its next time
    assert "frame 3/10" in label(page, "b_time_label")
    assert page.errors == []


def test_overlaid_twins_and_the_difference(app):
    page = app("?particles=500&compare=true&b_kind=sde&layout=overlay")
    wait_pair(page, 101, 101)
    wait_laid_out(page, "difference_fig")
    assert not laid_out(page, "b_particle_fig")
    pause_step(page, 60)
    b, links = page.js(f"() => {{ const t = window.flowscope_twins.get("
                       f"{DOC}.get_model_by_name('particle_fig').id);"
                       " return [t.bx.length, t.links]; }")  # fmt: skip
    assert (b, links) == (500, 500)  # B's particles, a segment each, painted on A's view
    differs = coloured(page.pixels("difference_fig"))
    assert differs > 0.01, differs
    page.page.screenshot(path="/tmp/compare_overlay.png")
    page.page.get_by_role("button", name="B = A", exact=True).click()
    page.page.wait_for_function(
        f"() => {{ const r = {DOC}.get_model_by_name('pair_rows').data.twin;"
        " return r.length && Array.from(r[0]).every((v) => v === 0); }",
        timeout=60_000,
    )
    pause_step(page, 61)
    blank = coloured(page.pixels("difference_fig"))
    assert blank < 0.003, blank  # the toolbar's logo: the picture itself is white
    assert page.errors == []


def export_data(p, fmt: str, path):
    """Export the pair on screen as ``fmt`` (npz, csv) with the page's menu, to ``path``."""
    p.locator("select:has(option[value='gif'])").select_option(fmt)
    p.get_by_role("button", name="Export", exact=True).click()
    button = p.get_by_role("button", name=re.compile(rf"Download flowscope-compare-.*\.{fmt}"))
    button.wait_for(timeout=60_000)
    with p.expect_download(timeout=30_000) as info:
        button.click()
    info.value.save_as(path)
    return path


def test_export_of_a_comparison(app, tmp_path):
    page = app("?particles=300&steps=20&compare=true&b_steps=10")
    wait_pair(page, 21, 11)
    path = export_data(page.page, "npz", tmp_path / "pair.npz")
    with np.load(path, allow_pickle=False) as data:
        assert data["a_trajectories"].shape == (21, 300, 2)
        assert data["b_trajectories"].shape == (11, 300, 2)
        assert list(data["frames_b"][::2]) == list(range(11))
    path = export_data(page.page, "csv", tmp_path / "pair.csv")
    runs = [line.split(",")[0] for line in path.read_text().splitlines()[1:]]
    assert runs.count("a") == 21 * 300 and runs.count("b") == 11 * 300
    assert page.errors == []


def test_a_link_restores_a_comparison(app):
    page = app("?particles=500&compare=true&b_steps=10&b_solver=heun&layout=overlay")
    wait_pair(page, 101, 11)
    assert page.page.locator("input[type=checkbox]").first.is_checked()  # compare two runs
    page.page.get_by_text("B: solver Heun (2nd order), steps 10").wait_for()
    wait_laid_out(page, "difference_fig")
    page = app("?particles=500&compare=true&b_steps=abc")
    wait_pair(page, 101, 101)
    page.page.get_by_text("b_steps='abc'").wait_for()
    page.page.get_by_text("B = A (change a setting of B to compare)").wait_for()
    assert page.errors == []

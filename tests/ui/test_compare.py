"""Compare mode in a real Chromium, as a person uses it: the switch, run B's own controls, a
preset whose runs differ in their frames, the export of a pair read back, and links that
restore a comparison or refuse a bad value of B (its views and look: test_compare_views.py)."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from tests.ui.compare_page import (
    CHECKBOX,
    DOC,
    PRES,
    RADIO,
    SWITCH,
    TITLES,
    changes_line,
    choose_preset,
    figures,
    frame_of,
    inner_pixels,
    label,
    pause_step,
    query,
    row,
    switch,
    visible_handle,
    wait_figures,
    wait_pair,
    wait_text,
    wait_url_lacks,
)
from tests.ui.conftest import changed_fraction
from tests.ui.test_links import wait_notice


# --- 1. on and off ------------------------------------------------------------------------
def test_switching_compare_mode_on_and_off(app):
    page = app("?particles=500")
    shown = figures(page)
    assert {n: f["title"] for n, f in shown.items()} == TITLES
    assert changes_line(page) == ""  # the compare section's details show with compare mode
    switch(page)
    wait_pair(page, 101, 101)
    shown = wait_figures(page, "b_particle_fig", "b_density_fig", absent=("difference_fig",))
    assert {n: f["title"] for n, f in shown.items()} == {
        "particle_fig": "A: " + TITLES["particle_fig"],
        "density_fig": "A: " + TITLES["density_fig"],
        "b_particle_fig": "B: " + TITLES["particle_fig"],
        "b_density_fig": "B: " + TITLES["density_fig"],
    }
    # B's row under A's, each view under its own kind
    for name in TITLES:
        a, b = shown[name], shown["b_" + name]
        assert b["y"] >= a["y"] + a["height"] - 1 and abs(b["x"] - a["x"]) <= 1, (name, a, b)
    assert row(page, "timeline", "a") == list(range(101))
    assert row(page, "timeline", "b") == list(range(101))
    # B = A: twins 0 apart
    assert set(row(page, "pair_rows", "twin")) == {0}
    assert changes_line(page).startswith("B = A")
    text = wait_text(page, "A: ", "twins 0 apart at the end")
    lines = text.splitlines()
    assert len(lines) == 3 and lines[1].startswith("B (nothing: B = A): "), text
    assert "twins 0.00 apart" in label(page, "pair_readout")
    assert query(page, "compare=true")["layout"] == "side"
    # one player drives both: playing draws steps of the comparison
    steps = page.js("() => window.flowscope_compare_steps || 0")
    page.page.wait_for_function(f"() => window.flowscope_compare_steps > {steps + 10}")
    # side by side, no difference is made (the overlaid layout shows it): overlaid, it is
    # blank for B = A, code 128 at every pixel of every step
    assert page.js(f"() => {DOC}.get_model_by_name('difference_store').data.diff[0].length") == 0
    page.page.get_by_role("button", name="overlaid", exact=True).click()
    page.page.wait_for_function(
        f"() => {DOC}.get_model_by_name('difference_store').data.diff[0].length > 0",
        timeout=30_000,
    )
    assert page.js(
        f"() => {{ const s = {DOC}.get_model_by_name('difference_store').data.diff[0];"
        " return [s.shape[0], s.every((c) => c === 128)]; }"
    ) == [101, True]
    wait_figures(page, "particle_fig", "difference_fig", absent=("density_fig", "b_particle_fig"))

    switch(page)
    page.page.wait_for_function(
        f"() => {DOC}.get_model_by_name('timeline').data.a[0].length === 0", timeout=30_000
    )
    shown = wait_figures(page, "particle_fig", "density_fig",
                         absent=("b_particle_fig", "b_density_fig", "difference_fig"))  # fmt: skip
    assert {n: f["title"] for n, f in shown.items()} == TITLES
    assert row(page, "timeline", "b") == []
    assert page.player_props("end") == [100]
    assert changes_line(page) == ""
    page.page.wait_for_function(f"() => !({PRES})().some((t) => t.includes('twins'))")
    wait_url_lacks(page, "compare=")
    # playing on draws run A alone: no step of a comparison
    steps, frames = page.js("() => [window.flowscope_compare_steps, window.flowscope_frames]")
    page.page.wait_for_function(f"() => window.flowscope_frames > {frames + 20}", timeout=20_000)
    assert page.js("() => window.flowscope_compare_steps") == steps
    assert page.errors == []


def test_compare_mode_turned_on_while_paused_keeps_the_players_step(app):
    """The step lives in the page; the comparison's new timeline from the server must not
    move both runs back to step 0 under a player that still stands at 60."""
    page = app("?particles=500&steps=60")
    page.pause_at(60)
    switch(page)
    wait_pair(page, 61, 61)
    page.settled()
    assert page.player_props("value", "direction") == [60, 0]
    assert page.js(f"""() => {{ const m = (n) => {DOC}.get_model_by_name(n);
      return [m('timeline').data.at[0], m('cursor').data.frame[0],
              m('b_cursor').data.frame[0]]; }}""") == [60, 60, 60]  # fmt: skip
    assert page.errors == []


# --- 2. editing run B ---------------------------------------------------------------------
def test_run_b_has_its_own_controls_and_steps(app):
    page = app("?particles=500&compare=true")
    wait_pair(page, 101, 101)
    a_steps = visible_handle(page, 1)
    assert a_steps.get_attribute("aria-valuenow") == "100.0"
    page.page.get_by_role("button", name="run B", exact=True).click()
    a_steps.wait_for_element_state("hidden", timeout=30_000)  # B's controls in A's place
    b_steps = visible_handle(page, 1)
    assert b_steps.get_attribute("aria-valuenow") == "100.0"  # B = A so far
    b_steps.focus()
    for _ in range(2):
        page.page.keyboard.press("PageDown")
    n = round(float(b_steps.get_attribute("aria-valuenow")))
    assert n < 100
    wait_pair(page, 101, n + 1)
    assert changes_line(page) == f"B: steps {n}"
    # A keeps its frames; the timeline reaches both runs' ends, in order
    assert len(page.times()) == 101
    ta, tb = row(page, "timeline", "a"), row(page, "timeline", "b")
    assert sorted(set(ta)) == list(range(101)) and sorted(set(tb)) == list(range(n + 1))
    assert ta == sorted(ta) and tb == sorted(tb)
    values = query(page, f"b_steps={n}")
    assert values["steps"] == "100" and values["compare"] == "true"
    wait_text(page, "A: ", f"B (steps {n}): ")

    # run A's controls again, showing A's own steps; moving them leaves B's change alone
    page.page.get_by_role("button", name="run A", exact=True).click()
    a_steps.wait_for_element_state("visible", timeout=30_000)
    b_steps.wait_for_element_state("hidden", timeout=30_000)
    a_steps.focus()
    page.page.keyboard.press("PageUp")
    m = round(float(a_steps.get_attribute("aria-valuenow")))
    assert m > 100
    wait_pair(page, m + 1, n + 1)
    assert changes_line(page) == f"B: steps {n}"
    assert query(page, f"steps={m}", f"b_steps={n}")
    assert page.errors == []


# --- 3. a preset, frames matched by t -----------------------------------------------------
def test_a_preset_matches_the_frames_of_its_runs_by_t(app):
    page = app("?particles=500")
    choose_preset(page, "Euler, 100 vs 10 steps")
    wait_pair(page, 101, 11)
    assert page.js(CHECKBOX.format(SWITCH) + ".active")  # a preset switches compare mode on
    assert changes_line(page) == "B: steps 10"
    ta, tb = page.times(), page.model_data("b_grid_store", "t")
    pause_step(page, 30)
    assert row(page, "timeline", "a")[30] == 30 and row(page, "timeline", "b")[30] == 3
    assert ta[30] == pytest.approx(tb[3])  # the same time, t = 0.7
    a_label, b_label = label(page, "time_label"), label(page, "b_time_label")
    assert a_label.startswith(f"t = {ta[30]:.3f}") and "frame 30/100" in a_label, a_label
    assert b_label.startswith(f"t = {tb[3]:.3f}") and "frame 3/10" in b_label, b_label
    assert label(page, "pair_readout").startswith(f"t = {ta[30]:.3f}")
    # and what is drawn: B's particles are its frame 3 (A's, its frame 30)
    drawn = page.js(
        f"() => ['particles', 'b_particles'].map((n) => {{ const d = {DOC}.get_model_by_name(n)"
        ".data; return [Array.from(d.x), Array.from(d.y)]; })"
    )  # fmt: skip
    for (x, y), store, frame in zip(drawn, ("particle_store", "b_particle_store"), (30, 3),
                                    strict=True):  # fmt: skip
        np.testing.assert_allclose(np.column_stack([x, y]), frame_of(page, store, frame),
                                   atol=1e-5)  # fmt: skip
    # B holds its frame until A reaches B's next time: B's picture stays (but for the pair's
    # readout at its foot), A's moves on
    before = {n: inner_pixels(page, n) for n in ("particle_fig", "b_particle_fig")}
    pause_step(page, 36)
    assert "frame 3/10" in label(page, "b_time_label")
    after = {n: inner_pixels(page, n) for n in ("particle_fig", "b_particle_fig")}
    top = int(0.8 * before["b_particle_fig"].shape[0])
    assert changed_fraction(before["b_particle_fig"][:top], after["b_particle_fig"][:top]) < 1e-3
    assert changed_fraction(before["particle_fig"], after["particle_fig"]) > 0.005
    pause_step(page, 40)
    assert "frame 4/10" in label(page, "b_time_label")
    assert page.errors == []


# --- 5. export ----------------------------------------------------------------------------
def export_pair(p, fmt: str, folder):
    """Export the pair on screen as ``fmt`` with the page's menu; the downloaded file."""
    p.locator("select:has(option[value='gif'])").select_option(fmt)
    p.get_by_role("button", name="Export", exact=True).click()
    button = p.get_by_role("button", name=re.compile(rf"Download .*\.{fmt}"))
    button.wait_for(timeout=90_000)
    with p.expect_download(timeout=30_000) as info:
        button.click()
    name = info.value.suggested_filename
    assert name.startswith("flowscope-compare-"), name
    info.value.save_as(folder / name)
    return folder / name


def test_export_writes_the_pair_on_screen(app, tmp_path):
    page = app("?particles=300&steps=20&compare=true&b_steps=10&b_solver=heun")
    wait_pair(page, 21, 11)
    timeline = [row(page, "timeline", c) for c in "ab"]
    npz = export_pair(page.page, "npz", tmp_path)
    with np.load(npz, allow_pickle=False) as data:
        a, b = data["a_trajectories"], data["b_trajectories"]
        assert a.shape == (21, 300, 2) and b.shape == (11, 300, 2)
        assert [list(data["frames_a"]), list(data["frames_b"])] == timeline
        assert len(data["a_times"]) == 21 and len(data["b_times"]) == 11
        np.testing.assert_array_equal(a[0], b[0])  # the same noise at the start
        scale_a, scale_b = page.js("() => ['particle_store', 'b_particle_store'].map((n) =>"
                                   f" {DOC}.get_model_by_name(n).data.scale[0])")  # fmt: skip
        np.testing.assert_allclose(a[20], frame_of(page, "particle_store", 20), atol=scale_a)
        np.testing.assert_allclose(b[10], frame_of(page, "b_particle_store", 10), atol=scale_b)
        meta = json.loads(str(data["meta"]))
        changed = {name for name, _a, _b in meta["changes"]}
        assert {"steps", "solver"} <= changed, meta["changes"]
    table = export_pair(page.page, "csv", tmp_path)
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:2] == ["run", "frame"]
    runs = [r["run"] for r in rows]
    assert set(runs) == {"a", "b"} and runs.index("b") == 21 * 300  # A's rows, then B's
    assert runs.count("a") == 21 * 300 and runs.count("b") == 11 * 300
    last_b = [r for r in rows if r["run"] == "b" and r["frame"] == "10"]
    xy = np.asarray([[float(r["x"]), float(r["y"])] for r in last_b])
    np.testing.assert_allclose(xy, b[10], rtol=1e-6, atol=1e-6)
    assert page.errors == []


# --- 6. links -------------------------------------------------------------------------------
def test_a_link_restores_a_comparison(app):
    page = app("?particles=500&compare=true&b_steps=10&b_solver=heun&layout=overlay")
    wait_pair(page, 101, 11)
    assert page.js(CHECKBOX.format(SWITCH) + ".active")
    assert page.js(RADIO.format("overlaid") + ".active") == 1  # side by side | overlaid
    assert changes_line(page) == "B: solver Heun (2nd order), steps 10"
    wait_figures(page, "particle_fig", "difference_fig", absent=("b_particle_fig",))
    assert page.model_data("b_grid_store", "t")[:2] == pytest.approx([1.0, 0.9])
    text = wait_text(page, "A: ", "Heun")
    assert "Heun" in text.splitlines()[1] and "Heun" not in text.splitlines()[0], text
    values = query(page, "compare=true", "b_steps=10")
    assert values["b_solver"] == "heun" and values["layout"] == "overlay"
    assert values["steps"] == "100" and values["solver"] == "euler"  # A's own
    assert page.errors == []


def test_a_link_with_a_bad_value_of_b_says_so_and_compares_b_equal_to_a(app):
    page = app("?particles=500&compare=true&b_steps=abc")
    text = wait_notice(page, "b_steps")
    assert "abc" in text, text
    wait_pair(page, 101, 101)
    assert page.js(CHECKBOX.format(SWITCH) + ".active")
    assert changes_line(page).startswith("B = A")
    values = query(page, "compare=true")
    assert "b_steps" not in values and values["steps"] == "100"
    assert page.errors == []

"""The density solved on the grid, as a density source in a real browser."""

from __future__ import annotations

import time

import numpy as np

from tests.ui.conftest import changed_fraction


def test_the_pde_density_source_paints_the_solved_density_with_its_readout(app):
    page = app()
    page.pause_at(60)
    before = page.pixels("density_fig")
    assert np.isnan(page.model_data("grid_store", "pde_tv")[60] or np.nan)  # not solved yet
    page.store_marker()
    page.page.get_by_role("button", name="PDE", exact=True).click()
    page.page.wait_for_function(
        "() => { const g = Bokeh.documents[0].get_model_by_name('grid_store').data;"
        " return g.pde_tv.length && Number.isFinite(g.pde_tv[60]); }", timeout=60_000)
    time.sleep(0.5)
    page.pause_at(60)
    tv = page.model_data("grid_store", "pde_tv")
    mass = page.model_data("grid_store", "pde_mass")
    assert all(0 <= v < 0.3 for v in tv), "particles and PDE agree up to sampling noise"
    assert all(0.99 < m <= 1.0 + 1e-9 for m in mass)
    text = page.js("() => Bokeh.documents[0].get_model_by_name('peak_label').data.text[0]")
    assert "TV(particles, PDE)" in text and "mass in box" in text
    after = page.pixels("density_fig")
    assert after.std() > 10 and changed_fraction(before, after) > 0.005
    assert page.errors == []

"""The density solved on the grid, as a density source in a real browser."""

from __future__ import annotations

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
        " return g.pde_tv.length && Number.isFinite(g.pde_tv[60]); }",
        timeout=60_000,
    )
    page.settled()
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


def test_particles_coloured_by_carried_density_match_the_heatmap_under_them(app):
    page = app("?dataset=moons&density_source=exact")
    page.pause_at(50)
    before = page.pixels("particle_fig")
    page.store_marker()
    page.js(
        "() => { const box = [...Bokeh.documents[0].all_models].find((m) => m.type ==="
        " 'Checkbox' && m.label === 'colour particles by carried log-density');"
        " box.active = true; }"
    )
    page.wait_store_changed()
    page.pause_at(50)
    data = page.js(
        "() => { const d = Bokeh.documents[0].get_model_by_name('particles').data;"
        " return [Array.from(d.x), Array.from(d.y), Array.from(d.shade)]; }"
    )
    x, y, shade = (np.asarray(v, float) for v in data)
    assert shade.std() > 20, "particles are shaded, not one colour"
    # the shade of a particle follows the exact density where it stands: the densest
    # particles (by shade) sit nearer the moons' centre line than the faintest
    dense, faint = shade > np.percentile(shade, 80), shade < np.percentile(shade, 20)
    spread = np.hypot(x, y)
    assert np.median(spread[dense]) < np.median(spread[faint])
    assert changed_fraction(before, page.pixels("particle_fig")) > 0.01
    assert page.errors == []

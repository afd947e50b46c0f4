"""The sampler's controls in a real Chromium: a solver or time grid switched repaints the views
with the new run and its readout; the SDE offers only the solvers with a stochastic form."""

from __future__ import annotations

from tests.ui.conftest import changed_fraction

SOLVER = "select:has(option:text('DPM-Solver++(2M)'))"
GRID = "select:has(option:text('uniform in log-SNR'))"


def readout(page) -> str:
    return page.page.locator("pre").filter(has_text="NFE").first.inner_text()


def test_switching_solver_and_grid_repaints_and_reads_out_the_model_calls(app):
    page = app("?steps=20&solver=euler&process=vp")
    assert "Euler on the uniform grid · NFE 20" in readout(page)
    page.pause_at(20)
    before = page.pixels("particle_fig")
    page.store_marker()
    page.page.locator(SOLVER).select_option(label="Runge–Kutta 4")
    page.wait_store_changed()
    page.pause_at(20)
    assert changed_fraction(before, page.pixels("particle_fig")) > 0.01, "views not repainted"
    page.page.locator("pre", has_text="NFE 80").wait_for()  # the readout of the new run
    assert "Runge–Kutta 4 on the uniform grid" in readout(page)
    times = page.times()
    page.page.locator(GRID).select_option(label="uniform in log-SNR")
    page.wait_for_new_run(times)
    assert page.times()[-1] == 0.001 and page.times()[0] == 1.0  # stops at t_min
    page.wait_url("time_grid=logsnr", "solver=rk4")
    assert page.errors == []


def test_the_sde_disables_the_solvers_without_a_stochastic_form(app):
    page = app("?kind=sde&eta=0.5&steps=20")
    disabled = page.page.locator(f"{SOLVER} option:disabled").all_inner_texts()
    assert set(disabled) == {"Heun (2nd order)", "midpoint (2nd order)", "Runge–Kutta 4",
                             "DPM-Solver++(2M)", "Dormand–Prince 5(4), adaptive"}  # fmt: skip
    enabled = page.page.locator(f"{SOLVER} option:not(:disabled)").all_inner_texts()
    assert set(enabled) == {"Euler", "DDIM"}
    page.store_marker()
    page.page.locator(SOLVER).select_option(label="DDIM")
    page.wait_store_changed()
    page.page.locator("pre", has_text="DDIM on the uniform grid").wait_for()
    assert page.errors == []

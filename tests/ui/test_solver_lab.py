"""The solver lab in a real Chromium: pressing the button measures a sweep off the session
thread, the progress bar finishes, and the log-log chart with each curve's slope and the table
of the NFE to reach 1e-2 appear.

The panel is served alone, on its own threaded Panel server (one page with only the lab): the
test does not depend on where the app's page places it, and the sweep's settings are set on
the server before the page loads, so no widget needs to be driven to make it small.
"""

from __future__ import annotations

import contextlib

import panel as pn
import pytest

from tests.ui.conftest import _free_port, wait_live

PROGRESS = ("[...Bokeh.documents[0].all_models].find((m) => m.css_classes && "
            "m.css_classes.includes('flowscope-sweep-progress'))")  # fmt: skip
LEGEND = ("() => [...Bokeh.documents[0].all_models].filter((m) => m.type === 'LegendItem')"
          ".map((m) => m.label.value)")  # fmt: skip
BUTTON = "Measure error vs model calls"


@pytest.fixture(scope="module")
def lab_server():
    """A threaded Panel server whose one page is a SolverLab on 8 gaussians, flow matching,
    with a small sweep (every solver, 5 NFEs up to 64, 100 particles: about a second)."""
    import torch

    from app.server import default_threads
    from app.session.state import FlowState
    from app.ui.solver_lab import SolverLab
    from models.solvers import GRIDS

    torch.set_num_threads(default_threads())  # as app/server.py serves (see default_threads)

    def page(**settings):
        lab = SolverLab(FlowState(dataset="8gaussians", process=settings.pop("process")))
        lab.job.param.update(**settings)
        pn.state.on_session_destroyed(lambda _ctx: lab.stop())
        return lab

    small = dict(process="fm", particles=100, max_nfe=64, nfe_points=5)
    # the largest sweep the panel allows (about 15 s here): only ever stopped
    large = dict(process="vp", particles=2000, max_nfe=400, grids=list(GRIDS))

    port = _free_port()
    routes = {"/lab": lambda: page(**small), "/large": lambda: page(**large)}
    server = pn.serve(routes, port=port, address="localhost", threaded=True,
                      show=False, liveness=True, verbose=False,
                      websocket_origin=[f"localhost:{port}"])  # fmt: skip
    url = f"http://localhost:{port}"
    wait_live(url)
    yield url
    with contextlib.suppress(RuntimeError):  # "already stopping": another test's teardown
        server.stop()  # stopped the Panel servers of this process before this module's


def test_measuring_draws_the_chart_with_slopes_and_the_table(page, lab_server, tmp_path):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{lab_server}/lab")
    button = page.get_by_role("button", name=BUTTON)
    button.wait_for(timeout=30_000)
    assert page.evaluate(LEGEND) == []  # no curve before the first sweep
    button.click()
    # the button comes back once the result is shown (the job delivers both together)
    page.wait_for_function(f"() => {PROGRESS}.value === 100 && [...Bokeh.documents[0]"
                           f".all_models].some((m) => m.label === {BUTTON!r} && !m.disabled)",
                           timeout=120_000)  # fmt: skip
    page.wait_for_function(f"() => ({LEGEND})().length > 0", timeout=30_000)
    labels = page.evaluate(LEGEND)
    assert any(label.startswith("heun · logsnr (slope ") for label in labels), labels
    assert any(label.startswith("dopri5 · adaptive (slope ") for label in labels), labels
    assert len(labels) == 6 * 2 + 1, labels  # six fixed-step solvers on two grids, dopri5
    status = page.locator("pre", has_text="Measured").inner_text()
    assert status.startswith("Measured 6"), status  # "Measured 6x runs in ... s."
    assert page.locator("table", has_text="rk4").count() == 1  # the NFE-to-reach table
    assert page.locator("canvas").count() > 0
    page.wait_for_timeout(300)  # the figure paints on the next animation frame
    page.screenshot(path=tmp_path / "solver_lab.png", full_page=True)  # to look at by hand
    assert errors == []


def test_stop_keeps_and_draws_the_runs_so_far(page, lab_server):
    page.goto(f"{lab_server}/large")
    page.get_by_role("button", name=BUTTON).click()
    page.wait_for_function(f"() => {PROGRESS}.value >= 5", timeout=60_000)  # some runs done
    page.get_by_role("button", name="■ stop measuring").click()
    page.locator("pre", has_text="Stopped after").wait_for(timeout=30_000)
    assert 5 <= page.evaluate(f"() => {PROGRESS}.value") < 100  # where it stopped
    page.wait_for_function(f"() => ({LEGEND})().some((label) => label.includes('(slope'))",
                           timeout=30_000)  # fmt: skip

"""The Export menu, driven without a browser: it exports the run on screen, cancels cleanly."""

import base64
import io

import numpy as np
from PIL import Image

from app.session.state import FlowState
from app.ui.export_menu import ExportMenu


def menu_with_run(**settings) -> ExportMenu:
    state = FlowState(steps=8, particles=200, dataset="moons", trail=3, **settings)
    state.recompute()
    return ExportMenu(state=state)


def downloaded(menu) -> io.BytesIO:
    """The file as the browser gets it: the click makes Panel read it into the widget."""
    menu.download._clicks += 1
    return io.BytesIO(base64.b64decode(menu.download.data.split(",", 1)[1]))


def test_export_offers_the_run_on_screen_for_download():
    menu = menu_with_run()
    menu.format.value, menu.size.value, menu.fps.value = "npz", 256, 10
    assert menu.size.disabled and menu.fps.disabled  # not used by data formats
    menu._start()
    menu.thread.join(60)
    assert menu.download.visible and not menu.message.visible and not menu.running
    with np.load(downloaded(menu)) as data:  # the same arrays, not a new sample
        np.testing.assert_array_equal(data["trajectories"], menu.state.result.trajectories)
    menu.format.value = "gif"
    menu._start()
    menu.thread.join(60)
    image = Image.open(downloaded(menu))
    assert image.n_frames == 9 and image.size[0] == 2 * 256 and image.info["duration"] == 100
    assert menu.download.filename.endswith(".gif")
    menu.cancel_and_clean()


def test_cancel_and_failure_give_one_line_and_no_download():
    menu = menu_with_run()
    menu.format.value = "gif"
    menu._cancel.set()  # as if Cancel was pressed before the first frame
    menu._cancel.is_set = lambda: True  # and stays pressed when the export clears it
    menu._start()
    menu.thread.join(60)
    assert not menu.download.visible and menu.message.object == "Export cancelled."
    assert list(menu._folder.iterdir()) == []
    menu = menu_with_run(density_source="exact")
    # a run without the density the page shows
    menu.state.result = menu.state.result.with_(exact_density=None)
    menu.format.value = "mp4"
    menu._start()
    menu.thread.join(60)
    assert not menu.download.visible and "\n" not in menu.message.object
    assert menu.message.object.startswith("Export failed: this run has no exact density")
    menu.cancel_and_clean()


def test_compare_mode_exports_the_pair_on_screen():
    """In compare mode the menu writes both runs: the arrays of the pair on screen (npz), and
    A, B and their difference side by side (gif), named as a comparison."""
    from app.session.compare import Comparison

    state = FlowState(steps=8, particles=200, dataset="moons", trail=3)
    comparison = Comparison(state)
    comparison.b.steps = 4
    comparison.on = True
    pair = comparison.compute()[0]
    comparison.pair = pair
    menu = ExportMenu(state=state, comparison=comparison)
    state.result = pair.a
    menu.format.value = "npz"
    menu._start()
    menu.thread.join(60)
    assert menu.download.filename.startswith("flowscope-compare-")
    with np.load(downloaded(menu)) as data:
        np.testing.assert_array_equal(data["a_trajectories"], pair.a.trajectories)
        np.testing.assert_array_equal(data["b_trajectories"], pair.b.trajectories)
        assert list(data["frames_b"][::2]) == [0, 1, 2, 3, 4]
    menu.format.value, menu.size.value = "gif", 128
    menu._start()
    menu.thread.join(60)
    image = Image.open(downloaded(menu))
    assert image.n_frames == 9 and image.size[0] > 4 * 128  # five views
    comparison.on = False  # back to one run: the menu exports A alone
    menu.format.value = "npz"
    menu._start()
    menu.thread.join(60)
    with np.load(downloaded(menu)) as data:
        assert "trajectories" in data and "a_trajectories" not in data
    menu.cancel_and_clean()

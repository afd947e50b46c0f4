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

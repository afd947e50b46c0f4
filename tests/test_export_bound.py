"""What the server keeps of an export: the file until it is downloaded or its session ends, and
never more than the bound of one export (a request past it is refused in one line)."""

import base64
import os

import numpy as np
import pytest

from app.export import ExportSettings, TooLarge, export
from app.session.state import FlowState
from app.ui.export_menu import ExportMenu


@pytest.fixture(scope="module")
def state():
    state = FlowState(steps=8, particles=200, dataset="moons", trail=3)
    state.recompute()
    return state


def exported(state, fmt="npz", **menu_options) -> ExportMenu:
    """A menu whose export of ``fmt`` has finished; its session-thread callbacks wait in
    ``menu.pending`` (as Bokeh's next tick would) until :func:`run_pending`."""
    pending = []
    menu = ExportMenu(state=state, schedule=pending.append, **menu_options)
    menu.pending = pending
    menu.format.value, menu.size.value = fmt, 256
    menu._start()
    menu.thread.join(60)
    run_pending(menu)
    return menu


def run_pending(menu) -> None:
    while menu.pending:
        menu.pending.pop(0)()


def files_of(menu) -> list:
    return sorted(menu._folder.iterdir()) if menu._folder.exists() else []


def test_the_download_hands_the_file_over_and_the_server_keeps_no_copy(state):
    menu = exported(state)
    assert menu.download.visible and len(files_of(menu)) == 1
    kept = files_of(menu)[0].read_bytes()
    menu.download._clicks += 1  # the browser's click: Panel reads the file for the transfer
    data = menu.download.data
    assert base64.b64decode(data.split(",", 1)[1]) == kept  # the whole file went out
    assert files_of(menu) == []  # and is gone from the server at once
    run_pending(menu)  # then the page forgets the copy it sent, and says so
    assert not menu.download.data and not menu.download.visible
    assert menu.message.visible and "export again" in menu.message.object
    menu.cancel_and_clean()


def test_session_end_deletes_the_export_not_yet_downloaded(state):
    menu = exported(state, "csv")
    folder = menu._folder
    assert len(files_of(menu)) == 1
    menu.cancel_and_clean()  # what app/ui/main.py calls when the session is destroyed
    assert not folder.exists()


def test_an_export_still_rendering_when_the_session_ends_leaves_no_file(state):
    menu = ExportMenu(state=state, schedule=lambda fn: fn())
    menu.format.value = "gif"
    started = []
    real = menu._show_progress

    def end_session_at_first_frame(percent):
        if not started:
            started.append(percent)
            menu.cancel_and_clean()
        real(percent)

    menu._show_progress = end_session_at_first_frame
    menu._start()
    menu.thread.join(60)
    assert started and not menu._folder.exists()


def test_a_csv_over_the_bound_is_refused_before_writing_in_one_line(state):
    menu = exported(state, "csv", max_bytes=50_000)
    message = menu.message.object
    assert not menu.download.visible and files_of(menu) == []
    assert "\n" not in message and "over the 0.05 MB" in message and "npz" in message


def test_the_estimate_of_a_csv_is_close_to_its_size(state, tmp_path):
    from app.export.bound import estimate

    out = export(state.result, "csv", tmp_path / "run.csv")
    assert estimate(state.result, "csv", ExportSettings()) == pytest.approx(
        out.stat().st_size, rel=0.02
    )


def test_a_long_large_gif_is_refused_before_drawing(state, tmp_path):
    def no_frames(*_args):
        raise AssertionError("drew frames before refusing")

    with pytest.raises(TooLarge, match=r"GIF.*MP4"):
        export(
            state.result,
            "gif",
            tmp_path / "run.gif",
            ExportSettings(size=1080),
            progress=no_frames,
            max_bytes=10_000_000,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["mp4", "npz", "html"])
def test_a_file_that_grows_past_the_bound_is_refused_and_removed(state, fmt, tmp_path):
    with pytest.raises(TooLarge, match=r"over the 0\.01 MB"):
        export(
            state.result, fmt, tmp_path / f"run.{fmt}", ExportSettings(size=256), max_bytes=10_000
        )
    assert list(tmp_path.iterdir()) == []


def test_within_the_bound_nothing_changes(state, tmp_path):
    out = export(state.result, "npz", tmp_path / "run.npz", max_bytes=10_000_000)
    with np.load(out) as data:
        np.testing.assert_array_equal(data["trajectories"], state.result.trajectories)


def test_a_server_that_stops_leaves_no_export_folder(state, tmp_path):
    import subprocess
    import sys

    code = (
        "from app.session.state import FlowState\n"
        "from app.ui.export_menu import ExportMenu\n"
        "s = FlowState(steps=4, particles=100); s.recompute()\n"
        "m = ExportMenu(state=s); m.format.value = 'npz'; m._start(); m.thread.join(60)\n"
        "print(m._folder)\n"
    )  # a session whose end never comes: the process exits first
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    folder = proc.stdout.strip().splitlines()[-1]
    assert folder.startswith("/") and not os.path.exists(folder)

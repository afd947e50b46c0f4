"""The app assembles outside a server too (as in a notebook), with the first run packed."""

from __future__ import annotations

import numpy as np

from app.ui.main import create_app


def test_the_app_builds_outside_a_server_with_its_first_run():
    root = create_app(steps=10, particles=200, dataset="moons").get_root()
    models = {m.name: m for m in root.references() if m.name}
    assert {"particle_fig", "density_fig", "grid_store", "status"} <= set(models)
    (xy,) = models["particle_store"].data["xy"]
    assert xy.dtype == np.int16 and xy.shape == (11 * 2 * 200,)
    assert len(models["grid_store"].data["t"]) == 11
    assert models["status"].data["busy"] == [0]

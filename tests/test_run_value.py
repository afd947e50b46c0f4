"""A run is one immutable value: what moved its particles travels with it, extras make new
values, and its settings become JSON only where a file is written."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from app.session.state import FlowState
from app.ui import client
from models.run.config import RunConfig
from models.run.result import FieldSource, Memorization, weights_digest
from models.run.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run():
    return simulate(RunConfig(steps=6, particles=50, resolution=16, exact_density=False))


def test_a_run_cannot_be_changed_in_place(run):
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.exact_density = np.zeros(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.warnings = ("x",)


def test_an_extra_makes_a_new_value_with_the_same_particles(run):
    density = run.density  # made on first use, and carried over (not recomputed)
    exact = np.ones((7, 16, 16), np.float32)
    more = run.with_(exact_density=exact)
    assert more is not run and run.exact_density is None and more.exact_density is exact
    assert more.same_particles(run) and run.same_particles(more)
    assert more.density is density and more.trajectories is run.trajectories
    other = simulate(dataclasses.replace(run.config, seed=1))
    assert not other.same_particles(run) and not run.same_particles(None)


def test_the_metadata_is_the_settings_the_source_and_the_readout(run):
    meta = json.loads(run.meta)
    assert meta["field"] == "exact" and meta["steps"] == 6 and meta["solver"] == "euler"
    assert "memorized" not in meta and "weights_hash" not in meta
    source = FieldSource("trained", weights_hash="ab12", trained_steps=300, train_size=64,
                         ot=True, make=lambda path, exact: exact)  # fmt: skip
    meta = json.loads(run.with_(source=source, memorization=Memorization(0.25, 0.01, 64)).meta)
    assert (meta["field"], meta["weights_hash"], meta["trained_steps"]) == ("trained", "ab12", 300)
    assert (meta["train_size"], meta["ot"]) == (64, True)
    assert (meta["memorized"], meta["memorization_m"]) == (0.25, 64)


def test_the_weights_digest_tells_weights_apart():
    a = [torch.zeros(3, 2), torch.ones(2)]
    b = [torch.zeros(3, 2), torch.tensor([1.0, 1.0 + 2**-20])]  # one weight, one ulp-ish off
    assert weights_digest(a) == weights_digest([t.clone() for t in a])
    assert weights_digest(a) != weights_digest(b)
    assert re.fullmatch(r"[0-9a-f]{16}", weights_digest(a))


def test_the_app_run_carries_what_moved_its_particles():
    """A pretrained run names its weights and their digest; its overlay is its own field's,
    rebuilt from the run value alone (no side table in the state)."""
    state = FlowState(dataset="moons", field="pretrained", steps=10, particles=200)
    state.recompute()
    run = state.result
    assert run.source.kind == "pretrained" and run.source.learned
    assert run.source.weights == "moons-fm.safetensors" and len(run.source.weights_hash) == 16
    arrows = FlowState(overlay="velocity").field_arrows(run)  # another state: the run suffices
    exact = FlowState(overlay="velocity", dataset="moons", steps=10, particles=200)
    exact.recompute()
    difference = np.abs(arrows["velocity"] - exact.field_arrows(exact.result)["velocity"])
    assert difference.max() > 1e-3, "the learned field's arrows, not the exact field's"
    assert "difference" in arrows


def test_every_page_script_is_a_file_and_none_is_glued_in_python():
    """The client's code lives in app/ui/static/*.js, loaded by app/ui/client.py alone: no
    Python module hands Bokeh a literal script, and every script named exists."""
    literal = re.compile(r'(code|jscallback\(\w+)=\s*["\']')
    named = re.compile(r'(?:script|callback)\("(\w+)"|before=\("(\w+)"')
    names = set()
    for path in (ROOT / "app").rglob("*.py"):
        text = path.read_text()
        assert not literal.search(text), f"{path}: JavaScript belongs in app/ui/static"
        names |= {a or b for a, b in named.findall(text)}
    assert {"render", "commit_stroke", "play", "keep_frame_in_run"} <= names | {"render"}
    for name in names:
        assert client.script(name).strip(), name
    for path in (ROOT / "app/ui/static").glob("*.js"):  # and none lies unused
        assert path.stem in names | {"render"}, f"{path.name} is loaded by nothing"

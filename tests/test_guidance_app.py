"""Guidance in the session state, without a browser: what a run reads, the class list, the
learned fields it needs, the link, the maths panel and the hover's data (docs/MATH.md §12)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app.session.state import FlowState
from app.session.url import query_of, read_query, read_url_values
from app.ui.math_panel import equations
from app.ui.posterior_hover import mixture_data
from models.datasets import make_dataset
from models.guidance import posterior
from models.run.simulate import build


def test_a_class_guides_the_run_and_moving_unread_controls_changes_nothing():
    state = FlowState(dataset="moons")
    assert state.config().guidance_class is None
    state.guidance_class = 1
    state.guidance_weight = 2.5
    config = state.config()
    assert (config.guidance_class, config.guidance_kind, config.guidance) == (1, "cfg", 2.5)
    before = state.config()
    state.divergence_lambda, state.hutchinson = 0.1, True  # divergence's: not read by CFG
    assert state.config() == before
    state.direction = "forward"  # guidance steers generation only
    assert not state.guided and state.config().guidance_class is None


def test_divergence_guidance_applies_to_the_ode_only():
    state = FlowState(guidance_kind="divergence", divergence_lambda=0.05)
    assert state.config().guidance == 0.05
    state.kind = "sde"
    assert not state.guidance_applies and state.config().guidance_kind == "cfg"


def test_the_class_list_follows_the_data_set_and_a_missing_class_goes():
    state = FlowState(dataset="8gaussians", guidance_class=6)
    assert list(state.class_options())[:3] == ["none", "0: east", "1: north-east"]
    assert state.posterior  # choosing a class shows where points come from
    state.dataset = "moons"  # 2 classes: class 6 is gone
    assert state.guidance_class == -1
    assert list(state.class_options()) == ["none", "0: upper moon", "1: lower moon"]


def test_classifier_free_guidance_on_a_pretrained_field_takes_the_conditional_weights():
    state = FlowState(field="pretrained", dataset="moons", guidance_class=0, steps=20,
                      particles=300)  # fmt: skip
    state.recompute()
    assert state.result.source.weights == "moons-fm-cond.safetensors" and state.notice == ""
    state.guidance_kind = "classifier"  # the unconditional network, steered by the exact p(c|x)
    state.recompute()
    assert state.result.source.weights == "moons-fm.safetensors"
    state.guidance_kind, state.process = "cfg", "vp"
    state.recompute()
    assert state.result.source.kind == "exact" and "flow matching only" in state.notice


def test_a_guided_link_restores_every_guidance_setting():
    state = FlowState(dataset="moons", guidance_class=1, guidance_kind="classifier",
                      guidance_weight=4.0, posterior=True, density_source="posterior")  # fmt: skip
    query = query_of(state)
    good, bad = read_url_values(read_query(query))
    assert bad == {}
    restored = FlowState(**good)
    for name in ("guidance_class", "guidance_kind", "guidance_weight", "posterior",
                 "density_source"):  # fmt: skip
        assert getattr(restored, name) == getattr(state, name)


def test_the_maths_panel_writes_out_the_guided_drift():
    tex = " ".join(t for _, t in equations(FlowState(guidance_class=2, guidance_weight=3.0)))
    assert r"v_w = v(x,t) + 3\,\big(v(x,t\mid c) - v(x,t)\big)" in tex
    tex = " ".join(t for _, t in equations(FlowState(guidance_kind="divergence")))
    assert r"\nabla\big(\nabla\cdot v(x,t)\big)" in tex
    assert "guidance" not in " ".join(t for _, t in equations(FlowState())).lower()


@pytest.mark.parametrize("name", ["moons", "checkerboard"])
def test_the_hover_data_give_bayes_rule_as_the_page_computes_it(name):
    """posterior.js's formula on mixture_data's arrays equals models.guidance.posterior."""
    state = FlowState(dataset=name, steps=10, particles=100)
    state.recompute()
    mix, meta = mixture_data(state.result)
    assert meta["names"][0] == list(make_dataset(name).class_names)
    pts, labels = np.c_[mix["x"], mix["y"]], np.asarray(mix["label"])
    _, _, exact = build(state.result.config)
    x = np.array([[0.3, -0.7], [1.9, 0.2], [-3.0, 3.5]])
    for i in (0, 4, 10):
        a, c2 = meta["a"][0][i], meta["c2"][0][i]
        logits = -((x[:, None] - a * pts[None]) ** 2).sum(-1) / (2 * c2)
        w = np.exp(logits - logits.max(1, keepdims=True))
        page = np.stack([w[:, labels == k].sum(1) for k in range(len(meta["names"][0]))], 1)
        page /= page.sum(1, keepdims=True)
        t = float(state.result.times[i])
        expected = posterior(exact, torch.from_numpy(x), t, len(meta["names"][0])).numpy()
        assert np.allclose(page, expected, atol=1e-9)

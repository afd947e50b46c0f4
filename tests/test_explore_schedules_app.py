"""The app's side of the processes, schedules and sources (docs/MATH.md §2, §2.1, §5.1): the
sidebar shows what a process reads, the views hold VE's wide noise end, a drawn schedule
travels in the link and a bad one is refused with the old one kept."""

from __future__ import annotations

import math
from urllib.parse import parse_qs

import numpy as np
import panel as pn
import pytest

from app.export.caption import settings_text
from app.session.compare import Comparison
from app.session.path_settings import PROCESS_LABELS, SCHEDULE_LABELS
from app.session.state import FlowState
from app.session.url import query_of, read_query, read_url_values
from app.ui.controls import sidebar
from app.ui.math_panel import equations
from app.ui.schedule_editor import ScheduleEditor
from models.schedules import make_schedule, parse_points

SMALL = {"steps": 10, "particles": 200}


def widgets_of(column) -> dict:
    found = {}
    for group in column.select(pn.Param):
        found.update(group._widgets)
    return found


@pytest.mark.parametrize("process", PROCESS_LABELS.values())
def test_every_process_runs_from_the_app_with_its_equations(process):
    state = FlowState(process=process, **SMALL)
    state.config().validate()
    curves = state.schedule_curves()
    assert all(np.isfinite(v).all() for v in curves.values()), process
    tex = " ".join(text for kind, text in equations(state) if kind == "tex")
    assert "dx = f(t)" in tex  # the forward SDE, with the process's own f and g²
    state.recompute()
    result = state.result
    assert np.isfinite(result.trajectories).all()
    half = result.extent[1]
    inside = (np.abs(result.trajectories[0]) <= half).all(axis=1).mean()
    assert inside >= 0.98, f"{process}: the view lost the noise end ({inside:.3f} inside)"


@pytest.mark.parametrize("schedule", SCHEDULE_LABELS.values())
def test_every_schedule_runs_from_the_app(schedule):
    state = FlowState(process="vp", schedule=schedule, **SMALL)
    state.recompute()
    assert np.isfinite(state.result.trajectories).all()
    assert state.result.config.schedule == schedule
    tex = " ".join(text for kind, text in equations(state) if kind == "tex")
    assert r"\beta(t)" in tex


def test_ve_widens_the_box_to_its_noise_end_and_vp_keeps_the_default():
    assert FlowState(process="vp").config().extent == (-4.0, 4.0, -4.0, 4.0)
    state = FlowState(process="ve", sigma_max=6.0)
    half = math.ceil(4 + 3.5 * 6.0)
    assert state.config().extent == (-half, half, -half, half)


def test_the_sidebar_shows_what_the_process_reads():
    state = FlowState(process="fm")
    widgets = widgets_of(sidebar(state))
    assert widgets["source"].visible and not widgets["sigma_max"].visible
    state.process = "ve"
    assert widgets["sigma_max"].visible and not widgets["source"].visible
    assert not widgets["schedule"].visible
    state.process = "subvp"
    assert widgets["schedule"].visible and not widgets["shift"].visible
    state.schedule = "shifted-cosine"
    assert widgets["shift"].visible and widgets["beta_max"].disabled


def test_settings_a_process_does_not_read_change_no_run():
    base = FlowState(process="fm").config()
    assert FlowState(process="fm", sigma_max=20.0, shift=4.0).config() == base
    vp = FlowState(process="vp").config()
    assert FlowState(process="vp", source="moons").config() == vp


def test_a_drawn_schedule_travels_in_the_link():
    state = FlowState(process="vp", schedule="points")
    assert state.schedule_points, "a drawn schedule starts from the linear one's points"
    query = query_of(state)
    assert parse_qs(query[1:])["schedule_points"] == [state.schedule_points]
    good, bad = read_url_values(read_query(query))
    assert bad == {} and FlowState(**good).config() == state.config()


@pytest.mark.parametrize("raw", ["0:1,1:2", "0:1", "abc", "0:1,0.5:nan,1:-1", "2:1,3:0"])
def test_a_bad_drawing_in_a_link_is_refused_and_the_rest_kept(raw):
    good, bad = read_url_values({"schedule_points": raw, "steps": "20"})
    assert bad == {"schedule_points": raw} and good == {"steps": 20}


def test_the_editor_takes_a_good_drawing_and_refuses_a_bad_one():
    state = FlowState(process="vp", schedule="points")
    editor = ScheduleEditor(state=state)
    before = state.schedule_points
    t, lam = zip(*parse_points(before), strict=True)
    moved = {"t": list(t), "lam": [lam[0] + 1.0, *lam[1:]]}  # the first point a bit higher
    editor._edited("data", None, moved)
    assert state.schedule_points != before and not state.notice
    make_schedule("points", points=state.schedule_points)  # a schedule
    kept = state.schedule_points
    rising = {"t": list(t), "lam": sorted(lam)}  # λ must fall
    editor._edited("data", None, rising)
    assert state.schedule_points == kept, "a refused drawing must leave the schedule in use"
    assert state.notice.startswith("That drawing was not used") and "\n" not in state.notice
    assert list(editor.points.data["lam"]) == [v for _, v in parse_points(kept)]


def test_the_editor_adds_a_tapped_point_in_its_place_and_resets():
    state = FlowState(process="vp", schedule="points")
    editor = ScheduleEditor(state=state)
    points = parse_points(state.schedule_points)
    (t0, l0), (t1, l1) = points[2], points[3]
    tapped = {
        "t": [p[0] for p in points] + [(t0 + t1) / 2],
        "lam": [p[1] for p in points] + [(l0 + l1) / 2],
    }  # appended, as the tool does
    editor._edited("data", None, tapped)
    assert len(parse_points(state.schedule_points)) == len(points) + 1
    editor.reset_to.value = "cosine"
    editor._reset()
    assert parse_points(state.schedule_points) != points


def test_vp_against_ve_shares_one_box_in_compare_mode():
    state = FlowState(**SMALL)
    comparison = Comparison(state)
    comparison.on = True
    comparison.apply_preset("VP vs VE diffusion")
    pair, _, _ = comparison.compute()
    assert pair.a.extent == pair.b.extent and pair.b.extent[1] > 4
    assert pair.a.config.process == "vp" and pair.b.config.process == "ve"


def test_the_caption_names_the_path():
    state = FlowState(process="ve", **SMALL)
    state.recompute()
    assert "σ 0.01..10" in settings_text(state.result)
    state = FlowState(process="fm", source="8gaussians", dataset="moons", **SMALL)
    state.recompute()
    assert "from 8gaussians" in settings_text(state.result)


@pytest.mark.parametrize("process", ["subvp", "ve", "edm"])
def test_a_learned_field_asked_of_a_new_process_says_the_exact_one_is_shown(process):
    state = FlowState(process=process, field="pretrained", **SMALL)
    state.recompute()
    assert state.result.source.kind == "exact"
    assert "showing the exact field" in state.notice and "\n" not in state.notice


def test_beta_and_schedule_settings_change_no_run_of_a_process_that_ignores_them():
    base = FlowState(process="ve").config()
    assert FlowState(process="ve", beta_max=30.0, schedule="cosine").config() == base
    assert FlowState(process="vp", schedule="cosine", beta_max=30.0).config() == \
        FlowState(process="vp", schedule="cosine").config()  # fmt: skip


def test_edm_starts_at_its_own_sigma_min_and_a_users_sigma_min_carries_over():
    state = FlowState(process="edm")
    assert state.config().sigma_min == 0.002
    state.process = "ve"
    assert state.sigma_min == 0.01
    state.sigma_min = 0.05
    state.process = "edm"
    assert state.sigma_min == 0.05


def test_a_link_writes_a_drawing_in_one_spelling():
    good, bad = read_url_values({"schedule_points": "０:８,1.000:-8"})
    assert bad == {} and good["schedule_points"] == "0:8,1:-8"


def test_a_path_that_misses_its_noise_end_says_so():
    state = FlowState(process="vp", schedule="points", schedule_points="0:8,1:7.9", **SMALL)
    state.recompute()
    assert any("does not reach noise" in w for w in state.result.warnings)
    assert "does not reach noise" in state.notice

"""Shared links are untrusted input: every parameter, every malformed kind of value."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from app.session.state import FlowState
from app.session.url import URL_PARAMS, describe_refused, query_of, read_query, read_url_values
from app.ui.notice import MAX_CHARS, plain_html

LONG = "9" * 5000
MALFORMED = {"bool": "true", "float": "2.5", "empty": "", "long": LONG}


def _kind(name: str) -> str:
    return type(FlowState.param[name]).__name__


@pytest.mark.parametrize("name", URL_PARAMS)
@pytest.mark.parametrize("label", MALFORMED)
def test_every_parameter_refuses_every_malformed_kind_and_keeps_the_others(name, label):
    raw = MALFORMED[label]
    good, bad = read_url_values({name: raw, "dataset": "moons"} if name != "dataset" else
                                {name: raw, "steps": "50"})  # fmt: skip
    other = "dataset" if name != "dataset" else "steps"
    assert other in good, "a bad value must not sink a good one"
    kind = _kind(name)
    if label == "float" and kind == "Number" and FlowState.param[name].bounds[0] <= 2.5 <= \
            FlowState.param[name].bounds[1]:  # fmt: skip
        assert good[name] == 2.5  # a float is a fine value for a float parameter
    elif label == "bool" and kind == "Boolean":
        assert good[name] is True
    elif label == "empty" and kind == "String":  # no drawn schedule
        assert good[name] == ""
    else:
        assert bad == {name: raw} and name not in good
    for value in good.values():  # nothing of the wrong type gets through
        assert not (isinstance(value, bool) and kind in ("Integer", "Number"))


@pytest.mark.parametrize("raw, value", [("1e2", 100), ("20000.0", 20000), (" 50 ", 50)])
def test_whole_numbers_written_as_floats_are_accepted(raw, value):
    good, bad = read_url_values({"steps" if value < 1000 else "particles": raw})
    (got,) = good.values()
    assert got == value and type(got) is int and bad == {}  # the parsed value: an int


@pytest.mark.parametrize("name", ["eta", "steps", "seed", "beta_min", "trail", "fps"])
@pytest.mark.parametrize("raw", ["true", "false", "True", "nan", "inf", "-inf", "0x10"])
def test_yes_no_and_non_finite_values_are_never_numbers(name, raw):
    good, bad = read_url_values({name: raw})
    assert good == {} and bad == {name: raw}


def test_choices_must_be_one_of_the_values():
    good, bad = read_url_values({"process": "<script>alert(1)</script>", "kind": "SDE",
                                 "dataset": "moons", "contours": "TRUE"})  # fmt: skip
    assert good == {"dataset": "moons", "contours": True}
    assert set(bad) == {"process", "kind"}


def test_query_is_canonical_and_restores_the_state():
    state = FlowState(beta_max=18.500000000000004, contours=True, eta=0.35000000000000003)
    query = query_of(state)
    parsed = {k: v[0] for k, v in parse_qs(query[1:]).items()}
    assert parsed["beta_max"] == "18.5" and parsed["eta"] == "0.35"
    # the drawn schedule's points are written only where there is one
    assert parsed["contours"] == "true" and set(parsed) == set(URL_PARAMS) - {"schedule_points"}
    good, bad = read_url_values(read_query(query))
    assert bad == {}
    again = FlowState(**good)
    assert query_of(again) == query


def test_the_notice_quotes_a_long_value_briefly_and_as_plain_text():
    text = describe_refused({"dataset": "<img src=x onerror=alert(1)>", "steps": LONG})
    assert "5,000 characters" in text and LONG not in text
    shown = plain_html(text)
    assert "<img" not in shown and "&lt;img" in shown
    assert len(plain_html("x" * 10_000)) <= MAX_CHARS

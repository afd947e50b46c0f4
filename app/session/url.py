"""The state in the URL: strict parsing of a shared link, and a canonical query string.

A link is untrusted input (a teacher hands one to a whole class, anybody can edit it). Every
value is parsed on its own, by the type of its parameter, from the raw text of the query:
"true" is never a number, "1e2" is the integer 100, an unknown name for a choice is refused.
What is refused is reported (as plain text, see app/ui/notice.py) and dropped from the URL, and the
other values are kept. The query written back is made from the state alone, one canonical text
per value, so it never flips between spellings ("true"/"True") or shows float noise.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qsl, urlencode

import param

from app.session.path_settings import MAX_POINTS_TEXT, check_points
from app.session.state import COMPUTE_PARAMS, DISPLAY_PARAMS, FlowState
from models.schedules import format_points, parse_points

URL_PARAMS = COMPUTE_PARAMS + DISPLAY_PARAMS
SHOWN_CHARS = 40  # a refused value is quoted up to this many characters in the notice
TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _number(raw: str) -> float:
    text = raw.strip()
    if text.lower() in TRUE + FALSE and text not in ("0", "1"):
        raise ValueError("a yes/no value is not a number")
    value = float(text)  # ValueError for "", "abc"
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def parse_value(parameter: param.Parameter, raw: str):
    """The value of ``parameter`` written as ``raw`` in a URL; ValueError if it is not one.

    Bounds are not checked here (setting the value on a state does that).
    """
    if not isinstance(raw, str):
        raise ValueError("not text")
    if isinstance(parameter, param.Boolean):
        word = raw.strip().lower()
        if word in TRUE or word in FALSE:
            return word in TRUE
        raise ValueError("expected true or false")
    if isinstance(parameter, param.Integer):
        value = _number(raw)
        if value != int(value) or abs(value) > 2**53:
            raise ValueError("expected a whole number")
        return int(value)
    if isinstance(parameter, param.Number):
        return _number(raw)
    if isinstance(parameter, param.Selector):
        choices = list(parameter.objects.values()) if isinstance(parameter.objects, dict) \
            else list(parameter.objects)  # fmt: skip
        if raw in choices:
            return raw
        numbers = [c for c in choices if isinstance(c, float)]  # a choice of numbers (rtol)
        if numbers and _number(raw) in numbers:
            return _number(raw)
        raise ValueError("not one of the choices")
    if isinstance(parameter, param.String) and parameter.name == "schedule_points":
        if len(raw) > MAX_POINTS_TEXT:
            raise ValueError("too long")
        check_points(raw)  # a drawn schedule that is not one is refused with its reason
        return format_points(parse_points(raw)) if raw else raw  # one spelling per drawing
    raise ValueError(f"cannot read a {type(parameter).__name__} from a URL")


def read_query(search: str) -> dict[str, str]:
    """Raw text of each parameter in a query string ('?a=1&b=x'); the last one of a name wins."""
    return dict(parse_qsl(search.lstrip("?"), keep_blank_values=True))


def read_url_values(query: dict[str, str]) -> tuple[dict, dict]:
    """Split raw query values into those the state accepts and those it does not.

    Each value is parsed and set on its own (on a scratch state), so one malformed value cannot
    sink the others. Returns (good {param: value}, bad {param: raw}); unknown names are ignored.
    """
    scratch, good, bad = FlowState(), {}, {}
    for name in URL_PARAMS:
        if name not in query:
            continue
        raw = query[name]
        try:
            value = parse_value(scratch.param[name], raw)
            setattr(scratch, name, value)  # bounds
        except Exception:
            bad[name] = raw
            continue
        good[name] = getattr(scratch, name)
    return good, bad


def canonical(parameter: param.Parameter, value) -> str:
    """One text per value: 'true'/'false', integers plain, floats in at most 12 significant
    digits: without a slider's noise (18.500000000000004 → 18.5), and every number a person
    types comes back as typed (t_min 0.0123456789)."""
    if isinstance(parameter, param.Boolean):
        return "true" if value else "false"
    if isinstance(parameter, param.Integer):
        return str(int(value))
    if isinstance(parameter, param.Number):
        return format(float(value) + 0.0, ".12g")  # + 0.0: no "-0"
    return str(value)


def query_of(state: FlowState) -> str:
    """The query string ('?...') that restores ``state``'s settings."""
    values = {n: canonical(state.param[n], getattr(state, n)) for n in URL_PARAMS}
    # no drawn schedule: nothing to write (links stay as short as before drawing existed)
    return "?" + urlencode({n: v for n, v in values.items() if v or n != "schedule_points"})


def describe_refused(bad: dict) -> str:
    """One line naming the refused values, each quoted and cut to ``SHOWN_CHARS``."""

    def shown(raw) -> str:
        text = str(raw)
        if len(text) > SHOWN_CHARS:
            return repr(text[:SHOWN_CHARS]) + f"… ({len(text):,} characters)"
        return repr(text)

    names = ", ".join(f"{k}={shown(v)}" for k, v in bad.items())
    return (f"Ignored URL values that are out of range or malformed: {names}. "
            "Using the defaults for these.")  # fmt: skip


def guard_panel_query_parsing() -> None:
    """Make Panel's own query parsing survive any URL (a workaround, applied once).

    Panel parses the query of every request itself (``panel.util.parse_query``, called when
    the session's Location is made, before any app code runs) and calls ``int()`` on all-digit
    values: a value of more than 4,300 digits raises ValueError (Python's limit on int
    conversion) and the page answers 500. flowscope reads the raw query itself (``read_query``)
    and never uses Panel's parsed values, so on failure plain strings are returned instead.
    """
    import panel.io.location as location

    original = location.parse_query
    if getattr(original, "flowscope_guarded", False):
        return

    def parse_query(query: str) -> dict:
        try:
            return original(query)
        except Exception:
            return read_query(query)

    parse_query.flowscope_guarded = True
    location.parse_query = parse_query


# --- compare mode: B's changes travel as b_<setting> (app/session/compare.py) --------------
B_PREFIX = "b_"


def compare_query(comparison) -> dict[str, str]:
    """The query entries of compare mode: none while it is off; else compare, layout and B's
    changes, each written as A's setting of that name would be."""
    if not comparison.on:
        return {}
    b = comparison.b
    out = {"compare": "true", "layout": comparison.layout}
    for name in COMPUTE_PARAMS:
        if name in comparison.changes:
            out[B_PREFIX + name] = canonical(b.param[name], comparison.changes[name])
    return out


def read_compare_values(query: dict[str, str], comparison) -> tuple[dict, dict]:
    """Compare mode's values in a query: ({on, layout, changes}, bad {name: raw}), each value
    parsed and bounds-checked on its own like A's (``read_url_values``)."""
    good: dict = {"changes": {}}
    bad: dict = {}
    if "compare" in query:
        try:
            good["on"] = parse_value(comparison.param["on"], query["compare"])
        except ValueError:
            bad["compare"] = query["compare"]
    if "layout" in query:
        try:
            good["layout"] = parse_value(comparison.param["layout"], query["layout"])
        except ValueError:
            bad["layout"] = query["layout"]
    scratch = FlowState()
    for name in COMPUTE_PARAMS:
        key = B_PREFIX + name
        if key not in query:
            continue
        try:
            setattr(scratch, name, parse_value(scratch.param[name], query[key]))
        except Exception:
            bad[key] = query[key]
            continue
        good["changes"][name] = getattr(scratch, name)
    return good, bad

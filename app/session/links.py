"""A link's settings applied to a session: run A's, compare mode's with B's, and your points.

GUI-free: the page's URL (app/ui/main.py) and a lesson's scene (app/session/lessons.py) are both a
query string, read here in one way. Every value is parsed on its own (app/session/url.py); what
is refused, or cannot make a run together with the rest, is dropped and named in a notice.
"""

from __future__ import annotations

from app.session.compare import Comparison
from app.session.state import DATASET_LABELS, FlowState
from app.session.url import URL_PARAMS, describe_refused, read_compare_values, read_url_values
from app.session.userdata import LINK_MAX_POINTS, decode_labelled_points


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def apply_query(state: FlowState, comparison: Comparison, query: dict[str, str],
                reset: bool = False) -> str:  # fmt: skip
    """Set ``state`` and ``comparison`` from a query's raw values ({name: text}).

    With ``reset``, every setting the query does not name goes back to its default (a scene
    is the same picture whatever was shown before); else it keeps its value (a page's URL on
    a fresh session, where they are the defaults anyway). Returns the notice ("" if none).
    """
    good, bad = read_url_values(query)
    compare, bad_compare = read_compare_values(query, comparison)
    bad |= bad_compare
    notes = []
    if "pts" in query:
        try:
            good["points"], good["point_labels"] = decode_labelled_points(query["pts"])
        except ValueError as exc:
            notes.append(f"The points in this link could not be used ({one_line(exc)}).")
    if good.get("dataset") == "points" and "points" not in good:
        del good["dataset"]  # every other value of the link still holds
        if "pts" not in query:
            notes.append(f"This link names your own points but carries none (a link holds at "
                         f"most {LINK_MAX_POINTS:,}).")  # fmt: skip
        notes.append(f"Showing {DATASET_LABELS[state.dataset]} instead.")
    if reset:
        defaults = {n: state.param[n].default for n in URL_PARAMS if n != "device"}
        good = defaults | good
        compare.setdefault("on", False)
        compare.setdefault("layout", comparison.param["layout"].default)
    state.param.update(**good)
    notes.append(restore_comparison(comparison, compare))
    notes.insert(0, describe_refused(bad) if bad else "")
    conflict = drop_conflicting_values(state)
    notes.append(conflict)
    return " ".join(n for n in notes if n)


def restore_comparison(comparison: Comparison, values: dict) -> str:
    """Compare mode as a link gives it; B's changes dropped (with the notice returned) if
    together they make no run."""
    comparison.set_changes(values["changes"])
    if "layout" in values:
        comparison.layout = values["layout"]
    reason = valid(comparison.b) if values["changes"] else ""
    if reason:
        comparison.set_changes({})
    comparison.on = values.get("on", False)
    return f"Could not compute run B of this link ({reason}); B = A." if reason else ""


def valid(state: FlowState) -> str:
    """ "" if the state's settings make a run, else the one-line reason."""
    try:
        state.config().validate()
        state.user_dataset()
    except ValueError as exc:
        return one_line(exc)
    return ""


def drop_conflicting_values(state: FlowState) -> str:
    """Settings that pass one by one but not together (your points, with none given): reset the one
    value whose default makes them work, else all of them; returns the notice ("" if none)."""
    reason = valid(state)
    if not reason:
        return ""
    changed = [n for n in URL_PARAMS if getattr(state, n) != state.param[n].default]
    for name in reversed(changed):
        kept = getattr(state, name)
        setattr(state, name, state.param[name].default)
        if not valid(state):
            return (f"Could not compute the settings of this link ({reason}); "
                    f"{name}={kept!r} is not used.")  # fmt: skip
        setattr(state, name, kept)
    state.param.update(**{n: state.param[n].default for n in URL_PARAMS})
    return f"Could not compute the settings of this link ({reason}); showing the defaults."

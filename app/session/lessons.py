"""Lessons: scenes in order, each a link's settings and a caption, read from a TOML file.

The built-in lessons are ``assets/lessons.toml``; a teacher copies it, edits it and serves
theirs (``flowscope serve --lessons FILE``). The format is documented in docs/LESSONS.md. A file
is checked whole before it is used: a bad one is refused with a message that names the scene
and the field, and nothing of it is shown.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, published before it joined the standard library
    import tomli as tomllib

from app.session.compare import Comparison
from app.session.links import apply_query, one_line
from app.session.state import FlowState
from app.session.url import (
    B_PREFIX,
    URL_PARAMS,
    read_compare_values,
    read_query,
    read_url_values,
)

BUILT_IN = Path(__file__).resolve().parents[2] / "assets" / "lessons.toml"
ENV_VAR = "FLOWSCOPE_LESSONS"  # the served file (set by `flowscope serve --lessons`)
MAX_FILE_BYTES = 256 * 1024
MAX_SCENES = 60
MAX_TITLE = 80
MAX_CAPTION = 1200
FIELDS = ("title", "caption", "link")
# what a scene's link may name: the URL's settings, compare mode's with B's, your points
LINK_NAMES = (
    frozenset(URL_PARAMS) | {"compare", "layout", "pts"} | {B_PREFIX + n for n in URL_PARAMS}
)


class LessonError(ValueError):
    """A lessons file that cannot be used; the message names the scene and the field."""


@dataclass(frozen=True)
class Scene:
    """One scene: its title, its caption (plain text, with $…$ for equations) and the raw
    values of its link, {name: text}, applied over the defaults."""

    title: str
    caption: str
    query: dict[str, str]

    def apply(self, state: FlowState, comparison: Comparison) -> str:
        """Show this scene: its settings over the defaults; the notice ("" if none)."""
        return apply_query(state, comparison, self.query, reset=True)


def read_lessons(text: str, origin: str = "lessons") -> list[Scene]:
    """The scenes of a lessons file's text; LessonError naming the scene and field if any is
    bad (``origin`` names the file in the message)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise LessonError(f"{origin}: larger than {MAX_FILE_BYTES // 1024} KB")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LessonError(f"{origin}: not a TOML file ({one_line(exc)})") from None
    extra = sorted(set(data) - {"scene"})
    if extra:
        raise LessonError(f"{origin}: unknown top-level field {extra[0]!r} (only [[scene]] "
                          "tables are read)")  # fmt: skip
    scenes = data.get("scene")
    if not isinstance(scenes, list) or not scenes:
        raise LessonError(f"{origin}: no [[scene]] tables")
    if len(scenes) > MAX_SCENES:
        raise LessonError(f"{origin}: {len(scenes)} scenes, at most {MAX_SCENES}")
    return [_scene(raw, f"{origin}, scene {i}") for i, raw in enumerate(scenes, 1)]


def _scene(raw: object, where: str) -> Scene:
    if not isinstance(raw, dict):
        raise LessonError(f"{where}: not a table")
    title = raw.get("title")
    if isinstance(title, str) and title.strip():
        where = f"{where} ({title.strip()[:MAX_TITLE]!r})"
    for name in sorted(set(raw) - set(FIELDS)):
        raise LessonError(f"{where}: unknown field {name!r} (a scene has {', '.join(FIELDS)})")
    for name, longest in (("title", MAX_TITLE), ("caption", MAX_CAPTION), ("link", 8000)):
        value = raw.get(name)
        if not isinstance(value, str) or (name == "title" and not value.strip()):
            raise LessonError(f"{where}: field {name!r} must be text" +
                              (" and is missing" if value is None else ""))  # fmt: skip
        if len(value) > longest:
            raise LessonError(f"{where}: field {name!r} is longer than {longest} characters")
    query = read_query(raw["link"].partition("?")[2] if "?" in raw["link"] else raw["link"])
    unknown = sorted(set(query) - LINK_NAMES)
    if unknown:
        raise LessonError(f"{where}: field 'link' names no setting {unknown[0]!r}")
    scratch = FlowState()
    comparison = Comparison(scratch)
    bad = read_url_values(query)[1] | read_compare_values(query, comparison)[1]
    for name, raw in bad.items():
        raise LessonError(f"{where}: field 'link': {name}={raw[:40]!r} is not a value of "
                          f"that setting{_choices(scratch, comparison, name)}")  # fmt: skip
    notice = Scene("", "", query).apply(scratch, comparison)
    if notice:
        raise LessonError(f"{where}: field 'link': {notice}")
    return Scene(title=raw["title"].strip(), caption=raw["caption"].strip(), query=query)


def _choices(state: FlowState, comparison: Comparison, name: str) -> str:
    """' (one of: a, b, c)' for a setting with named choices, ' (a to b)' for a number."""
    name = name.removeprefix(B_PREFIX)
    owner = comparison if name in ("compare", "layout") else state
    parameter = owner.param["on" if name == "compare" else name]
    objects = getattr(parameter, "objects", None)
    if objects:
        values = objects.values() if isinstance(objects, dict) else objects
        return " (one of: " + ", ".join(str(v) for v in values) + ")"
    bounds = getattr(parameter, "bounds", None)
    return f" ({bounds[0]:g} to {bounds[1]:g})" if bounds and None not in bounds else ""


def load_lessons(path: str | os.PathLike | None = None) -> list[Scene]:
    """The scenes of ``path``, else of the file ``$FLOWSCOPE_LESSONS`` names, else the built-in
    ones; LessonError (a bad file, one that cannot be read) with the path in the message.
    A file read before and unchanged since is not read or checked again (every page opens it)."""
    path = Path(path or os.environ.get(ENV_VAR) or BUILT_IN)
    try:
        stamp = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    except OSError:
        stamp = None
    if stamp is not None and stamp in _READ:
        return _READ[stamp]
    scenes = _read_file(path)
    if stamp is not None:
        _READ.clear()  # one file is served at a time
        _READ[stamp] = scenes
    return scenes


_READ: dict[tuple, list[Scene]] = {}


def _read_file(path: Path) -> list[Scene]:
    try:
        if not path.is_file():
            raise LessonError(f"{path}: not a file")
        if path.stat().st_size > MAX_FILE_BYTES:  # before reading it
            raise LessonError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LessonError(f"{path}: cannot be read ({one_line(exc)})") from None
    return read_lessons(text, origin=str(path))

"""Compare mode's page as the browser tests read and drive it: the figures, the texts, the
players' steps, the pixels of a view, the switch, the presets, the link."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlparse

import numpy as np
from PIL import Image

DOC = "Bokeh.documents[0]"
SWITCH = "compare two runs (A and B)"
TITLES = {"particle_fig": "Particles (Lagrangian view)", "density_fig": "Density (Eulerian view)"}

# The compare figures on the page: those with a view that is attached and has a size.
FIGURES = """() => { const out = {};
  for (const m of Bokeh.documents[0].all_models) {
    if (m.type !== 'Figure' || !/^((b_)?(particle|density)|difference)_fig$/.test(m.name || ''))
      continue;
    for (const root of Bokeh.index.roots) { const v = root.owner.find_one(m);
      if (!v || !v.el.isConnected) continue;
      const r = v.el.getBoundingClientRect(), f = v.frame.bbox;
      if (r.width > 0 && r.height > 0)
        out[m.name] = {title: m.title.text, x: r.x, y: r.y, width: r.width, height: r.height,
                       fx: r.x + f.left, fy: r.y + f.top, fw: f.width, fh: f.height}; } }
  return out; }"""
# The texts of the page's visible <pre> panes (Panel's Str), as a person reads them: the line
# of B's changes ("B: ..." or "B = A ...") and the readout under the views ("A: ...").
PRES = """() => { const plain = (s) => { const t = document.createElement('textarea');
    t.innerHTML = s; return t.value; };
  return [...Bokeh.documents[0].all_models]
    .filter((m) => m.type.endsWith('.HTML') && m.visible && typeof m.text === 'string')
    .map((m) => plain(plain(m.text)))
    .filter((s) => s.startsWith('<pre>'))
    .map((s) => s.replace(/^<pre>/, '').replace(/<\\/pre>$/, '')); }"""
MODELS = "[...Bokeh.documents[0].all_models]"
CHECKBOX = MODELS + ".find((m) => m.type === 'Checkbox' && m.label === {!r})"
RADIO = MODELS + ".find((m) => m.type.endsWith('RadioButtonGroup') && m.labels.includes({!r}))"


# --- reading the page -------------------------------------------------------------------------
def row(page, name: str, column: str) -> list:
    """Row 0 of a one-row column (the timeline, pair_rows, difference_store): its values."""
    return page.js(
        f"([n, c]) => {{ const d = {DOC}.get_model_by_name(n).data[c];"
        " return d.length ? Array.from(d[0]) : []; }",
        [name, column],
    )


def figures(page) -> dict:
    return page.js(FIGURES)


def pre_texts(page) -> list[str]:
    return page.js(PRES)


def changes_line(page) -> str:
    """The compare section's line of what B changes ('' while it is hidden)."""
    found = [t for t in pre_texts(page) if t.startswith(("B: ", "B = A"))]
    return found[0] if found else ""


def wait_text(page, start: str, *words: str, timeout: int = 60_000) -> str:
    """Until a visible <pre> pane starts with ``start`` and holds every word; returns it."""
    page.page.wait_for_function(
        f"([start, words]) => ({PRES})().some((t) => t.startsWith(start)"
        " && words.every((w) => t.includes(w)))",
        arg=[start, list(words)], timeout=timeout,
    )  # fmt: skip
    return next(t for t in pre_texts(page) if t.startswith(start) and all(w in t for w in words))


def wait_pair(page, a_frames: int, b_frames: int) -> None:
    """Until both runs are on the page with the timeline and readouts of their pair, and
    neither run's server side is busy."""
    page.page.wait_for_function(
        f"""([a, b]) => {{ const m = (n) => {DOC}.get_model_by_name(n);
          const gb = m('b_grid_store'), tl = m('timeline'), rows = m('pair_rows');
          if (gb === null || rows === null) return false;
          const steps = tl.data.a[0].length;
          return m('grid_store').data.t.length === a && gb.data.t.length === b && steps > 0
            && tl.data.b[0].length === steps && rows.data.t.length === 1
            && rows.data.t[0].length === steps
            && m('status').data.busy[0] === 0 && m('b_status').data.busy[0] === 0; }}""",
        arg=[a_frames, b_frames], timeout=90_000,
    )  # fmt: skip


def wait_figures(page, *names: str, absent: tuple[str, ...] = ()) -> dict:
    """Until the named compare figures are laid out and those ``absent`` are not (a layout
    lands a moment after the setting that asks for it); returns them."""
    page.page.wait_for_function(
        f"([names, absent]) => {{ const f = ({FIGURES})();"
        " return names.every((n) => n in f) && absent.every((n) => !(n in f)); }",
        arg=[list(names), list(absent)], timeout=30_000,
    )  # fmt: skip
    return figures(page)


def pause_step(page, step: int) -> None:
    """Pause the player at step ``step`` of the timeline, with both runs drawn (each run's
    cursor at its own frame of the step) and painted. (Not window.flowscope_frame: in compare
    mode it is the frame of whichever run was drawn last.)"""
    page.player(direction=0)
    page.player(value=step)
    page.page.wait_for_function(
        f"""(s) => {{ const m = (n) => {DOC}.get_model_by_name(n), tl = m('timeline').data;
          return tl.at[0] === s && m('cursor').data.frame[0] === tl.a[0][s]
            && m('b_cursor').data.frame[0] === tl.b[0][s]; }}""",
        arg=step, timeout=10_000,
    )  # fmt: skip
    page.settled()


def label(page, name: str) -> str:
    return page.js(f"(n) => {DOC}.get_model_by_name(n).data.text[0]", name)


def frame_of(page, store: str, frame: int) -> np.ndarray:
    """Frame ``frame`` of a particle store (A's 'particle_store', B's 'b_particle_store') as
    positions (N, 2), decoded as render.js decodes them."""
    codes, scale, n = page.js(
        f"([s, f]) => {{ const d = {DOC}.get_model_by_name(s).data, n = d.n[0];"
        " return [Array.from(d.xy[0].slice(2 * f * n, 2 * (f + 1) * n)), d.scale[0], n]; }",
        [store, frame],
    )  # fmt: skip
    return np.asarray(codes, float).reshape(2, n).T * scale


def inner_pixels(page, name: str) -> np.ndarray:
    """The plotting frame of the figure ``name`` (no title, toolbar or axes), as RGB pixels."""
    page.js("() => window.scrollTo(0, 0)")
    f = figures(page)[name]
    png = page.page.screenshot(
        clip={"x": f["fx"], "y": f["fy"], "width": f["fw"], "height": f["fh"]}
    )
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


def hues(pixels: np.ndarray) -> dict[str, float]:
    """Share of the pixels of each hue the particle views use: run A's blue and run B's orange
    of the overlaid layout (blended on white), and two of the data's label colours."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    masks = {
        "blue": (b - r > 60) & (b > 120),
        "orange": (r > 200) & (b < 140) & (g > 100) & (g < 200) & (r - b > 100),
        "green": (g - r > 40) & (g - b > 40),
        "red": (r - g > 80) & (r - b > 80) & (g < 100),
    }
    return {name: float(mask.mean()) for name, mask in masks.items()}


def tinted(pixels: np.ndarray) -> float:
    """Share of the pixels in the difference's colours (red or blue; not white, grey, black)."""
    return float((np.abs(pixels[..., 0] - pixels[..., 2]) > 40).mean())


def switch(page) -> None:
    page.page.get_by_text(SWITCH, exact=True).click()


def choose_preset(page, label_: str) -> None:
    page.page.get_by_role("button", name="presets ▾").click()
    page.page.get_by_text(label_, exact=True).click()


def query(page, *fragments: str) -> dict:
    """The page's query once its URL holds every fragment (the app mirrors it a moment after
    a run has landed)."""
    return {k: v[0] for k, v in parse_qs(urlparse(page.wait_url(*fragments)).query).items()}


def wait_url_lacks(page, fragment: str) -> None:
    page.page.wait_for_function(
        "(f) => !window.location.href.includes(f)", arg=fragment, timeout=15_000
    )


def visible_handle(page, index: int):
    """The index-th visible slider handle (0 η, 1 steps T: run A's or run B's, whichever
    controls are shown), held as an element (it stays that slider when the controls swap)."""
    return page.page.locator(".noUi-handle >> visible=true").nth(index).element_handle()

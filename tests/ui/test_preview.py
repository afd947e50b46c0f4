"""A paused page gets a new run's shown frame ahead of the rest (FlowViews.preview): it paints
that frame from the window at once, and the whole run, landing after it, paints the very same
pixels. Where the picture needs more of the run (a clicked particle's path), the window is not
drawn: the page waits for the whole run."""

from __future__ import annotations

# Every paint of the two views (paint.js draws the density view last): which part of the run
# the particle store held, and a checksum of the views' own canvases (both views, particles and
# trails under, labels over) once painted.
RECORD_PAINTS = """() => {
  window.__paints = [];
  const P = window.flowscope_paint;
  if (P.__recorded) { return; }
  P.__recorded = true;
  const doc = Bokeh.documents[0], store = doc.get_model_by_name('particle_store');
  const cursor = doc.get_model_by_name('cursor');  // the frame being drawn
  const figs = ['particle_fig', 'density_fig'].map((n) => doc.get_model_by_name(n));
  const checksum = () => {
    let sum = 0;
    for (const fig of figs) {
      for (const root of Bokeh.index.roots) {
        const view = root.owner.find_one(fig);
        if (!view) { continue; }
        for (const el of [view.canvas_view.underlays_el, view.canvas_view.overlays_el]) {
          for (const c of el.querySelectorAll('canvas[class^=flowscope-layer]')) {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let k = 0; k < d.length; k += 1) { sum = (sum * 31 + d[k]) % 2147483647; }
          }
        }
      }
    }
    return sum;
  };
  const density = P.density;
  P.density = (fig, f) => {
    const out = density(fig, f);
    const ps = store.data;
    window.__paints.push({first: ps.first[0], held: ps.xy[0].length / (2 * ps.n[0]),
                          text: f.text, pixels: checksum(), frame: cursor.data.frame[0]});
    return out;
  };
}"""


def change_seed(page, seed: int) -> None:
    box = page.page.get_by_label("Seed")
    box.fill(str(seed))
    box.press("Enter")


def paints_of_the_new_run(page, frames: int) -> list[dict]:
    """The paints since RECORD_PAINTS, once the whole new run (``frames`` frames) is painted."""
    page.page.wait_for_function(
        f"() => window.__paints.some((p) => p.first === 0 && p.held === {frames})",
        timeout=30_000,
    )
    page.settled()
    return page.js("() => window.__paints")


def test_a_paused_page_paints_the_frame_sent_ahead_as_the_whole_run_paints_it(app):
    page = app("?dataset=moons&steps=60")
    page.pause_at(30)
    assert page.model_data("shown_step", "step") == [30]  # what the server is told
    before = page.pixels("particle_fig")
    page.js(RECORD_PAINTS)
    change_seed(page, 5)
    paints = paints_of_the_new_run(page, 61)
    first, last = paints[0], paints[-1]
    # the window: frame 30 and its trail of 8 (the default), painted first
    assert (first["first"], first["held"]) == (22, 9), paints
    assert (last["first"], last["held"]) == (0, 61)
    assert first["frame"] == last["frame"] == 30 and first["text"] == last["text"]  # the peak
    assert first["pixels"] == last["pixels"]  # the very same picture, trails included
    after = page.pixels("particle_fig")
    assert (abs(after - before).sum(-1) > 30).mean() > 0.001  # and a new one: the new seed
    assert page.errors == []


def test_no_window_is_sent_while_playing(app):
    page = app("?dataset=moons&steps=60")
    assert page.player_props("direction") == [1]
    assert page.model_data("shown_step", "step") == [-1]
    page.js(RECORD_PAINTS)
    page.player(direction=0)
    page.player(direction=1)  # paused and playing again: the server forgets the step
    page.page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('shown_step').data.step[0] === -1"
    )
    change_seed(page, 6)
    page.page.wait_for_function(
        "() => window.__paints.some((p) => p.first === 0 && p.held === 61)", timeout=30_000
    )
    paints = page.js("() => window.__paints")
    assert all(p["first"] == 0 for p in paints), paints
    assert page.errors == []


def test_a_window_waits_for_the_whole_run_while_a_particle_path_is_shown(app):
    page = app("?dataset=moons&steps=60")
    page.pause_at(60)
    x, y = page.js(
        "() => { const d = Bokeh.documents[0].get_model_by_name('particles').data;"
        " return [d.x[0], d.y[0]]; }"
    )
    box = page.box("particle_fig")
    left, top, width, height = page.js(
        "() => { const m = Bokeh.documents[0].get_model_by_name('particle_fig');"
        " for (const v of Bokeh.index.roots) { const f = v.owner.find_one(m);"
        " if (f) { const fr = f.frame.bbox; return [fr.left, fr.top, fr.width, fr.height]; } } }"
    )
    page.page.mouse.click(box["x"] + left + (x + 4) / 8 * width,
                          box["y"] + top + (4 - y) / 8 * height)  # fmt: skip
    page.page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('picked').data.x.length > 0", timeout=5_000
    )
    page.page.mouse.move(box["x"] + 2, box["y"] + 2)  # off the particle: no hovered path
    page.js(RECORD_PAINTS)
    change_seed(page, 7)
    paints = paints_of_the_new_run(page, 61)
    # the server sent the window (it does not know of the click); the page did not draw it:
    # the clicked particle's path needs every frame of the new run
    assert all(p["first"] == 0 for p in paints), paints
    assert len(page.model_data("picked", "x")) == 61
    assert page.errors == []

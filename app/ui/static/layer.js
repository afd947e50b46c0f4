// The views' own canvases, drawn by render.js each frame without Bokeh's glyph pipeline.
// Measured (N = 5000, trails 8, headless Chromium): playback spent most of a frame in Bokeh
// re-indexing and repainting the figures whose sources changed, and reading computed styles
// while it did; drawing the particles, trails and heatmap straight onto a canvas costs a few
// milliseconds. The pattern is Bokeh's own (its GMapPlot puts the map under the plot): a canvas
// in the plot's underlays, under the grid, the arrows and the hovered paths, sized to the plot's
// frame (the plot's background is transparent, so this canvas paints the paper), and one in its
// overlays, above everything, for the time and peak labels.
// Defines, once per page:
//   window.flowscope_layer(fig, where)   {ctx, w, h, sx, sy, kx, ky} for figure model `fig`
//       and where = "under" | "over", or null while the figure is not laid out; the context is
//       cleared and in CSS pixels of the frame; sx / sy map data x / y to them
//   window.flowscope_repaint(fig, paint) keeps `paint` (no arguments) as the figure's way to
//       draw itself again, and runs it when its ranges, its size or its paper change (a pan, a
//       zoom, a resized window, a theme) without a new frame, and when the page lays the
//       figure out again (compare mode's layouts make new views of it: new canvases)
//   window.flowscope_repaint_now(fig)    runs the figure's kept `paint` now (a script that
//       changed what it paints, after the figure's frame was drawn)
if (!window.flowscope_layer) {
  const entries = new Map();  // figure id -> {view, under, over, paint}
  const view_of = (fig) => {
    for (const root of Bokeh.index.roots) {
      const view = root.owner.find_one(fig);
      if (view !== null && view !== undefined) { return view; }
    }
    return null;
  };
  const canvas_in = (parent, cls) => {
    const canvas = document.createElement("canvas");
    canvas.className = cls;
    canvas.style.position = "absolute";
    canvas.style.pointerEvents = "none";
    parent.append(canvas);
    return canvas;
  };
  const entry_of = (fig) => {
    let entry = entries.get(fig.id);
    if (entry !== undefined && entry.view.canvas_view.underlays_el.isConnected) { return entry; }
    const view = view_of(fig);
    // not in the page (yet), or only the view the page has just dropped
    if (view === null || !view.canvas_view.underlays_el.isConnected) { return null; }
    const cv = view.canvas_view, first = entry === undefined;
    if (!first) { entry.watcher.disconnect(); }
    entry = {fig, view, paint: first ? null : entry.paint,  // kept when laid out again
             under: canvas_in(cv.underlays_el, "flowscope-layer-under"),
             over: canvas_in(cv.overlays_el, "flowscope-layer-over")};
    entries.set(fig.id, entry);
    // Bokeh lays a resized figure out when it gets to it (later than the size's change on a
    // loaded machine): paint once its canvas has the new size, with the frame it has then
    const mine = entry;
    mine.watcher = new ResizeObserver(() => { if (mine.paint) { mine.paint(); } });
    mine.watcher.observe(cv.el);
    if (first) {  // once per figure: the handlers paint whichever view it has then
      const again = () => requestAnimationFrame(() => {
        const now = entries.get(fig.id);
        if (now !== undefined && now.paint) { now.paint(); }
      });
      for (const range of [fig.x_range, fig.y_range]) { fig.connect(range.change, again); }
      // a new size is laid out after the property changes: paint once the frame has it
      for (const p of [fig.properties.frame_width, fig.properties.frame_height]) {
        fig.connect(p.change, () => requestAnimationFrame(again));
      }
      fig.connect(fig.properties.background_fill_color.change, again);  // the theme's paper
    }
    return entry;
  };
  // A figure laid out again (compare mode on or off, another layout) gets a new view, and the
  // kept canvases left the page with the old one: while paused nothing would paint the new
  // view. And a paint can miss the last layout: the events above fire in an order that differs
  // with the machine's load (on a loaded machine presenter mode's density view stayed painted
  // at the size before the refit, 21 px short of its frame), or the paint came while the frame
  // was being laid out (no size: nothing painted). So, a few times a second, a figure whose
  // canvas is not the size and place of its frame now is painted again (a handful of figures,
  // reading sizes Bokeh keeps: no measurable cost).
  const stale = (entry) => {
    const box = entry.view.frame.bbox, canvas = entry.under;
    return box.width > 0 && box.height > 0 && (canvas.__width !== box.width
      || canvas.__height !== box.height || canvas.__left !== box.left || canvas.__top !== box.top);
  };
  setInterval(() => {
    for (const entry of entries.values()) {
      if (entry.paint === null) { continue; }
      const fresh = entry.view.canvas_view.underlays_el.isConnected ? entry : entry_of(entry.fig);
      if (fresh !== null && (fresh !== entry || stale(fresh))) {
        requestAnimationFrame(() => { if (fresh.paint) { fresh.paint(); } });
      }
    }
  }, 250);
  window.flowscope_layer = (fig, where) => {
    const entry = entry_of(fig);
    if (entry === null) { return null; }
    const box = entry.view.frame.bbox;
    if (!(box.width > 0 && box.height > 0)) { return null; }
    const canvas = where === "over" ? entry.over : entry.under;
    const ratio = window.devicePixelRatio || 1;
    const pw = Math.round(box.width * ratio), ph = Math.round(box.height * ratio);
    if (canvas.width !== pw || canvas.height !== ph || canvas.__left !== box.left
        || canvas.__top !== box.top || canvas.__width !== box.width
        || canvas.__height !== box.height) {
      canvas.width = pw; canvas.height = ph; canvas.__left = box.left; canvas.__top = box.top;
      canvas.__width = box.width; canvas.__height = box.height;  // the frame it is painted for
      Object.assign(canvas.style, {left: box.left + "px", top: box.top + "px",
                                   width: box.width + "px", height: box.height + "px"});
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.globalAlpha = 1;
    ctx.clearRect(0, 0, box.width, box.height);
    const xr = fig.x_range, yr = fig.y_range;
    const kx = box.width / (xr.end - xr.start), ky = box.height / (yr.end - yr.start);
    const x0 = xr.start, y1 = yr.end;
    return {ctx, w: box.width, h: box.height, kx, ky,
            sx: (x) => (x - x0) * kx, sy: (y) => (y1 - y) * ky};
  };
  window.flowscope_repaint = (fig, paint) => {
    const entry = entry_of(fig);
    if (entry !== null) { entry.paint = paint; }
  };
  window.flowscope_repaint_now = (fig) => {
    const entry = entry_of(fig);
    if (entry !== null && entry.paint) { entry.paint(); }
  };
}

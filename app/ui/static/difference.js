// A comparison at step `step` of its timeline: the difference of the two densities (A − B, a
// uint8 frame on its own symmetric scale, code 128 = 0) painted on the difference view's canvas
// with the readouts of that step, and, in the overlaid layout, the twins A's view paints
// (window.flowscope_twins, paint.js; A's view is painted again here). Inputs (CustomJS args):
//   timeline {a: [(F,)], b: [(F,)], at}   each run's frame at every step (one row; empty
//                                outside compare mode)
//   dstore   {diff: [(F, H, W)]}   the difference stack (one row)
//   rows     {t, twin, sw2, scale: [(F,)]}   the readouts of every step (one row; NaN: unknown)
//   diff_fig, diff_image         the difference view and its (unpainted) image glyph: its place
//   diverging                    the difference's 256 colours
//   readout  {x, y, text}        the readout line (a glyph on B's particle view)
//   a_store, b_store             the two runs' particle stores (render.js's pstore)
//   a_fig                        A's particle view, where the overlaid layout paints the twins
//   twin_colors                  [A's colour, B's, the segments']
//   layout   {mode: ["side" | "overlay"], cap: [segments at most]}
const ds = dstore.data, rs = rows.data, ta = timeline.data.a[0], tb = timeline.data.b[0];
const steps = ta.length;
if (!steps || rs.t === undefined || !rs.t.length || rs.t[0].length !== steps) { return; }
const f = Math.max(0, Math.min(Math.round(step), steps - 1));
if (typeof window !== "undefined") {  // read by the benchmark: steps drawn in compare mode
  window.flowscope_compare_steps = (window.flowscope_compare_steps || 0) + 1;
}
const t = rs.t[0][f], twin = rs.twin[0][f], sw2 = rs.sw2[0][f], scale = rs.scale[0][f];
const shown = (v) => (Number.isFinite(v) ? v.toPrecision(3) : "–");
let text = "t = " + t.toFixed(3) + "   A − B: ±" + shown(scale);
text += "\ntwins " + shown(twin) + " apart   SW2(A, B) " + shown(sw2);
readout.data.text = [text];
readout.change.emit();

// The difference view: painted on its canvas (layer.js), like the density view, and again on a
// pan, a zoom or a resize.
const stack = ds.diff.length ? ds.diff[0] : undefined;
let codes = null, h = 0, w = 0;
if (stack !== undefined && stack.shape !== undefined && stack.shape[0] === steps) {
  h = stack.shape[1]; w = stack.shape[2];
  codes = new Uint8Array(stack.buffer, stack.byteOffset + f * h * w, h * w);
}
const num = (v) => (typeof v === "number" ? v : v !== null && typeof v === "object" ? v.value : NaN);
const g = diff_image.glyph;
const on_diff = {codes, h, w, extent: [g.x, g.y, g.dw, g.dh].map(num), palette: diverging,
                 text, light: true};
const paint_diff = () => window.flowscope_paint.density(diff_fig, on_diff);
paint_diff();
window.flowscope_repaint(diff_fig, paint_diff);

// The overlaid layout: A's particles, B's, and the segments joining twins, for A's view to
// paint (paint.js, from A's own last frame: its trails and paper).
const decode = (store, frame) => {
  const ps = store.data;
  if (ps.xy === undefined || !ps.xy.length) { return null; }
  const xy = ps.xy[0], n = ps.n[0], scale = ps.scale[0];
  if (frame < 0 || xy.length < (2 * frame + 2) * n) { return null; }
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let p = 0; p < n; p++) { x[p] = xy[2 * frame * n + p] * scale; y[p] = xy[(2 * frame + 1) * n + p] * scale; }
  return [x, y];
};
const overlay = layout.data.mode[0] === "overlay";
const A = overlay ? decode(a_store, ta[f]) : null, B = overlay ? decode(b_store, tb[f]) : null;
if (A === null || B === null) {
  window.flowscope_twins.delete(a_fig.id);
} else {
  const links = Math.min(A[0].length, B[0].length, layout.data.cap[0]);
  window.flowscope_twins.set(a_fig.id, {ax: A[0], ay: A[1], bx: B[0], by: B[1], links,
                                        colors: twin_colors});
  // Bokeh runs a callback's handlers asynchronously: A's frame (render.js) may already be
  // painted, from the step before; paint it again with these twins
  window.flowscope_repaint_now(a_fig);
}

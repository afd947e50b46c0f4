// A comparison at step `step` of its timeline: the difference of the two densities (A − B, a
// uint8 frame on its own symmetric scale, code 128 = 0), the readouts of that step, and, in
// the overlaid layout, run B's particles and the segments joining each particle of A to its
// twin in B. Inputs (CustomJS args):
//   timeline {a: [(F,)], b: [(F,)], at}   each run's frame at every step (one row; empty
//                                outside compare mode)
//   dstore   {diff: [(F, H, W)]}   the difference stack (one row)
//   rows     {t, twin, sw2, scale: [(F,)]}   the readouts of every step (one row; NaN: unknown)
//   diff     {image}             the difference view's image
//   readout  {x, y, text}        the readout line (on B's particle view and the difference)
//   a_store, b_store             the two runs' particle stores (render.js's pstore)
//   twin_dots {x, y}, twin_links {x, y}   B's particles and the segments (overlaid layout)
//   layout   {mode: ["side" | "overlay"], cap: [segments at most]}
const ds = dstore.data, rs = rows.data, ta = timeline.data.a[0], tb = timeline.data.b[0];
const steps = ta.length;
if (!steps || rs.t === undefined || !rs.t.length || rs.t[0].length !== steps) { return; }
const f = Math.max(0, Math.min(Math.round(step), steps - 1));
if (typeof window !== "undefined") {  // read by the benchmark: steps drawn in compare mode
  window.flowscope_compare_steps = (window.flowscope_compare_steps || 0) + 1;
}
const stack = ds.diff.length ? ds.diff[0] : undefined;
if (stack !== undefined && stack.shape !== undefined && stack.shape[0] === steps) {
  const h = stack.shape[1], w = stack.shape[2];
  const codes = new Uint8Array(stack.buffer, stack.byteOffset + f * h * w, h * w);
  diff.data.image = [new stack.constructor(codes, [h, w])];
  diff.change.emit();
}
const t = rs.t[0][f], twin = rs.twin[0][f], sw2 = rs.sw2[0][f], scale = rs.scale[0][f];
const shown = (v) => (Number.isFinite(v) ? v.toPrecision(3) : "–");
let text = "t = " + t.toFixed(3) + "   A − B: ±" + shown(scale);
text += "\ntwins " + shown(twin) + " apart   SW2(A, B) " + shown(sw2);
readout.data.text = [text];
readout.change.emit();

// The overlaid layout: B's particles and their segments to their twins in A.
const overlay = layout.data.mode[0] === "overlay";
const decode = (store, frame) => {
  const ps = store.data;
  if (ps.xy === undefined || !ps.xy.length) { return null; }
  const xy = ps.xy[0], n = ps.n[0], scale = ps.scale[0];
  if (frame < 0 || xy.length < (2 * frame + 2) * n) { return null; }
  const x = new Float32Array(n), y = new Float32Array(n);
  for (let p = 0; p < n; p++) { x[p] = xy[2 * frame * n + p] * scale; y[p] = xy[(2 * frame + 1) * n + p] * scale; }
  return [x, y];
};
const A = overlay ? decode(a_store, ta[f]) : null, B = overlay ? decode(b_store, tb[f]) : null;
if (A === null || B === null) {
  if (twin_dots.data.x.length) {
    twin_dots.data.x = []; twin_dots.data.y = []; twin_dots.change.emit();
    twin_links.data.x = []; twin_links.data.y = []; twin_links.change.emit();
  }
  return;
}
twin_dots.data.x = B[0]; twin_dots.data.y = B[1]; twin_dots.change.emit();
const m = Math.min(A[0].length, B[0].length, layout.data.cap[0]);
const lx = new Float32Array(3 * m), ly = new Float32Array(3 * m);
for (let p = 0; p < m; p++) {
  lx[3 * p] = A[0][p]; lx[3 * p + 1] = B[0][p]; lx[3 * p + 2] = NaN;
  ly[3 * p] = A[1][p]; ly[3 * p + 1] = B[1][p]; ly[3 * p + 2] = NaN;
}
twin_links.data.x = lx; twin_links.data.y = ly; twin_links.change.emit();

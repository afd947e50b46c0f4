// "Where does this point come from": p(c | x_t) of the data's mixture at the hovered point, at
// the frame on screen (models/guidance.py's posterior, here in the browser: one pass over the
// components per mouse move, so the readout follows the player at no server cost).
//   mix      {x, y, label}   the components (M,) of the run's mixture
//   meta     one row: {a, c2: [(F,)] per frame; names: [(K,)]; on: [bool]}
//   cursor   {frame: [i]};  gstore {t: (F,)};  readout {x, y, text}: a text glyph
//   xr, yr   the views' ranges (the readout sits in the lower left corner)
const m = meta.data;
const A = m.a[0], C2 = m.c2[0], names = m.names[0];
const g = cb_data.geometry;
const off = {x: [0], y: [0], text: [""]};
if (!m.on[0] || A.length === 0 || !Number.isFinite(g.x) || !Number.isFinite(g.y)) {
  if (readout.data.text[0] !== "") readout.data = off;
  return;
}
const i = Math.max(0, Math.min(cursor.data.frame[0], A.length - 1));
const a = A[i], c2 = C2[i];
const X = mix.data.x, Y = mix.data.y, L = mix.data.label;
const K = names.length;
// softmax of −|x − a x_j|² / 2c² over the components, summed per class (shifted by the
// largest logit: far from every component the densities underflow, their ratios do not)
const logits = new Float64Array(X.length);
let best = -Infinity;
for (let j = 0; j < X.length; j++) {
  const dx = g.x - a * X[j], dy = g.y - a * Y[j];
  logits[j] = -(dx * dx + dy * dy) / (2 * c2);
  if (logits[j] > best) best = logits[j];
}
const p = new Float64Array(K);
let total = 0;
for (let j = 0; j < X.length; j++) {
  const w = Math.exp(logits[j] - best);
  p[L[j]] += w;
  total += w;
}
// the classes the mixture has (a user's labels may skip some: those names are ""), likeliest first
const order = Array.from({length: K}, (_, k) => k).filter((k) => names[k] !== "")
  .sort((u, v) => p[v] - p[u]).slice(0, 8);
const shown = names.filter((n) => n !== "").length;
const t = gstore.data.t.length > i ? gstore.data.t[i] : NaN;
const lines = ["p(c | x, t = " + t.toFixed(2) + ") at (" + g.x.toFixed(2) + ", "
               + g.y.toFixed(2) + ")"];
for (const k of order) {
  const q = p[k] / total;
  lines.push(names[k] + "  " + q.toFixed(2) + "  " + "█".repeat(Math.round(10 * q)));
}
if (shown > order.length) lines.push("(" + (shown - order.length) + " more classes)");
const dx = xr.end - xr.start, dy = yr.end - yr.start;
readout.data = {x: [xr.start + 0.02 * dx], y: [yr.start + 0.03 * dy], text: [lines.join("\n")]};

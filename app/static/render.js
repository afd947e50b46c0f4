// Draws frame `frame` of the packed run into the displayed sources, in place.
// Sources are mutated and `change.emit()`ed, never reassigned: reassigning `data` would sync the
// whole frame back to the server over the websocket. Inputs (CustomJS args):
//   cursor   {frame: [i]}                  the current frame, kept client-side only
//   settings {trail, density, overlay, contours}   display settings pushed by the server
//   pstore   {x0, y0, ..., label}          particle positions of every frame, colour labels
//   gstore   {t, density, peak, exact, exact_peak}   one row per frame
//   astore   {x, y, velocity_u0, ...}      overlay arrows of every frame
//   cstore   {xs, ys}                      contour lines of every frame
const started = performance.now();
const gs = gstore.data, ps = pstore.data, st = settings.data;
const nframes = gs.t.length;
const i = Math.max(0, Math.min(Math.round(frame), nframes - 1));
cursor.data.frame[0] = i;
const x = ps["x" + i], y = ps["y" + i];
if (x === undefined || y === undefined) { return; }  // stores are mid-update
const n = x.length;

particles.data.x = x; particles.data.y = y; particles.data.label = ps.label;
particles.change.emit();

// Fading trails: per colour label and age layer, one NaN-separated polyline through the last
// `trail` positions of every particle (the canvas strokes each in one call). Layer 0 holds the
// newer half of the trail and is drawn brighter than layer 1, the older half.
const len = Math.min(st.trail[0], i);
const trail_cap = st.trail_cap[0];
const half = Math.ceil(len / 2);
const spans = [[i - half, i], [i - len, i - half]];  // [first frame, last frame] per layer
const lab = ps.label;
for (let layer = 0; layer < 2; layer++) {
  const [f0, f1] = spans[layer];
  const per = f1 > f0 ? f1 - f0 + 2 : 0;  // points of one particle, plus the NaN break
  const counts = new Array(trail_sources.length).fill(0);
  const nt = Math.min(n, trail_cap);  // particles are in random order: the first nt are a sample
  if (per > 0) { for (let p = 0; p < nt; p++) { counts[lab[p]] += 1; } }
  const xs = counts.map((c) => new Float32Array(c * per));
  const ys = counts.map((c) => new Float32Array(c * per));
  const fill = new Array(trail_sources.length).fill(0);
  const FX = [], FY = [];  // the frames of this layer, looked up once
  for (let f = f0; f <= f1 && per > 0; f++) { FX.push(ps["x" + f]); FY.push(ps["y" + f]); }
  if (per > 0) {
    for (let p = 0; p < nt; p++) {
      const k = lab[p], X = xs[k], Y = ys[k];
      let o = fill[k];
      for (let f = 0; f < FX.length; f++) { X[o] = FX[f][p]; Y[o] = FY[f][p]; o++; }
      X[o] = NaN; Y[o] = NaN; fill[k] = o + 1;
    }
  }
  for (let k = 0; k < trail_sources.length; k++) {
    const src = trail_sources[k][layer];
    src.data.x = xs[k]; src.data.y = ys[k]; src.change.emit();
  }
}

// Heatmap: uint8 frame scaled to its own peak; the peak is reported in the time label.
const exact = st.density[0] === "exact";
heat.data.image = [exact ? gs.exact[i] : gs.density[i]];
heat.change.emit();
const peak = exact ? gs.exact_peak[i] : gs.peak[i];

// Field overlay.
const kind = st.overlay[0], as = astore.data;
const u = as[kind + "_u" + i], v = as[kind + "_v" + i];
const m = as.x.length;
const show = kind !== "none" && u !== undefined;  // "none": empty columns, no arrows drawn
const x1 = new Float32Array(show ? m : 0), y1 = new Float32Array(show ? m : 0);
for (let j = 0; j < x1.length; j++) { x1[j] = as.x[j] + u[j]; y1[j] = as.y[j] + v[j]; }
arrows.data.x_start = show ? as.x : x1; arrows.data.y_start = show ? as.y : y1;
arrows.data.x_end = x1; arrows.data.y_end = y1;
arrows.change.emit();

// Contours of the exact density.
const cs = cstore.data;
const on = st.contours[0] && cs.xs !== undefined && cs.xs.length === nframes;
contour.data.xs = on ? cs.xs[i] : []; contour.data.ys = on ? cs.ys[i] : [];
contour.change.emit();

// The highlighted trajectories (clicked, hovered): full path, as a line.
for (const [src, idx] of [[picked, picked_index.data.index[0]], [hovered, hovered_index.data.index[0]]]) {
  const hx = [], hy = [];
  if (idx !== undefined && idx >= 0 && idx < n) {
    for (let k = 0; k < nframes; k++) {
      const fx = ps["x" + k], fy = ps["y" + k];
      if (fx === undefined) { break; }
      hx.push(fx[idx]); hy.push(fy[idx]);
    }
  }
  src.data.x = hx; src.data.y = hy; src.change.emit();
}

// Current time: the label on the particle view and the markers on the schedule plots.
const t = gs.t[i];
label.data.text = ["t = " + t.toFixed(3) + "   frame " + i + "/" + (nframes - 1)];
label.change.emit();
peak_label.data.text = ["peak density " + peak.toPrecision(3)];
peak_label.change.emit();
for (const mark of marks) { mark.data.x = [t, t]; mark.change.emit(); }
if (typeof window !== "undefined") {
  window.flowscope_frames = (window.flowscope_frames || 0) + 1;  // read by the benchmark
  window.flowscope_frame = i;
  window.flowscope_render_ms = performance.now() - started;  // JS work only, before painting
}

// Draws frame `frame` of the packed run: the particles, trails, heatmap and labels on the views'
// own canvases (paint.js, layer.js), the rest (arrows, contours, picked paths) into Bokeh's
// sources. Sources are mutated and `change.emit()`ed, never reassigned: reassigning `data`
// would sync the whole frame back to the server over the websocket. Inputs (CustomJS args):
//   cursor   {frame: [i]}                  the current frame, kept client-side only
//   settings {trail, density, overlay, contours}   display settings pushed by the server
//   pstore   {xy: [(T+1)·2·N int16], scale: [s], label: [N], n: [N], logp: [(T+1)·N],
//            grid: [(x0, x1, y0, y1, bandwidth)]}   positions of every frame, (T+1, 2, N),
//            position = code · s; the carried log-density; the density grid's geometry
//   gstore   {t, peak, exact_peak, pde_peak, pde_mass, pde_tv}   one row per frame
//   istore   {density, exact, pde, posterior: [(F, H, W)]}   uint8 density stacks, (0, H, W) when not
//            sent (the particles' own is then made here from pstore)
//   astore   {x: [P], y: [P], velocity: [(T+1)·2·P], score, drift}   overlay arrows
//   cstore   {xs, ys}                      contour lines of every frame
//   rstore   {xy: [(T+1)·2·N int16], scale: [s]}   the reference run's positions, or empty
//   particle_fig, density_fig, image_glyph   the views and the heatmap's (unpainted) image
//   label_colors, inferno, trail_alpha       the label palette, the heatmap's, the trails' alpha
const started = performance.now();
const gs = gstore.data, ps = pstore.data, st = settings.data;
const nframes = gs.t.length;
const i = Math.max(0, Math.min(Math.round(frame), nframes - 1));
cursor.data.frame[0] = i;
if (ps.xy === undefined || ps.xy.length === 0) { return; }
const xy = ps.xy[0], n = ps.n[0], scale = ps.scale[0];
if (xy.length !== nframes * 2 * n) { return; }  // stores are mid-update: wait for the last one
// Zero-copy float32 views. Not `subarray`: on Bokeh's NDArray subclasses it goes through their
// constructor, which ignores offset and length and wraps the whole buffer.
const view = (a, start, len) => new Float32Array(a.buffer, a.byteOffset + 4 * start, len);
// (T+1, 2, N) int16 layout: the first `count` particles of frame f, x (axis 0) or y (axis 1)
const decode = (f, axis, count) => {
  const out = new Float32Array(count), start = (2 * f + axis) * n;
  for (let p = 0; p < count; p++) { out[p] = xy[start + p] * scale; }
  return out;
};
const x = decode(i, 0, n), y = decode(i, 1, n);

const lab = ps.label[0];
// The particles' source holds the frame (for hovering, clicking, and the overlaid comparison);
// it is sent to its renderer at the end, only when one of them needs it (Bokeh indexes and
// repaints a figure for every change of its sources, most of a frame's time while playing).
particles.data.x = x; particles.data.y = y; particles.data.label = lab;
if (particles.data.shade === undefined || particles.data.shade.length !== n) {
  particles.data.shade = new Float32Array(n);  // columns keep one length
}

// Fading trails: per colour label and age layer, one NaN-separated polyline through the last
// `trail` positions of every particle (the canvas strokes each in one call). Layer 0 holds the
// newer half of the trail and is drawn brighter than layer 1, the older half.
const len = Math.min(st.trail[0], i);
const trail_cap = st.trail_cap[0];
const half = Math.ceil(len / 2);
const spans = [[i - half, i], [i - len, i - half]];  // [first frame, last frame] per layer
const trail_paths = [];  // [layer][label] {X, Y}, painted by paint.js
for (let layer = 0; layer < 2; layer++) {
  const [f0, f1] = spans[layer];
  const per = f1 > f0 ? f1 - f0 + 2 : 0;  // points of one particle, plus the NaN break
  const counts = new Array(label_colors.length).fill(0);
  const nt = Math.min(n, trail_cap);  // particles are in random order: the first nt are a sample
  if (per > 0) { for (let p = 0; p < nt; p++) { counts[lab[p]] += 1; } }
  const xs = counts.map((c) => new Float32Array(c * per));
  const ys = counts.map((c) => new Float32Array(c * per));
  const fill = new Array(label_colors.length).fill(0);
  const FX = [], FY = [];  // the frames of this layer, looked up once
  for (let f = f0; f <= f1 && per > 0; f++) { FX.push(decode(f, 0, nt)); FY.push(decode(f, 1, nt)); }
  if (per > 0) {
    for (let p = 0; p < nt; p++) {
      const k = lab[p], X = xs[k], Y = ys[k];
      let o = fill[k];
      for (let f = 0; f < FX.length; f++) { X[o] = FX[f][p]; Y[o] = FY[f][p]; o++; }
      X[o] = NaN; Y[o] = NaN; fill[k] = o + 1;
    }
  }
  trail_paths.push(xs.map((X, k) => ({X, Y: ys[k]})));
}

// The particles' own density of one frame, as models/density.py's histogram_density makes it
// on the server (which sends no stack for it: the positions are here already): a histogram on
// the (h, w) grid, then a Gaussian blur of width `bandwidth` truncated at 3σ, along y then x,
// zero-padded (mass blurred past the border leaves the box). Returned as uint8, scaled to the
// frame's own peak, as the server's stacks are, with that peak in density units (the server
// sends no peak for it either). ~0.5 ms at 96² and N = 2000.
const particle_density = (X, Y, grid, h, w) => {
  const [x0, x1, y0, y1, bandwidth] = grid;
  const dx = (x1 - x0) / w, dy = (y1 - y0) / h;
  let img = new Float32Array(h * w);
  for (let p = 0; p < X.length; p++) {
    const ix = Math.floor((X[p] - x0) / dx), iy = Math.floor((Y[p] - y0) / dy);
    if (ix >= 0 && ix < w && iy >= 0 && iy < h) { img[iy * w + ix] += 1; }
  }
  for (const [sigma, stride, size] of [[bandwidth / dy, w, h], [bandwidth / dx, 1, w]]) {
    if (!(sigma > 0)) { continue; }
    const r = Math.max(1, Math.ceil(3 * sigma)), taps = new Float64Array(2 * r + 1);
    let total = 0;
    for (let k = -r; k <= r; k++) { taps[k + r] = Math.exp(-0.5 * (k / sigma) ** 2); total += taps[k + r]; }
    for (let k = 0; k < taps.length; k++) { taps[k] /= total; }
    const out = new Float32Array(h * w);
    for (let row = 0; row < h; row++) {
      for (let col = 0; col < w; col++) {
        const j = row * w + col, at = stride === 1 ? col : row;
        const lo = Math.max(-r, -at), hi = Math.min(r, size - 1 - at);
        let acc = 0;
        for (let k = lo; k <= hi; k++) { acc += taps[k + r] * img[j + k * stride]; }
        out[j] = acc;
      }
    }
    img = out;
  }
  let top = 0;
  for (let j = 0; j < img.length; j++) { if (img[j] > top) { top = img[j]; } }
  const codes = new Uint8Array(h * w), to_code = top > 0 ? 255 / top : 0;
  for (let j = 0; j < img.length; j++) { codes[j] = Math.round(img[j] * to_code); }
  return {codes, peak: X.length ? top / (X.length * dx * dy) : 0};  // counts / (N dx dy)
};

// Heatmap: uint8 frame scaled to its own peak; the peak is reported in the time label.
const source = st.density[0];  // "particles", "pde", "exact" or "posterior"
let particle_peak = gs.peak[i];  // NaN from the server when the page makes the density
const stack = source === "exact" ? istore.data.exact
  : source === "pde" ? istore.data.pde
  : source === "posterior" ? istore.data.posterior : istore.data.density;
if (stack !== undefined && stack.length) {
  // (F, H, W) uint8 stack, or (0, H, W) when not sent: frame i as a 2D NDArray of Bokeh's own
  // class (copies H·W bytes). An empty exact or PDE stack leaves the image as it was until
  // the stack arrives.
  const D = stack[0], h = D.shape[1], w = D.shape[2];
  const grid = ps.grid === undefined || !ps.grid.length ? undefined : ps.grid[0];
  let codes = null;
  if (D.shape[0] === nframes) {
    codes = new Uint8Array(D.buffer, D.byteOffset + i * h * w, h * w);
  } else if (source === "particles" && grid !== undefined) {
    const made = particle_density(x, y, grid, h, w);
    codes = made.codes;
    particle_peak = made.peak;
  }
  if (codes !== null) {  // kept in the source (not sent to Bokeh: paint.js draws it)
    heat.data.image = [new D.constructor(codes, [h, w])];
    heat.__flowscope = {codes, h, w};
  }
}
const peak = source === "exact" ? gs.exact_peak[i]
  : source === "pde" && gs.pde_peak !== undefined ? gs.pde_peak[i] : particle_peak;

// Field overlay.
const kind = st.overlay[0], as = astore.data;
const ax = as.x.length ? as.x[0] : new Float32Array(0), ay = as.y.length ? as.y[0] : ax;
const m = ax.length, uv = as[kind] === undefined ? undefined : as[kind][0];
const show = kind !== "none" && uv !== undefined && uv.length === nframes * 2 * m;
const u = show ? view(uv, 2 * i * m, m) : undefined;
const v = show ? view(uv, (2 * i + 1) * m, m) : undefined;
// An arrow shorter than a tenth of a cell is not drawn: its head alone (Bokeh draws one at any
// length) covered the grid with dots where a field vanishes, as a current does off the data.
const cell = m > 1 ? Math.abs(ax[1] - ax[0]) : 1, shortest = (0.1 * cell) ** 2;
let kept = 0;
for (let j = 0; show && j < m; j++) { if (u[j] * u[j] + v[j] * v[j] >= shortest) kept++; }
const x0 = new Float32Array(kept), y0 = new Float32Array(kept);
const x1 = new Float32Array(kept), y1 = new Float32Array(kept);
for (let j = 0, k = 0; show && j < m; j++) {
  if (u[j] * u[j] + v[j] * v[j] < shortest) continue;
  x0[k] = ax[j]; y0[k] = ay[j]; x1[k] = ax[j] + u[j]; y1[k] = ay[j] + v[j]; k++;
}
// A source that was empty and stays empty is left alone: each change makes Bokeh index the
// source again and repaint its figure, a cost on every frame of playback.
const still_empty = (src, key, len) => len === 0 && src.data[key].length === 0;
if (!still_empty(arrows, "x_start", kept)) {
  arrows.data.x_start = x0; arrows.data.y_start = y0;
  arrows.data.x_end = x1; arrows.data.y_end = y1;
  arrows.change.emit();
}

// Contours of the exact density.
const cs = cstore.data;
const on = st.contours[0] && cs.xs !== undefined && cs.xs.length === nframes;
if (!still_empty(contour, "xs", on ? cs.xs[i].length : 0)) {
  contour.data.xs = on ? cs.xs[i] : []; contour.data.ys = on ? cs.ys[i] : [];
  contour.change.emit();
}

// The highlighted trajectories (clicked, hovered): full path, as a line.
for (const [src, idx] of [[picked, picked_index.data.index[0]], [hovered, hovered_index.data.index[0]]]) {
  const hx = [], hy = [];
  if (idx !== undefined && idx >= 0 && idx < n) {
    for (let k = 0; k < nframes; k++) {
      hx.push(xy[2 * k * n + idx] * scale); hy.push(xy[(2 * k + 1) * n + idx] * scale);
    }
  }
  if (!still_empty(src, "x", hx.length)) { src.data.x = hx; src.data.y = hy; src.change.emit(); }
}
// The clicked particle's path in the reference run (rstore: same layout as pstore), dashed.
const rs = rstore.data, pick = picked_index.data.index[0];
const rx = [], ry = [];
if (rs.xy !== undefined && rs.xy.length && pick !== undefined && pick >= 0 && pick < n) {
  const rxy = rs.xy[0], rscale = rs.scale[0];
  if (rxy.length === 2 * nframes * n) {
    for (let k = 0; k < nframes; k++) {
      rx.push(rxy[2 * k * n + pick] * rscale); ry.push(rxy[(2 * k + 1) * n + pick] * rscale);
    }
  }
}
if (rx.length || picked_ref.data.x.length) {  // nothing to redraw while none is shown
  picked_ref.data.x = rx; picked_ref.data.y = ry; picked_ref.change.emit();
}

// Current time: the label on the particle view and the markers on the schedule plots.
const t = gs.t[i];
label.data.text = ["t = " + t.toFixed(3) + "   frame " + i + "/" + (nframes - 1)];
// the class map is a probability on one scale (255 = 1), not a density scaled per frame
let readout = source === "posterior" ? "p(class " + (st.posterior_class === undefined ? 0
  : st.posterior_class[0]) + " | x_t): 0 … 1" : "peak density " + peak.toPrecision(3);
if (source === "pde" && gs.pde_tv !== undefined && Number.isFinite(gs.pde_tv[i])) {
  // the two views agree when the particles' density and the PDE's are close
  readout += "\nTV(particles, PDE) " + gs.pde_tv[i].toFixed(3)
    + "   mass in box " + gs.pde_mass[i].toFixed(4);
}
peak_label.data.text = [readout];

// Particles in the heatmap's colours: the density each carries, on the heatmap's scale.
const logp = ps.logp === undefined || !ps.logp.length ? undefined : ps.logp[0];
let shade_codes = null;  // the colour of each particle in the heatmap's palette, or none
if (st.shade !== undefined && st.shade[0] && logp !== undefined && logp.length === nframes * n) {
  const shade = new Float32Array(n), to_code = peak > 0 ? 255 / peak : 0;
  shade_codes = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    shade[p] = Math.min(255, Math.exp(logp[i * n + p]) * to_code);
    shade_codes[p] = Math.min(255, Math.floor(shade[p] * 256 / 255));  // Bokeh's mapping
  }
  particles.data.shade = shade;
}
// The time markers of the plots under the player follow at most every MARK_MS, and the last
// one always lands (a trailing timer): each move repaints every plot that holds a marker, and
// at every frame those repaints cost playback ~15 % of its rate (N = 5000).
if (marks.length) {
  const MARK_MS = 100, m0 = marks[0];  // the first marker's model keeps the throttle's state
  m0.__flowscope_t = t;
  const place = () => {
    for (const mark of marks) { mark.location = m0.__flowscope_t; }
    m0.__flowscope_at = performance.now();
  };
  if (performance.now() - (m0.__flowscope_at || 0) >= MARK_MS) { place(); }
  else if (!m0.__flowscope_timer) {
    m0.__flowscope_timer = setTimeout(() => { m0.__flowscope_timer = 0; place(); }, MARK_MS);
  }
}
// Both views on their own canvases (paint.js), and again on a pan, a zoom or a resize.
const num = (v) => (typeof v === "number" ? v : v !== null && typeof v === "object" ? v.value : NaN);
const heat_now = heat.__flowscope;
const twins = st.twins !== undefined && st.twins[0];
const on_particles = {x, y, lab, colors: label_colors, shade: shade_codes, inferno,
                      trails: trail_paths, trail_alpha, twins, text: label.data.text[0]};
const on_density = {codes: heat_now === undefined ? null : heat_now.codes,
                    h: heat_now === undefined ? 0 : heat_now.h,
                    w: heat_now === undefined ? 0 : heat_now.w,
                    extent: [image_glyph.x, image_glyph.y, image_glyph.dw, image_glyph.dh].map(num),
                    palette: inferno, text: readout};
const paint_particles = () => window.flowscope_paint.particles(particle_fig, on_particles);
const paint_density = () => window.flowscope_paint.density(density_fig, on_density);
paint_particles();
paint_density();
window.flowscope_repaint(particle_fig, paint_particles);
window.flowscope_repaint(density_fig, paint_density);
// The particles' source goes to Bokeh when paused (a click or a hover finds the particle where
// it is drawn), while the pointer is over the view, and for a new run's first frame. (The player model is looked up once: its page keeps it.)
if (window.flowscope_player === undefined) {
  window.flowscope_player = [...Bokeh.documents[0].all_models].find(
    (m) => m.constructor.__name__ === "Player") || null;  // none in an exported page
}
const the_player = window.flowscope_player;
const plays = the_player !== null && the_player.direction !== 0;
const pointer = performance.now() - (window.flowscope_pointer_at || -1e9) < 500;
if (!plays || pointer || particles.__flowscope_n !== n
    || particles.__flowscope_run !== xy) {
  particles.__flowscope_n = n;
  particles.__flowscope_run = xy;
  particles.change.emit();
}
if (typeof window !== "undefined") {
  window.flowscope_frames = (window.flowscope_frames || 0) + 1;  // read by the benchmark
  window.flowscope_frame = i;
  window.flowscope_render_ms = performance.now() - started;  // JS work only, before painting
}

// Paints one frame on the views' own canvases (layer.js): the particle view's paper, trails,
// particles and time label; the density view's heatmap and peak label. Defines, once per page,
//   window.flowscope_paint.particles(fig, f)   f: {x, y, lab: [N] labels, colors: label k's
//       colour is colors[k % len], shade: [N] uint8 codes into `inferno` or null, inferno,
//       trails: [layer][k] {X, Y} NaN-separated polylines, trail_alpha: [layer], twins: the
//       overlaid comparison's twins instead of the particles (see below), text: the time label}
//   window.flowscope_paint.density(fig, f)     f: {codes: (H·W) uint8 or null, h, w, extent:
//       [x, y, dw, dh] of the image in data units, row 0 at y (as Bokeh's image), palette:
//       256 "#rrggbb", text: the label, may hold "\n", light: a light label (dark by default)}
//   window.flowscope_twins   Map figure id -> {ax, ay, bx, by: (N,) positions, links: segments
//       drawn (the first `links` twins), colors: [A, B, link]}: the overlaid comparison's step,
//       written by difference.js before the figure paints
// Colours are Bokeh's: label k is colors[k], code c of the heatmap and of a shaded particle is
// palette[c] (a LinearColorMapper over 0 … 255 with 256 colours maps c to colour c).
if (!window.flowscope_paint) {
  window.flowscope_twins = new Map();
  const SIZE = 4;  // a particle's square, in CSS pixels (the scatter's size was 4 screen units)
  const luts = new Map();
  const lut_of = (palette) => {  // (256 · 4) RGBA bytes of a 256-colour palette of "#rrggbb"
    let lut = luts.get(palette);
    if (lut === undefined) {
      lut = new Uint8ClampedArray(palette.length * 4);
      palette.forEach((c, k) => {
        const v = parseInt(c.slice(1), 16);
        lut.set([(v >> 16) & 255, (v >> 8) & 255, v & 255, 255], 4 * k);
      });
      luts.set(palette, lut);
    }
    return lut;
  };
  const dark = (colour) => {  // a "#rrggbb" paper darker than mid-grey
    if (typeof colour !== "string" || colour[0] !== "#" || colour.length !== 7) { return false; }
    const v = parseInt(colour.slice(1), 16);
    return 0.299 * ((v >> 16) & 255) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255) < 128;
  };
  // counting sort of the particles by colour key: they are then filled one colour at a time
  const by_key = (keys, nkeys) => {
    const starts = new Int32Array(nkeys + 1), order = new Int32Array(keys.length);
    for (let p = 0; p < keys.length; p++) { starts[keys[p] + 1] += 1; }
    for (let k = 0; k < nkeys; k++) { starts[k + 1] += starts[k]; }
    const at = starts.slice(0, nkeys);
    for (let p = 0; p < keys.length; p++) { order[at[keys[p]]++] = p; }
    return {starts, order};
  };
  // the overlaid comparison: a segment from each particle of A to its twin in B, then A's
  // particles and B's, each run in its own colour
  const paint_twins = (ctx, sx, sy, t) => {
    const half = SIZE / 2;
    ctx.globalAlpha = 0.6;
    ctx.lineWidth = 0.8;
    ctx.strokeStyle = t.colors[2];
    ctx.beginPath();
    for (let p = 0; p < t.links; p++) {
      ctx.moveTo(sx(t.ax[p]), sy(t.ay[p]));
      ctx.lineTo(sx(t.bx[p]), sy(t.by[p]));
    }
    ctx.stroke();
    ctx.globalAlpha = 0.8;
    for (const [X, Y, colour] of [[t.ax, t.ay, t.colors[0]], [t.bx, t.by, t.colors[1]]]) {
      ctx.fillStyle = colour;
      ctx.beginPath();
      for (let p = 0; p < X.length; p++) { ctx.rect(sx(X[p]) - half, sy(Y[p]) - half, SIZE, SIZE); }
      ctx.fill();
    }
  };
  const label = (fig, text, paper, ink, alpha) => {
    const L = window.flowscope_layer(fig, "over");
    if (L === null || !text) { return; }
    const ctx = L.ctx, lines = text.split("\n"), line = 15;
    ctx.font = "12px sans-serif";
    ctx.textBaseline = "top";
    const width = Math.max(...lines.map((s) => ctx.measureText(s).width));
    ctx.globalAlpha = alpha;
    ctx.fillStyle = paper;
    ctx.fillRect(4, 4, width + 6, line * lines.length + 2);
    ctx.globalAlpha = 1;
    ctx.fillStyle = ink;
    lines.forEach((s, j) => ctx.fillText(s, 7, 6 + line * j));
  };
  window.flowscope_paint = {
    particles(fig, f) {
      const L = window.flowscope_layer(fig, "under");
      const paper = fig.background_fill_color;
      if (L !== null) {
        const {ctx, w, h, sx, sy} = L;
        ctx.fillStyle = typeof paper === "string" ? paper : "#ffffff";
        ctx.fillRect(0, 0, w, h);
        ctx.lineWidth = 1.2;
        f.trails.forEach((paths, layer) => {
          ctx.globalAlpha = f.trail_alpha[layer];
          paths.forEach(({X, Y}, k) => {
            if (!X.length) { return; }
            ctx.strokeStyle = f.colors[k % f.colors.length];
            ctx.beginPath();
            let pen = false;
            for (let j = 0; j < X.length; j++) {
              const a = X[j];
              if (a !== a) { pen = false; continue; }  // NaN: the next particle's trail
              if (pen) { ctx.lineTo(sx(a), sy(Y[j])); } else { ctx.moveTo(sx(a), sy(Y[j])); pen = true; }
            }
            ctx.stroke();
          });
        });
        const twins = f.twins ? window.flowscope_twins.get(fig.id) : undefined;
        if (twins !== undefined) {
          paint_twins(ctx, sx, sy, twins);
        } else {
          const shaded = f.shade !== null;
          const colours = shaded ? f.inferno : f.colors, n = f.x.length;
          const keys = new Int32Array(n);
          for (let p = 0; p < n; p++) {
            keys[p] = shaded ? f.shade[p] : Number(f.lab[p]) % colours.length;
          }
          const {starts, order} = by_key(keys, colours.length), half = SIZE / 2;
          ctx.globalAlpha = shaded ? 0.95 : 0.85;
          for (let k = 0; k < colours.length; k++) {
            if (starts[k + 1] === starts[k]) { continue; }
            ctx.fillStyle = colours[k];
            ctx.beginPath();
            for (let j = starts[k]; j < starts[k + 1]; j++) {
              const p = order[j];
              ctx.rect(sx(f.x[p]) - half, sy(f.y[p]) - half, SIZE, SIZE);
            }
            ctx.fill();
          }
        }
        ctx.globalAlpha = 1;
      }
      const night = dark(paper);
      label(fig, f.text, night ? paper : "#ffffff", night ? "#e8e8e8" : "#333333", 0.75);
    },
    density(fig, f) {
      const L = window.flowscope_layer(fig, "under");
      if (L !== null) {
        const {ctx, w, h, sx, sy, kx, ky} = L;
        const paper = fig.background_fill_color;
        ctx.fillStyle = typeof paper === "string" ? paper : "#000004";
        ctx.fillRect(0, 0, w, h);
        if (f.codes !== null && f.w > 0 && f.h > 0) {
          let off = window.flowscope_heat_canvas;
          if (off === undefined) { off = window.flowscope_heat_canvas = document.createElement("canvas"); }
          if (off.width !== f.w || off.height !== f.h) { off.width = f.w; off.height = f.h; }
          const octx = off.getContext("2d");
          let img = off.__image;  // one pixel buffer, reused every frame (views share it in turn)
          if (img === undefined || img.width !== f.w || img.height !== f.h) {
            img = off.__image = octx.createImageData(f.w, f.h);
          }
          const lut = lut_of(f.palette), px = img.data;
          for (let row = 0; row < f.h; row++) {  // row 0 is the bottom (y = extent's y)
            const src = row * f.w, dst = (f.h - 1 - row) * f.w;
            for (let col = 0; col < f.w; col++) {
              const c = 4 * f.codes[src + col], o = 4 * (dst + col);
              px[o] = lut[c]; px[o + 1] = lut[c + 1]; px[o + 2] = lut[c + 2]; px[o + 3] = 255;
            }
          }
          octx.putImageData(img, 0, 0);
          const [x, y, dw, dh] = f.extent;
          ctx.imageSmoothingEnabled = false;
          ctx.drawImage(off, sx(x), sy(y + dh), dw * kx, dh * ky);
        }
      }
      if (f.light) { label(fig, f.text, "#ffffff", "#333333", 0.75); }
      else { label(fig, f.text, "#000004", "#ffffff", 0.6); }
    },
  };
}

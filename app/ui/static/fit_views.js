// Sizes both views' plotting frames to the window: square and equal (one data unit is the same
// length on screen in x and y, left and right), `largest` pixels where they fit, down to
// `smallest`. Runs when the page is ready and on every resize of the window. Without it, Bokeh
// kept the frames' height but squeezed their width in a narrow window (circles became
// ellipses), and the page still scrolled sideways. Inputs (CustomJS args):
//   figs      [particle figure, density figure]
//   largest, smallest   bounds of a frame's side, in pixels
// In presenter mode (window.flowscope_present, set by presenter.py's toggle) the views fill the
// window instead: as large as both fit side by side and, with the player under them, in its
// height, up to PRESENT_LARGEST; window.flowscope_fit() sizes them again (the toggle calls it).
const MARGIN = 12;
const PRESENT_LARGEST = 1400;
const BELOW = 130;  // under the frames in presenter mode: the player, the readout, the legend
const view_of = (fig) => {
  for (const root of Bokeh.index.roots) {
    const view = root.owner.find_one(fig);
    if (view !== null && view !== undefined) { return view; }
  }
  return undefined;
};
let waits = 0;
// The density view may not be laid out (compare mode's overlaid layout shows the particles
// beside the difference): the particle view alone then measures what the two need.
const COLOUR_BAR = 70;  // what the density view needs beside its frame more than the particles'
const laid_out = (v) => v !== undefined && v.frame.bbox.width > 0;
const fit = () => {
  const views = figs.map(view_of);
  if (!laid_out(views[0])) {
    if (waits++ < 300) { requestAnimationFrame(fit); }  // not laid out yet: next frame
    return;
  }
  const left = views[0].el.getBoundingClientRect().left + window.scrollX;
  // what the views need beside their frames: axes, the colour bar, the gap between them
  let beside;
  if (laid_out(views[1])) {
    const right = views[1].el.getBoundingClientRect().right + window.scrollX;
    beside = right - left - views[0].frame.bbox.width - views[1].frame.bbox.width;
  } else {
    const own = views[0].el.getBoundingClientRect().width - views[0].frame.bbox.width;
    beside = 2 * own + COLOUR_BAR;
  }
  const room = document.documentElement.clientWidth - left - MARGIN;
  let side = Math.min(largest, Math.floor((room - beside) / 2));
  if (window.flowscope_present) {
    const box = views[0].el.getBoundingClientRect(), frame = views[0].frame.bbox;
    const above = box.top + window.scrollY + frame.top, under = box.height - frame.bottom;
    const tall = Math.floor(window.innerHeight - above - under - BELOW);
    side = Math.min(PRESENT_LARGEST, Math.floor((room - beside) / 2), tall);
  }
  side = Math.max(smallest, side);
  for (const fig of figs) {
    if (fig.frame_width !== side || fig.frame_height !== side) {
      fig.frame_width = side;
      fig.frame_height = side;
    }
  }
};
window.flowscope_fit = () => { waits = 0; requestAnimationFrame(fit); };
requestAnimationFrame(fit);  // once the page is laid out
window.addEventListener("resize", () => requestAnimationFrame(fit));

// The stroke just drawn (or the point tapped) becomes the server's: `committed` carries it,
// and the tool's own copy is cleared. Args: tool, strokes, committed.
if (!tool.active) { return; }
let xs = null, ys = null;
if (cb_obj.event_name === 'tap') { xs = [cb_obj.x]; ys = [cb_obj.y]; }
else {
  const n = strokes.data.xs.length;
  if (!n) { return; }
  xs = Array.from(strokes.data.xs[n - 1]); ys = Array.from(strokes.data.ys[n - 1]);
}
committed.data = {xs: [xs], ys: [ys]};
// after the tool's own pan-end handler, which would put the stroke back
setTimeout(() => { strokes.data = {xs: [], ys: []}; }, 0);

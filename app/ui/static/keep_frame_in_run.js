// A shorter run (fewer steps) arrived: keep the browser-owned frame within it.
if (cb_obj.value > cb_obj.end) { cb_obj.value = cb_obj.end; }
// Under "stop at the end", a player that stopped at the end of the run before (the page's
// two-frame placeholder, at first load) plays the new run once, from its start: it stood
// at frame 1 of the first run, its slider drawn at the end.
const before = cb_obj._flowscope_end === undefined ? 1 : cb_obj._flowscope_end;
cb_obj._flowscope_end = cb_obj.end;
if (cb_obj.loop_policy === "once" && cb_obj.direction === 0 && cb_obj.value === before &&
    cb_obj.end > before) {
  cb_obj.value = 0;
  cb_obj.direction = 1;
}

// While a newer run computes, the player holds still: drawing frames of the old run kept the
// browser's main thread so busy that the new run's ~1.5 MB took ~250 ms longer to arrive
// (measured while playing). A playing player holds its step too (hold_step.js), so the new run
// lands, and plays on, at the frame the server sent ahead. Args: status.
if (status.data.busy[0]) {
  const held = cb_obj.__flowscope_held;  // the player's (undefined for run B's timeline)
  if (held !== undefined && cb_obj.value !== Math.min(held, cb_obj.end)) {
    cb_obj.value = Math.min(held, cb_obj.end);
  }
  return;
}

// A shorter run (fewer steps) arrived: keep the browser-owned frame within it.
if (cb_obj.value > cb_obj.end) { cb_obj.value = cb_obj.end; }

// Before a redraw on a click: the particle selected (or none) is the one highlighted.
const sel = particles.selected.indices;
picked_index.data.index[0] = sel.length ? sel[0] : -1;

// Before a redraw on hover: the particle under the pointer (or none) is the one outlined.
const idx = cb_data.index.indices;
hovered_index.data.index[0] = idx.length ? idx[0] : -1;

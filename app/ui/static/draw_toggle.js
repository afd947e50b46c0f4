// The sidebar's "draw" toggle switches the draw tool (tool.active lives in the page only).
tool.active = cb_obj.active;

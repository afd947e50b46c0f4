// Once the page has loaded (DataPanel.on_page_ready). Args: tool.
// - Bokeh calls a pointer held still for 300 ms a "press" and ignores the moves that follow
//   it, so a stroke begun after a short pause was silently lost. Nothing here uses press
//   gestures (a held click becomes a tap), so the page does not wait for one: 1e9 ms, under
//   setTimeout's 2^31 ms cap (beyond it, it would fire at once). Bokeh internals: if they
//   move, drawing works as before.
// - The draw tool switched on or off in the toolbar (the pan tool takes the drag back) shows
//   in the sidebar's toggle, which otherwise switches the tool (tool.active, JS only).
try { Bokeh.require("core/ui_gestures").UIGestures.press_threshold = 1e9; }
catch (e) { /* another Bokeh: keep its gestures */ }
const toggle = [...tool.document.all_models].find(
  (m) => m.css_classes !== undefined && m.css_classes.includes("flowscope-draw"));
if (toggle !== undefined) {
  tool.connect(tool.properties.active.change, () => {
    if (toggle.active !== tool.active) { toggle.active = tool.active; }
  });
}

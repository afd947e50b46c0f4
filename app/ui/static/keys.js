// The page's keys, installed once when the page is ready (no args):
//   space play / pause      ← → one frame back / on      Home End  first / last frame
//   F fullscreen            [ ] previous / next lesson   1 … 9     speed (SPEEDS)
//   P presenter mode on / off
// Keys typed into a text field, a menu or a slider stay theirs. Everything acts on the page's
// own models, found by their CSS classes: the player runs in the browser (views.py), and a
// change of the speed slider, the lesson menu or the presenter toggle travels to the server as
// if the user had used the control.
if (!window.flowscope_keys) {
  window.flowscope_keys = true;
  const SPEEDS = [1, 2, 5, 10, 15, 25, 35, 50, 60];
  const models = () => [...Bokeh.documents[0].all_models];
  const by_class = (name) => models().find((m) => m.css_classes && m.css_classes.includes(name));
  const player = () => models().find((m) => m.constructor.__name__ === "Player");
  const typing = (event) => {
    const el = event.composedPath()[0];
    if (!el || !el.tagName) return false;
    return ["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName) || el.isContentEditable ||
      el.getAttribute("role") === "slider";
  };
  const seek = (p, value) => {
    p.direction = 0;
    p.value = Math.max(p.start, Math.min(p.end, value));
  };
  const lesson = (step) => {
    const menu = by_class("flowscope-lesson-menu");
    if (!menu) return;
    // the options are [value, label] pairs, the first "explore freely"; value is a value
    const values = menu.options.map((o) => (Array.isArray(o) ? o[0] : o));
    const at = Math.max(0, values.indexOf(menu.value));
    const next = Math.max(1, Math.min(values.length - 1, at + step));
    if (next !== at) menu.value = values[next];
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const p = player();
    const key = event.key;
    if (key === " " && p) p.direction = p.direction === 0 ? 1 : 0;
    else if (key === "ArrowLeft" && p) seek(p, p.value - 1);
    else if (key === "ArrowRight" && p) seek(p, p.value + 1);
    else if (key === "Home" && p) seek(p, p.start);
    else if (key === "End" && p) seek(p, p.end);
    else if (key === "[") lesson(-1);
    else if (key === "]") lesson(1);
    else if (key === "f" || key === "F") {
      if (document.fullscreenElement) document.exitFullscreen();
      else document.documentElement.requestFullscreen().catch(() => {});
    } else if (key === "p" || key === "P") {
      const toggle = by_class("flowscope-present");
      if (toggle) toggle.active = !toggle.active;
    } else if (key >= "1" && key <= "9") {
      const slider = by_class("flowscope-fps");
      if (slider) slider.value = SPEEDS[Number(key) - 1];
    } else return;
    event.preventDefault();  // space must not scroll the page or press a focused button
  });
}

// A click on a checkbox's text toggles it, as on a <label>. Bokeh's Checkbox puts its text in
// a plain <div> beside the box, so only the 13-pixel box took clicks. One listener on the page
// serves every checkbox, also those Bokeh renders anew; the click's target inside a widget's
// shadow root is the first entry of its composed path.
document.addEventListener("click", (event) => {
  const target = event.composedPath()[0];
  if (!(target instanceof HTMLElement) || !target.classList.contains("bk-label")) { return; }
  const box = target.previousElementSibling;
  if (box instanceof HTMLInputElement && box.type === "checkbox") { box.click(); }
});

// A slider's drag leaves the page's style alone. At a drag's start and at its release, Bokeh's
// slider set the body's user-select (none, then "") and noUiSlider its cursor, and each change
// of an inherited property of the body restyled every element of the page (~3,600: 11-12 ms
// at the release in a Chromium trace, while the server computed the run the release asked
// for, on the two cores it shares with the browser). Without them no text is selected during
// a drag all the same (noUiSlider cancels the body's `selectstart` while it drags); the
// pointer keeps the cursor of what it is over.
if (!window.flowscope_steady_body) {
  window.flowscope_steady_body = true;
  const style = document.body.style;
  for (const name of ["userSelect", "webkitUserSelect", "cursor"]) {
    Object.defineProperty(style, name, {configurable: true, get: () => "", set: () => {}});
  }
}

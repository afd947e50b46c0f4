// The pointer moved over the particle view: while it stays there, render.js sends the
// particles' source to Bokeh every frame, so that hovering finds the particle under it.
window.flowscope_pointer_at = performance.now();

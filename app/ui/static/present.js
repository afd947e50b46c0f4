// The presenter toggle changed (its button or the P key): fit_views.js sizes the views for the
// mode, once the page has laid out what folded or unfolded, so a few times as it settles.
window.flowscope_present = cb_obj.active;
window.scrollTo(0, 0);
for (const ms of [60, 300, 900]) {
  setTimeout(() => window.flowscope_fit && window.flowscope_fit(), ms);
}

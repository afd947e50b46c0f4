// While a newer run computes, a playing player holds its step (hold_while_busy.js keeps it
// there) and the server is told which (tell_step.js, run after this): the new run lands, and
// plays on, where the old one stood, with its frame there sent ahead of the rest
// (FlowViews.preview), as for a paused page. Run when the run's status changes. Args: status.
if (window.flowscope_player === undefined) {
  window.flowscope_player = [...Bokeh.documents[0].all_models].find(
    (m) => m.constructor.__name__ === "Player") || null;
}
const player = window.flowscope_player;
if (player === null) { return; }
if (!status.data.busy[0]) {
  player.__flowscope_held = undefined;
} else if (player.direction !== 0 && player.__flowscope_held === undefined) {
  player.__flowscope_held = Math.round(player.value);
}

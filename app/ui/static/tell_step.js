// The server hears the player's step only while the player stands still: paused, or holding
// its step while a newer run computes (hold_step.js); a new run then arrives with that frame
// sent ahead of the rest (FlowViews.preview). −1 while it plays: playing sends nothing.
// Run by the player's value and direction callbacks (player = cb_obj) and by hold_step.js.
// Args: shown_step.
const told = player.__flowscope_held !== undefined ? player.__flowscope_held
  : player.direction === 0 ? Math.round(player.value) : -1;
if (shown_step.data.step[0] !== told) { shown_step.data = {step: [told]}; }

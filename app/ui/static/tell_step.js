// The server hears the player's step only while it is paused (playing sends nothing to it):
// a new run then arrives with that frame sent ahead of the rest (FlowViews.preview). −1 while
// playing. Run by the player's value and direction callbacks. Args: shown_step.
const told = cb_obj.direction === 0 ? Math.round(cb_obj.value) : -1;
if (shown_step.data.step[0] !== told) { shown_step.data = {step: [told]}; }

// The timeline's step `at` moves only in the page (the player writes it, the server never hears
// of it), so a new timeline from the server carries a stale one: put back the player's. Run
// first by everything that reads the step after new data, whatever order their callbacks fire
// in. Without it, turning compare mode on while paused at step 100 drew the runs at step 0.
if (timeline._flowscope_at !== undefined) { timeline.data.at[0] = timeline._flowscope_at; }

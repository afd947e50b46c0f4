// While a newer run computes, the player holds still: drawing frames of the old run kept the
// browser's main thread so busy that the new run's ~1.5 MB took ~250 ms longer to arrive
// (measured while playing). It resumes, on the new run, when that lands. Args: status.
if (status.data.busy[0]) { return; }

// Run B's views and the difference view keep the size of run A's (fit_views.js sizes A's to
// the window). Args: a_fig, figs.
for (const fig of figs) {
  if (fig.frame_width !== a_fig.frame_width || fig.frame_height !== a_fig.frame_height) {
    fig.frame_width = a_fig.frame_width;
    fig.frame_height = a_fig.frame_height;
  }
}

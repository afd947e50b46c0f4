// The exported page's play button: starts or stops the page's one timer; each tick moves the
// slider, whose callback draws. Args: slider, toggle, interval, playing, paused.
if (window.flowscope_timer) {
  clearInterval(window.flowscope_timer);
  window.flowscope_timer = null;
}
if (toggle.active) {
  window.flowscope_timer = setInterval(() => {
    slider.value = slider.value >= slider.end ? slider.start : slider.value + 1;
  }, interval);
}
toggle.label = toggle.active ? playing : paused;

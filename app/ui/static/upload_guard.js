// Refuses an upload over the limit in the page, before the browser reads and sends it: a file
// whose message passes the server's websocket limit (16 MB, a file of ~12 MB once encoded)
// closes the page's connection without a word. The server is told its size and name (`refused`) and
// says so in the notice. Args: refused (a ColumnDataSource), limit (bytes); the upload is the
// FileInput with the css class flowscope-upload.
const upload = [...refused.document.all_models].find(
  (m) => m.css_classes != null && m.css_classes.includes("flowscope-upload"))
function guard() {
  for (const root of Bokeh.index.roots) {
    const view = upload != null ? root.owner.find_one(upload) : null
    if (view == null || view.input_el == null) {
      continue
    }
    if (view.input_el.__flowscope_guarded) {
      return true
    }
    view.input_el.__flowscope_guarded = true
    // capturing, on the input itself: runs before Bokeh's own listener, which reads the file
    view.input_el.addEventListener("change", (event) => {
      const file = event.target.files != null ? event.target.files[0] : null
      if (file != null && file.size > limit) {
        event.stopImmediatePropagation()
        event.target.value = ""
        refused.data = {size: [file.size], name: [file.name]}
      }
    }, true)
    return true
  }
  return false
}
// the sidebar may be drawn after the document is ready: look again until it is there
const again = setInterval(() => { if (guard()) { clearInterval(again) } }, 250)
guard()

"""Where does this point come from: hovering either view shows p(c | x_t), the posterior over
the data set's classes at the frame on screen (docs/MATH.md §12).

The posterior of a Gaussian mixture is a closed form that needs only the components, their
labels and a(t), c²(t) = a² σ_d² + b² of each frame: the server sends those once per run, and
``static/posterior.js`` evaluates it in the browser at every mouse move (M ≤ 1,152 components:
well under a millisecond), so the readout follows the player without a round trip.
"""

from __future__ import annotations

import numpy as np
import torch
from bokeh.models import CustomJS, HoverTool

from app.ui import client
from models.guidance import class_names
from models.run.simulate import build

# one row: a, c2 (F,) and names (K,) are each one cell (a source's columns have one length)
NO_MIXTURE = {"a": [[]], "c2": [[]], "names": [[]], "on": [False]}


def mixture_data(result) -> tuple[dict, dict]:
    """({x, y, label} of the run's components, one row {a, c2, names, on}) for
    ``posterior.js``; off
    for runs with one class or from a data set as the source (no Gaussian noise end)."""
    config = result.config
    if config.source != "gaussian" or result.n_labels < 2:
        return {"x": [], "y": [], "label": []}, NO_MIXTURE
    path, data, exact = build(config, result.dataset)
    ref = exact.reference
    coef = path.coefficients(torch.from_numpy(np.asarray(result.times, np.float64)))
    c2 = coef.a**2 * ref.sigma**2 + coef.b**2
    pts = ref.points.double().numpy()
    mix = {"x": pts[:, 0].tolist(), "y": pts[:, 1].tolist(), "label": ref.labels.tolist()}
    present = set(ref.labels.tolist())  # a label without components: "" (posterior.js skips)
    names = [n if k in present else "" for k, n in enumerate(class_names(data))]
    names = names[: int(ref.labels.max()) + 1]
    return mix, {"a": [coef.a.tolist()], "c2": [c2.tolist()], "names": [names], "on": [True]}


class PosteriorHover:
    """The hover readout of one pair of views (run A's, or run B's in compare mode)."""

    def __init__(self, views):
        self.views, state = views, views.state
        self.mix = views._source({"x": [], "y": [], "label": []}, "posterior_mixture")
        self.meta = views._source(dict(NO_MIXTURE), "posterior_meta")
        self.readout = views._source({"x": [0], "y": [0], "text": [""]}, "posterior_readout")
        fig = views.density_fig
        fig.text(x="x", y="y", text="text", source=self.readout, text_font_size="11px",
                 text_baseline="bottom", text_line_height=1.25, text_color="#ffffff",
                 level="overlay", background_fill_color="#000004",
                 background_fill_alpha=0.7)  # fmt: skip
        code = CustomJS(args=dict(mix=self.mix, meta=self.meta, cursor=views.cursor,
                                  gstore=views.gstore, readout=self.readout,
                                  xr=fig.x_range, yr=fig.y_range),
                        code=client.script("posterior"))  # fmt: skip
        # the whole box of either view answers (the particle view through a transparent quad)
        box = views.particle_fig.quad(left=-1e4, right=1e4, bottom=-1e4, top=1e4,
                                      fill_alpha=0, line_alpha=0, level="underlay")  # fmt: skip
        views.particle_fig.add_tools(HoverTool(renderers=[box], tooltips=None, callback=code))
        fig.add_tools(HoverTool(renderers=[views.image], tooltips=None, callback=code))
        state.param.watch(self._push, ["result", "posterior"])
        self._push()

    def _push(self, *_events) -> None:
        result, state = self.views.state.result, self.views.state
        if result is None or not state.posterior:
            self.meta.data = dict(NO_MIXTURE)
            self.readout.data = {"x": [0], "y": [0], "text": [""]}
            return
        mix, meta = mixture_data(result)
        if mix["label"] != self.mix.data["label"] or mix["x"] != self.mix.data["x"]:
            self.mix.data = mix
        self.meta.data = meta

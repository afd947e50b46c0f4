"""The caption strip under the views: t, the frame, and the settings of the run."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models.run.result import RunResult

PROCESS = {"fm": "flow matching", "vp": "diffusion (VP)", "subvp": "sub-VP diffusion",
           "ve": "VE diffusion", "edm": "EDM", "trig": "trigonometric path"}  # fmt: skip
SOURCE = {
    "particles": "from particles",
    "exact": "exact p_t",
    "pde": "PDE on the grid",
    "posterior": "p(class | x_t)",
}
INK = (51, 51, 51)


def path_parts(c) -> list[str]:
    """The settings of the run's path beyond its process name, as caption parts."""
    if c.process in ("vp", "subvp"):
        if c.schedule == "linear":
            return [f"linear β {c.beta_min:g}..{c.beta_max:g}"]
        if c.schedule == "shifted-cosine":
            return [f"shifted cosine, shift {c.shift:g}"]
        return [f"{c.schedule} schedule" if c.schedule != "points" else "drawn schedule"]
    if c.process in ("ve", "edm"):
        from models.run.simulate import path_of  # the process's own defaults where None

        path = path_of(c)
        return [f"σ {path.sigma_min:g}..{path.sigma_max:g}"]
    if c.process == "fm" and c.source != "gaussian":
        return [f"from {c.source}"]
    return []


def settings_text(result: RunResult) -> str:
    """One line naming every setting that shaped the run."""
    c = result.config
    kind = c.kind if c.kind != "sde" else f"sde η={c.noise_level:g}"
    parts = [
        PROCESS.get(c.process, c.process), c.dataset, c.direction, kind,
        c.solver_used if c.time_grid == "uniform" else f"{c.solver_used} ({c.time_grid} grid)",
        f"T={c.steps}", f"NFE {result.nfe:g}", f"N={c.particles}", f"seed {c.seed}",
    ]  # fmt: skip
    parts.extend(path_parts(c))
    if result.source.kind != "exact":  # a learned run looks like an exact one
        parts.append(f"{result.source.kind} field")
    if result.reference_errors is not None:
        parts.append(f"error vs reference {result.reference_errors[-1]:.2g}")
    if c.guided:
        from models.run.guided import describe

        parts.append(describe(c))
    return " · ".join(str(p) for p in parts)


def pde_readout(result: RunResult) -> tuple[np.ndarray, np.ndarray] | None:
    """Per frame, the total variation between the particles' density and the PDE's, and the
    PDE's mass inside the box, as the page reads them out (None for a run without a PDE)."""
    if result.pde_density is None:
        return None
    from app.ui.frames import total_variation

    x0, x1, y0, y1 = result.extent
    cell = (x1 - x0) * (y1 - y0) / result.density[0].size
    return total_variation(result.density, result.pde_density, cell), result.pde_mass


class Caption:
    """Draws the strip of frame i; two lines of text in a font scaled to the view size."""

    def __init__(self, result: RunResult, size: int, density_source: str):
        self.times = result.times
        self.last = len(result.times) - 1
        self.source = SOURCE.get(density_source, density_source)
        if density_source == "exact" and result.config.guidance_class is not None:
            self.source = "tilted target p_w"  # what a guided run's "exact" frames are
        self.settings = settings_text(result)
        # the page's readout under a PDE heatmap: how far the two views agree, mass in the box
        self.pde = pde_readout(result) if density_source == "pde" else None
        px = max(10, round(size / 32))
        self.font = ImageFont.load_default(size=px)
        self.line = px + px // 3
        self.margin = max(3, px // 3)
        height = 2 * self.line + 2 * self.margin
        # the frame's height, size + height, must be even for H.264 (yuv420p)
        self.height = height + (size + height) % 2

    def draw_fixed(self, strip: np.ndarray) -> None:
        """Write the settings line (the same in every frame) into ``strip`` (C, W, 3), in place."""
        self._write(strip[self.line :], self.settings)

    def draw(self, strip: np.ndarray, i: int, peak: float) -> None:
        """Write the line of frame i (t, frame, peak) into ``strip`` (C, W, 3), in place."""
        self._write(strip[: self.line + self.margin], self.top_line(i, peak))

    def top_line(self, i: int, peak: float) -> str:
        """Frame i's line: t, the frame, the density's peak (and the PDE's readout)."""
        text = (f"t = {self.times[i]:.3f}   frame {i}/{self.last}   "
                f"density {self.source}, peak {peak:.3g}")  # fmt: skip
        if self.pde is not None:
            tv, mass = self.pde
            text += f"   TV(particles, PDE) {tv[i]:.3f}   mass in box {mass[i]:.4f}"
        return text

    def _write(self, band: np.ndarray, text: str) -> None:
        image = Image.fromarray(band)
        ImageDraw.Draw(image).text((self.margin, self.margin), text, fill=INK, font=self.font)
        band[...] = np.asarray(image)

"""Refusing a run that is not finite: its first bad frame, that frame's t and the settings.

A NaN anywhere in a run ruins every frame the app draws from it, so a run is checked before it
is kept; a refused run is never shown or written.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from models.run.config import RunConfig


class NonFiniteRun(ValueError):
    """A run produced a NaN or infinite value; it is refused, never shown or written.

    Attributes:
        what: which array went bad (``positions``, ``density``, ``exact density``).
        frame: index of its first bad frame; t: that frame's time.
    """

    exit_code = 1  # the command line's exit status: the settings were valid, the run was not

    def __init__(self, what: str, frame: int, t: float, config: RunConfig):
        self.what, self.frame, self.t = what, frame, t
        super().__init__(
            f"non-finite {what} from frame {frame} (t = {t:.4g}) on, with "
            f"{describe(config)}; nothing was kept from this run"
        )


def describe(config: RunConfig) -> str:
    """The settings that shape a run's numerics, in one short phrase."""
    parts = [f"process {config.process}"]
    if config.process == "vp":
        parts.append(f"schedule {config.schedule} (beta {config.beta_min}..{config.beta_max})")
    parts += [
        f"dataset {config.dataset}", f"{config.direction} {config.kind}",
        f"eta {config.noise_level:g}", f"solver {config.solver}", f"{config.steps} steps",
    ]  # fmt: skip
    return ", ".join(parts)


def first_bad_frame(frames: torch.Tensor) -> int | None:
    """Index of the first frame of (F, ...) with a NaN or infinite entry, or None."""
    # a sum is finite iff every entry is (barring overflow, which the full check then clears):
    # ~20 µs for a default run's frames, against ~1 ms for the full check
    if math.isfinite(float(frames.sum())):
        return None
    bad = ~torch.isfinite(frames.reshape(len(frames), -1)).all(1)
    return int(bad.nonzero()[0]) if bool(bad.any()) else None


def check_finite(what: str, frames, times, config: RunConfig) -> None:
    """Raise :class:`NonFiniteRun` naming the first bad frame of (F, ...) ``frames``."""
    frames = torch.as_tensor(frames)
    bad = first_bad_frame(frames)
    if bad is not None:
        raise NonFiniteRun(what, bad, float(times[bad]), config)

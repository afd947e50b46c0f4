"""The numbers behind an animation: .npz in the ``flowscope sample`` format, and CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.run.result import RunResult

CSV_HEADER = "frame,t,particle,x,y,label"


def npz_arrays(result: RunResult) -> dict[str, np.ndarray]:
    """The arrays ``flowscope sample`` writes: trajectories (T+1, N, 2), times (T+1,),
    labels (N,), density (T+1, H, W), exact_density (T+1, H, W) when the run has it,
    extent (4,), meta (the settings as a JSON string); pde_density (T+1, H, W), pde_mass,
    pde_outflow (T+1,), log_density (T+1, N), reference (T+1, N, 2) and reference_errors
    (T+1,) when the run computed them."""
    arrays = {
        "trajectories": result.trajectories,
        "times": result.times,
        "labels": result.labels,
        "density": result.density,
        "extent": np.asarray(result.extent, dtype=np.float64),
        "meta": np.asarray(result.meta),
    }
    if result.exact_density is not None:
        arrays["exact_density"] = result.exact_density
    if result.posterior_map is not None:  # p(c | x_t) of class posterior_class
        arrays["posterior_map"] = result.posterior_map
    extras = ("pde_density", "pde_mass", "pde_outflow", "log_density", "reference",
              "reference_errors")  # --pde, --log-density, --reference  # fmt: skip
    for name in extras:
        if getattr(result, name, None) is not None:
            arrays[name] = getattr(result, name)
    return arrays


def write_npz(result: RunResult, path: Path, progress=None) -> None:
    """Compressed .npz of :func:`npz_arrays` (written through a file object: ``np.savez``
    appends '.npz' to a name without it)."""
    with open(path, "wb") as f:
        np.savez_compressed(f, **npz_arrays(result))
    if progress is not None:
        progress(1, 1)


def write_csv(result: RunResult, path: Path, progress=None) -> None:
    """One row per particle and frame, frame-major: frame,t,particle,x,y,label.

    Positions keep float32's 9 significant digits and t float64's 17: both read back exactly.
    """
    n_frames = len(result.times)
    with open(path, "w", newline="") as f:
        f.write(CSV_HEADER + "\n")
        for i in range(n_frames):
            write_frame(f, result, i)
            if progress is not None:
                progress(i + 1, n_frames)


def write_frame(f, result: RunResult, i: int) -> None:
    """The CSV rows of frame i, to the text file ``f``."""
    traj, n = result.trajectories, result.trajectories.shape[1]
    block = np.column_stack([np.full(n, i), np.full(n, result.times[i]), np.arange(n),
                             traj[i, :, 0], traj[i, :, 1], result.labels])  # fmt: skip
    np.savetxt(f, block, fmt=["%d", "%.17g", "%d", "%.9g", "%.9g", "%d"], delimiter=",")

"""Compile every numba kernel into numba's on-disk cache, once, at set-up.

``bash .ci/setup`` runs ``python -m models.accel.compile``: numba then writes the compiled
kernels beside their sources (``__pycache__``), and the first ``flowscope serve`` of a fresh
clone loads them (~0.5 s) instead of compiling them while its first page waits (~4 s on the
2-core machine of docs/PERFORMANCE.md). Running it again costs only the loading.
"""

from __future__ import annotations

import time


def compile_all() -> float:
    """Compile (or load) the exact field's and the PDE's kernels; returns the seconds taken."""
    from models.accel import mixture_kernel, pde_kernels

    started = time.perf_counter()
    mixture_kernel.warm_up()
    pde_kernels.warm_up()
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"flowscope: compiled kernels cached ({compile_all():.1f} s)")

"""How far guided samples land from the tilted target p_w ∝ p(x|c)^w p(x)^(1−w) (docs/MATH.md §12).

For w = 1, 2, 4, 8 on the 8 gaussians and the moons, with the exact field and the shipped
class-conditional network (classifier-free guidance, flow matching, Heun, 100 steps, 4000
particles): the share of samples in the class and their SW2 to samples of p_w over the noise
floor of p_w's own samples (``models.run.guided.with_guidance``). At w = 1 the ratio is ~1 (the
conditional is sampled); above it the gap is the lesson: guidance does not sample p_w.

    .venv/bin/python benchmarks/bench_guidance.py [--particles N]
"""

from __future__ import annotations

import argparse
import time

from models.learned.checkpoint import load, pretrained_path
from models.run.config import RunConfig
from models.run.guided import with_guidance
from models.run.result import FieldSource
from models.run.simulate import simulate

WEIGHTS = (1.0, 2.0, 4.0, 8.0)
CASES = (("8gaussians", 2), ("moons", 1))


def learned_source(dataset: str) -> FieldSource:
    """The shipped class-conditional network of the data set (flow matching)."""
    learned, _, _ = load(pretrained_path(dataset, "fm", conditional=True))

    def make(path, exact):
        learned.labeler = exact
        return learned

    return FieldSource("pretrained", make=make)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=4000)
    args = parser.parse_args()
    print(f"{'data set':<11}{'class':>6}{'field':>9}{'w':>5}{'in class':>10}"
          f"{'SW2/floor vs p_w':>18}{'seconds':>9}")  # fmt: skip
    for dataset, label in CASES:
        for field in ("exact", "learned"):
            for w in WEIGHTS:
                config = RunConfig(dataset=dataset, guidance_class=label, guidance=w,
                                   solver="heun", particles=args.particles,
                                   exact_density=False)  # fmt: skip
                source = learned_source(dataset) if field == "learned" else None
                start = time.perf_counter()
                result = with_guidance(simulate(config, source=source))
                seconds = time.perf_counter() - start
                print(f"{dataset:<11}{label:>6}{field:>9}{w:>5g}{result.guidance_share:>10.1%}"
                      f"{result.guidance_gap:>18.2f}{seconds:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

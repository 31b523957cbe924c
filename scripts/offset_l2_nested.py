"""Choose the per-(model, source) offset penalty (`TrainConfig.offset_l2`) without any held-out
source's outcomes (issue 13): nested leave-two-sources-out.

    python scripts/offset_l2_nested.py [--values 0.01,100] [--data ../shared/data] [--out out/off13]

For every two sources A and B, a router is trained on the other three (records sharing a prompt or
question with A or B removed: `transfer_cache.inner_splits`) per candidate value, and scored on A and
on B. For outer held-out source S, the nested sets are S>T for every other source T: T whole and each
of T's tasks, each with its own strong/weak pair (`transfer_hedge.nested_sets`). The value with the
highest mean nested APGR (the smaller on ties) is S's choice: S's outcomes train nothing and choose
nothing. Fits are cached under OUT/inner_<value>.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transfer_recipe import recipe_config, recipe_trainer

from llmroute.learn import blas, transfer_cache
from llmroute.learn.sources import link_contained_questions, load_sources
from llmroute.learn.train import TrainConfig
from llmroute.learn.transfer_hedge import nested_sets

REPO = Path(__file__).resolve().parent.parent


def nested_means(folder: Path, sources: Sequence[str]) -> dict[str, float]:
    """Per outer source, the mean APGR over its nested sets cached under `folder`."""
    inner = [transfer_cache.load(p) for p in sorted(folder.glob("inner__*.npz"))]
    return {outer: float(np.mean([ps.apgr(ps.router) for ps in nested_sets(inner, outer)]))
            for outer in sources}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "off13")
    parser.add_argument("--values", default=f"{TrainConfig.offset_l2:g},100")
    args = parser.parse_args()
    values = [float(v) for v in args.values.split(",")]
    sources = link_contained_questions(load_sources(args.data))
    splits = transfer_cache.inner_splits(sources)
    means: dict[float, dict[str, float]] = {}
    for value in values:
        config = recipe_config(1.0, 1.0, TrainConfig.dense_l2, None, value)

        def log(line: str, value: float = value) -> None:
            print(f"offset_l2 {value:g}: {line}", file=sys.stderr, flush=True)

        folder = args.out / f"inner_{value:g}"
        transfer_cache.run(splits, folder, recipe_trainer(config), log=log)
        means[value] = nested_means(folder, [name for name, recs in sources.items() if recs])
    print("| outer held-out source | " + " | ".join(f"offset_l2 {v:g}" for v in values) + " | chosen |")
    print("|---|" + "--:|" * len(values) + "---|")
    for outer in sorted(means[values[0]]):
        best = max(values, key=lambda v: (means[v][outer], -v))
        print(f"| {outer} | " + " | ".join(f"{means[v][outer]:.4f}" for v in values) + f" | {best:g} |")


if __name__ == "__main__":
    blas.pin()  # the same fits on any x86-64 machine (learn/blas.py)
    main()

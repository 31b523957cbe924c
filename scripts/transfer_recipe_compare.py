"""Is a recipe's transfer significantly worse than the bundled recipe's? A paired bootstrap (issue 13).

    python scripts/transfer_recipe_compare.py --recipe bundled=1/1/30/- --recipe cand=1/0.5/30/3000
        [--data ../shared/data] [--out out/transfer-recipes] [--only zeroeval,mmlu-pro,...]
        [--tasks-of routerbench] [--resamples 1000] [--seed 0]

A recipe is NAME=W/O/D/V2[/OFF[/SERVED]]: RouterBench's weight, the other sources' weight, `dense_l2`,
the L2 on the version-2 features only (`-`: the same as `dense_l2`), as `build_router_artifact.py` takes
them, optionally `offset_l2` (the L2 on the per-(model, source) bias offsets) and the L2 the biases and
offsets are refitted at afterwards (`TrainConfig.served_offset_l2`; `-`: no refit), each by default
`TrainConfig`'s (since session 20: 100 and 0.01; before, 0.01 and no refit, `.../0.01/-`). The
first recipe is the base. Each recipe's leave-one-source-out splits (`transfer.loso_splits`, the same
honest training sets as `transfer`; each held-out source never trained on), plus the leave-one-task-out
splits of the sources named in --tasks-of, are trained and scored once (`transfer_cache.run`, cached
under OUT/NAME). Per held-out set (the whole source and each of its tasks, each with its pair chosen as
`transfer_hedge` does), APGR(recipe) − APGR(base) with a paired bootstrap (`bootstrap`: the same prompt
resample for both routers, 90% percentile interval). The mean over the whole held-out sources gets one
interval too: each source resampled on its own, the per-resample differences averaged across sources.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from transfer_recipe import parse_offsets, recipe_config, recipe_trainer

from llmroute.learn import blas, transfer_cache
from llmroute.learn.bootstrap import Difference, apgr_weighted, paired_difference, resample_counts
from llmroute.learn.sources import link_contained_questions, load_sources
from llmroute.learn.transfer import loso_splits, loto_splits
from llmroute.learn.transfer_hedge import PairSet, sets_by_task

REPO = Path(__file__).resolve().parent.parent


Recipe = tuple[float, float, float, float | None, float, float | None]


def parse_recipe(text: str) -> tuple[str, Recipe]:
    """NAME=W/O/D/V2[/OFF[/SERVED]] -> (NAME, (W, O, D, V2 or None, OFF, SERVED or None)), OFF and
    SERVED by default TrainConfig's."""
    name, _, spec = text.partition("=")
    w, o, d, v2, *off = spec.split("/")
    offset, served = parse_offsets(off)
    return name, (float(w), float(o), float(d), None if v2 == "-" else float(v2), offset, served)


def pair_sets(folder: Path) -> dict[str, PairSet]:
    """Every held-out set with a pair in the cached outer splits under `folder`, by name."""
    out: dict[str, PairSet] = {}
    for path in sorted(folder.glob("outer__*.npz")):
        for ps in sets_by_task(transfer_cache.load(path)):
            out[ps.name] = ps
    return out


def mean_difference(pairs: Sequence[tuple[PairSet, PairSet]], resamples: int, seed: int) -> Difference:
    """Mean over sets of APGR(recipe) − APGR(base), each set resampled on its own (paired within it)."""
    full, boot = [], []
    for k, (base, cand) in enumerate(pairs):
        n = len(base.q_strong)
        ones = np.ones((1, n), dtype=np.int64)
        full.append(apgr_weighted(cand.router, cand.q_strong, cand.q_weak, ones)[0]
                    - apgr_weighted(base.router, base.q_strong, base.q_weak, ones)[0])
        counts = resample_counts(n, resamples, seed + k)
        boot.append(apgr_weighted(cand.router, cand.q_strong, cand.q_weak, counts)
                    - apgr_weighted(base.router, base.q_strong, base.q_weak, counts))
    diffs = np.nanmean(np.vstack(boot), axis=0)
    low, high = np.percentile(diffs, [5.0, 95.0])
    return Difference(float(np.mean(full)), float(low), float(high), len(diffs))


def main() -> None:
    """Train and cache each recipe's splits, then compare every recipe with the first."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "out" / "transfer-recipes")
    parser.add_argument("--recipe", action="append", required=True, help="NAME=W/O/D/V2 (first: the base)")
    parser.add_argument("--only", default="zeroeval,mmlu-pro,llmrouter,routeprofile",
                        help="held-out sources (leave-one-source-out)")
    parser.add_argument("--tasks-of", default="", help="sources whose leave-one-task-out splits to add")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-train", action="store_true", help="only compare what is cached")
    args = parser.parse_args()
    recipes = [parse_recipe(r) for r in args.recipe]
    sources = link_contained_questions(load_sources(args.data))
    only = {s for s in args.only.split(",") if s}
    tasks_of = {s for s in args.tasks_of.split(",") if s}
    splits = [s for s in loso_splits(sources) if s.source in only] + \
        [s for s in loto_splits(sources) if s.source in tasks_of]
    if not args.no_train:
        for name, (w, o, dense, v2, offset, served) in recipes:
            config = recipe_config(w, o, dense, v2, offset, served)

            def log(line: str, name: str = name) -> None:
                print(f"{name}: {line}", file=sys.stderr, flush=True)

            transfer_cache.run(splits, args.out / name, recipe_trainer(config), log=log)
    (base_name, _), *others = recipes
    base = pair_sets(args.out / base_name)
    whole = [s.name for s in splits if s.kind == "source"]
    for name, _ in others:
        cand = pair_sets(args.out / name)
        print(f"\n{name} − {base_name} (paired bootstrap, {args.resamples} resamples, 90% interval)")
        print(f"| held out | pair | n | {base_name} | {name} | difference, 90% CI | verdict |")
        print("|---|---|---|---|---|---|---|")
        matched = []
        for set_name in sorted(base):
            if set_name not in cand:
                continue
            b, c = base[set_name], cand[set_name]
            if b.pair != c.pair or len(b.q_strong) != len(c.q_strong):
                print(f"| {set_name} | pairs differ: {b.pair} vs {c.pair} | | | | | |")
                continue
            d = paired_difference(c.router, b.router, c.q_strong, c.q_weak, args.resamples, seed=args.seed)
            print(f"| {set_name} | {b.pair.strong} / {b.pair.weak} | {len(b.q_strong)} | "
                  f"{b.apgr(b.router):.3f} | {c.apgr(c.router):.3f} | {d.diff:+.3f} "
                  f"[{d.low:+.3f}, {d.high:+.3f}] | {d.verdict} |")
            if set_name in whole:
                matched.append((b, c))
        m = mean_difference(matched, args.resamples, args.seed)
        print(f"\nmean over {len(matched)} held-out sources: {base_name} "
              f"{np.mean([b.apgr(b.router) for b, _ in matched]):.3f}, {name} "
              f"{np.mean([c.apgr(c.router) for _, c in matched]):.3f}, difference {m.diff:+.3f} "
              f"[{m.low:+.3f}, {m.high:+.3f}]: {m.verdict}")


if __name__ == "__main__":
    blas.pin()  # the same fits on any x86-64 machine (learn/blas.py)
    main()

"""Choose the bundled artifact's recipe by out-of-fold evaluation on RouterBench *train* (issue 13).

    python scripts/select_artifact_recipe.py [--data ../shared/data] [--folds 2] [--seed 0]
        [--weights 1,3,10] [--ranks 16] [--dense-l2 30] [--test] [--json out/recipe.json]

RouterBench train is split by prompt into `--folds` folds (seeded); for every candidate recipe (a
weight on RouterBench's outcomes in the joint loss, `TrainConfig.source_weights`, a rank, and the
L2 strength on the structural features, `TrainConfig.dense_l2`) each
fold is predicted by a joint model trained on the other folds plus every other source
(`build_router_artifact.training_records`: RouterBench test already removed, and here also the other
sources' records that share a prompt or question with the held-out fold). The score of a fold is the
artifact's own check (`build_router_artifact.test_metrics`): quality at 15% of gpt-4's cost on the
hull and the cost for 95% of its quality. RouterBench test is never read for the choice: the script
prints the recipe with the best mean quality at 15% (ties: lower cost for 95%), and `--test` then
measures only that recipe once on RouterBench test, trained on all of RouterBench train.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_router_artifact import (
    TEST_FILE,
    test_metrics,
    tiers_by_cost,
    training_records,
    with_other_spellings,
)

from llmroute.learn.data import OutcomeTable, load_records
from llmroute.learn.features import HashingFeaturizer
from llmroute.learn.model import RouterModel
from llmroute.learn.sources import ALIASES, SOURCE_FILES, SourcedRecord
from llmroute.learn.train import TrainConfig, fit_router
from llmroute.learn.transfer import honest_train

REPO = Path(__file__).resolve().parent.parent
TARGET = "routerbench"


@dataclass(frozen=True)
class Recipe:
    """One candidate: the weight of RouterBench's outcomes, the number of latent skills and the
    extra L2 strength on the structural (dense) features' abilities (higher: lean on them less)."""

    weight: float
    rank: int
    dense_l2: float = TrainConfig.dense_l2

    def config(self, table: OutcomeTable) -> TrainConfig:
        """The training config of this recipe for `table`."""
        weights = {TARGET: self.weight} if self.weight != 1.0 else {}
        return TrainConfig(rank=self.rank, dense_l2=self.dense_l2, tiers=tiers_by_cost(table),
                           source_weights=weights)

    def label(self) -> str:
        """Short name for tables."""
        return f"weight {self.weight:g}, rank {self.rank}, dense_l2 {self.dense_l2:g}"


def fit(recipe: Recipe, train: list[SourcedRecord]) -> RouterModel:
    """The joint model of `recipe` on `train`, with every tied model's other spellings."""
    table = OutcomeTable.of([r.record for r in train])
    model = fit_router(table, recipe.config(table), HashingFeaturizer(), [r.source for r in train])
    return with_other_spellings(model, dict(ALIASES))


def fold_scores(recipe: Recipe, target: list[SourcedRecord], others: list[SourcedRecord],
                fold: np.ndarray, folds: int) -> list[dict[str, float]]:
    """Quality at 15% and cost for 95% (hull) on each held-out fold of RouterBench train."""
    out = []
    for k in range(folds):
        held = [r for r, f in zip(target, fold, strict=True) if f == k]
        rest = [r for r, f in zip(target, fold, strict=True) if f != k]
        kept, _ = honest_train(others, held)
        metrics = test_metrics(fit(recipe, [*rest, *kept]), [r.record for r in held])
        hull = metrics["on_hull"]
        out.append({"q15": float(hull["quality_at_15pct_cost"]),
                    "c95": float(hull["cost_for_95pct_quality"])})
    return out


def parse_grid(weights: str, ranks: str, dense_l2: str) -> list[Recipe]:
    """Every weight × rank × dense_l2."""
    return [Recipe(float(w), int(r), float(d)) for d in dense_l2.split(",") for r in ranks.split(",")
            for w in weights.split(",")]


def main() -> None:
    """Score every recipe out of fold, print the table and the choice, optionally test it once."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default="1,3,10", help="weights of RouterBench's outcomes")
    parser.add_argument("--ranks", default="16", help="latent skills")
    parser.add_argument("--dense-l2", default=f"{TrainConfig.dense_l2:g}",
                        help="extra L2 on the structural features' abilities")
    parser.add_argument("--test", action="store_true",
                        help="measure the chosen recipe once on RouterBench test")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    _, kept, _ = training_records(args.data, list(SOURCE_FILES))
    target = [r for r in kept if r.source == TARGET]
    others = [r for r in kept if r.source != TARGET]
    fold = np.random.default_rng(args.seed).integers(0, args.folds, len(target))
    rows = []
    for recipe in parse_grid(args.weights, args.ranks, args.dense_l2):
        start = time.perf_counter()
        scores = fold_scores(recipe, target, others, fold, args.folds)
        q15 = float(np.mean([s["q15"] for s in scores]))
        c95 = float(np.mean([s["c95"] for s in scores]))
        rows.append({"weight": recipe.weight, "rank": recipe.rank, "dense_l2": recipe.dense_l2,
                     "q15": q15, "c95": c95, "folds": scores})
        per_fold = ", ".join(f"{s['q15']:.2%}/{s['c95']:.1%}" for s in scores)
        print(f"{recipe.label():>20}: quality at 15% {q15:.2%}, cost for 95% {c95:.1%} "
              f"(folds {per_fold}; "
              f"{time.perf_counter() - start:.0f} s)", flush=True)
    best = max(rows, key=lambda r: (r["q15"], -r["c95"]))
    chosen = Recipe(float(best["weight"]), int(best["rank"]), float(best["dense_l2"]))
    print(f"chosen out of fold: {chosen.label()}")
    result: dict[str, object] = {"folds": args.folds, "seed": args.seed, "recipes": rows,
                                 "chosen": {"weight": chosen.weight, "rank": chosen.rank,
                                            "dense_l2": chosen.dense_l2}}
    if args.test:
        metrics = test_metrics(fit(chosen, kept), load_records(args.data / TEST_FILE))
        print(f"RouterBench test, once: {metrics['on_hull']}")
        result["test"] = metrics
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

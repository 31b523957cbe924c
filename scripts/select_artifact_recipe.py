"""Choose the bundled artifact's recipe by out-of-fold evaluation on RouterBench *train* (issue 13).

    python scripts/select_artifact_recipe.py [--data ../shared/data] [--folds 2] [--seed 0]
        [--weights 1,3,10] [--ranks 16] [--dense-l2 30] [--ensembles 1] [--test] [--json out/recipe.json]
    python scripts/select_artifact_recipe.py --recipes W/D/V2/O,... [--folds 2] [--test] ...

RouterBench train is split by prompt into `--folds` folds (seeded); for every candidate recipe (a
weight on RouterBench's outcomes in the joint loss, `TrainConfig.source_weights`, a rank, and the
L2 strength on the structural features, `TrainConfig.dense_l2`, and the number K of text-basis
seeds whose joint fits are averaged, `TrainConfig.basis_seeds` = 0..K-1) each
fold is predicted by a joint model trained on the other folds plus every other source
(`build_router_artifact.training_records`: RouterBench test already removed, and here also the other
sources' records that share a prompt or question with the held-out fold). The score of a fold is the
artifact's own check (`build_router_artifact.test_metrics`): quality at 15% of gpt-4's cost on the
hull and the cost for 95% of its quality. RouterBench test is never read for the choice: the script
prints the recipe with the best mean quality at 15% (ties: lower cost for 95%), and `--test` then
measures only that recipe once on RouterBench test, trained on all of RouterBench train.
Each fold is fitted once per basis seed (up to the largest K); an ensemble of K is the fold of the
first K fits (`ensemble.fold_ensemble`, the same router `basis_seeds` trains), so every K costs only
the largest K's fits. The mean and range of the single-seed scores are printed too.
`--recipes` scores an explicit list instead of the grid: W/D/V2/O[/OFF[/SERVED]] = RouterBench's
weight, dense_l2, the extra L2 on the version-2 structural features only (`features.DENSE_NAMES_V2`,
`-` = dense_l2 too; `TrainConfig.dense_l2_by_name`), the weight of every other source's outcomes, and
optionally the per-(model, source) offset L2 (`TrainConfig.offset_l2`) and the one the offsets are
refitted at after the fit (`TrainConfig.served_offset_l2`; `-`: no refit), both by default
`TrainConfig`'s (rank 16).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
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
from transfer_recipe import parse_offsets

from llmroute.learn import blas
from llmroute.learn.data import OutcomeTable, load_records
from llmroute.learn.ensemble import fold_ensemble
from llmroute.learn.features import DENSE_NAMES_V2, HashingFeaturizer
from llmroute.learn.model import RouterModel
from llmroute.learn.sources import ALIASES, SOURCE_FILES, SourcedRecord, source_weights
from llmroute.learn.train import TrainConfig, fit_members
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
    ensemble: int = 1
    #: Extra L2 on the version-2 structural features only (None: `dense_l2` like the others).
    v2_l2: float | None = None
    #: Weight of the other sources' outcomes.
    others: float = 1.0
    #: L2 on the per-(model, source) offsets in the joint fit, and (None: no refit) the one at which
    #: the biases and offsets are refitted after it (`TrainConfig.served_offset_l2`).
    offset_l2: float = TrainConfig.offset_l2
    served_offset_l2: float | None = TrainConfig.served_offset_l2

    def config(self, table: OutcomeTable, seeds: tuple[int, ...] | None = None) -> TrainConfig:
        """The training config of this recipe for `table` (basis seeds 0..ensemble-1 unless given)."""
        return TrainConfig(rank=self.rank, dense_l2=self.dense_l2, tiers=tiers_by_cost(table),
                           source_weights=source_weights(self.weight, self.others),
                           dense_l2_by_name=v2_penalty(self.v2_l2),
                           offset_l2=self.offset_l2, served_offset_l2=self.served_offset_l2,
                           basis_seeds=seeds if seeds is not None else tuple(range(self.ensemble)))

    def label(self) -> str:
        """Short name for tables."""
        v2 = "" if self.v2_l2 is None else f", v2 dense_l2 {self.v2_l2:g}"
        others = "" if self.others == 1.0 else f", others {self.others:g}"
        offsets = "" if self.offset_l2 == TrainConfig.offset_l2 else f", offset_l2 {self.offset_l2:g}"
        served = ("" if self.served_offset_l2 == TrainConfig.served_offset_l2
                  else f", served offset_l2 {self.served_offset_l2}")
        return (f"weight {self.weight:g}, rank {self.rank}, dense_l2 {self.dense_l2:g}{v2}{others}{offsets}"
                f"{served}, ensemble {self.ensemble}")


def v2_penalty(strength: float | None) -> dict[str, float]:
    """`TrainConfig.dense_l2_by_name` with `strength` on every version-2 structural feature."""
    return {} if strength is None else dict.fromkeys(DENSE_NAMES_V2, strength)


def fit(recipe: Recipe, train: list[SourcedRecord]) -> RouterModel:
    """The joint model of `recipe` on `train`, with every tied model's other spellings."""
    return fold_ensemble(fit_seeds(recipe, train, tuple(range(recipe.ensemble))))


def fit_seeds(recipe: Recipe, train: list[SourcedRecord], seeds: tuple[int, ...]) -> list[RouterModel]:
    """One joint model of `recipe` per text-basis seed, with every tied model's other spellings."""
    table = OutcomeTable.of([r.record for r in train])
    members = fit_members(table, recipe.config(table, seeds), HashingFeaturizer(), [r.source for r in train])
    return [with_other_spellings(m, dict(ALIASES)) for m in members]


def score(model: RouterModel, held: list[SourcedRecord]) -> dict[str, float]:
    """Quality at 15% of gpt-4's cost and cost for 95% of its quality (hull) on `held`."""
    hull = test_metrics(model, [r.record for r in held])["on_hull"]
    return {"q15": float(hull["quality_at_15pct_cost"]), "c95": float(hull["cost_for_95pct_quality"])}


def fold_scores(recipe: Recipe, ensembles: list[int], target: list[SourcedRecord],
                others: list[SourcedRecord], fold: np.ndarray, folds: int
                ) -> tuple[dict[int, list[dict[str, float]]], list[list[dict[str, float]]]]:
    """Per ensemble size K, the scores of each held-out fold of RouterBench train; and per fold the
    scores of each single basis seed (0..max K - 1)."""
    by_k: dict[int, list[dict[str, float]]] = {k: [] for k in ensembles}
    singles = []
    for f in range(folds):
        held = [r for r, g in zip(target, fold, strict=True) if g == f]
        rest = [r for r, g in zip(target, fold, strict=True) if g != f]
        kept, _ = honest_train(others, held)
        members = fit_seeds(recipe, [*rest, *kept], tuple(range(max(ensembles))))
        singles.append([score(m, held) for m in members])
        for k in ensembles:
            by_k[k].append(singles[-1][0] if k == 1 else score(fold_ensemble(members[:k]), held))
    return by_k, singles


def parse_grid(weights: str, ranks: str, dense_l2: str) -> list[Recipe]:
    """Every weight × rank × dense_l2 (ensemble sizes are scored inside each)."""
    return [Recipe(float(w), int(r), float(d)) for d in dense_l2.split(",") for r in ranks.split(",")
            for w in weights.split(",")]


def parse_recipes(text: str) -> list[Recipe]:
    """`W/D/V2/O[/OFF[/SERVED]],...` (V2 `-`: none; OFF: offset_l2; SERVED: served_offset_l2, `-`: no
    refit; both by default TrainConfig's), each at rank 16."""
    out = []
    for item in text.split(","):
        w, d, v2, o, *offsets = item.split("/")
        off, served = parse_offsets(offsets)
        out.append(Recipe(float(w), 16, float(d), v2_l2=None if v2 == "-" else float(v2), others=float(o),
                          offset_l2=off, served_offset_l2=served))
    return out


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
    parser.add_argument("--ensembles", default="1",
                        help="ensemble sizes K (joint fits with text-basis seeds 0..K-1, logits averaged)")
    parser.add_argument("--recipes", default=None,
                        help="explicit candidates W/D/V2/O,... instead of the grid (see above)")
    parser.add_argument("--test", action="store_true",
                        help="measure the chosen recipe once on RouterBench test")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    _, kept, _ = training_records(args.data, list(SOURCE_FILES))
    target = [r for r in kept if r.source == TARGET]
    others = [r for r in kept if r.source != TARGET]
    fold = np.random.default_rng(args.seed).integers(0, args.folds, len(target))
    ensembles = [int(k) for k in args.ensembles.split(",")]
    rows: list[dict[str, object]] = []
    scored: list[tuple[float, float, Recipe]] = []
    grid = (parse_recipes(args.recipes) if args.recipes
            else parse_grid(args.weights, args.ranks, args.dense_l2))
    for recipe in grid:
        start = time.perf_counter()
        by_k, singles = fold_scores(recipe, ensembles, target, others, fold, args.folds)
        single_q = [float(np.mean([fs[i]["q15"] for fs in singles])) for i in range(max(ensembles))]
        print(f"{recipe.label()}: single seeds' quality at 15% (mean over folds) "
              f"{', '.join(f'{q:.2%}' for q in single_q)} ({time.perf_counter() - start:.0f} s)", flush=True)
        for k, scores in by_k.items():
            row = replace(recipe, ensemble=k)
            q15 = float(np.mean([s["q15"] for s in scores]))
            c95 = float(np.mean([s["c95"] for s in scores]))
            scored.append((q15, -c95, row))
            rows.append({"weight": row.weight, "rank": row.rank, "dense_l2": row.dense_l2, "ensemble": k,
                         "v2_l2": row.v2_l2, "others": row.others, "offset_l2": row.offset_l2,
                         "served_offset_l2": row.served_offset_l2,
                         "q15": q15, "c95": c95, "folds": scores,
                         **({"single_seeds_q15": single_q} if k == 1 else {})})
            per_fold = ", ".join(f"{s['q15']:.2%}/{s['c95']:.1%}" for s in scores)
            print(f"  {row.label()}: quality at 15% {q15:.2%}, cost for 95% {c95:.1%} (folds {per_fold})",
                  flush=True)
    chosen = max(scored, key=lambda t: (t[0], t[1]))[2]
    print(f"chosen out of fold: {chosen.label()}")
    result: dict[str, object] = {"folds": args.folds, "seed": args.seed, "recipes": rows,
                                 "chosen": {"weight": chosen.weight, "rank": chosen.rank,
                                            "dense_l2": chosen.dense_l2, "ensemble": chosen.ensemble,
                                            "v2_l2": chosen.v2_l2, "others": chosen.others,
                                            "offset_l2": chosen.offset_l2,
                                            "served_offset_l2": chosen.served_offset_l2}}
    if args.test:
        metrics = test_metrics(fit(chosen, kept), load_records(args.data / TEST_FILE))
        print(f"RouterBench test, once: {metrics['on_hull']}")
        result["test"] = metrics
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    blas.pin()  # the same fits on any x86-64 machine (learn/blas.py)
    main()

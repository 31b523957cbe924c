"""Transfer measured the honest way (issue 13): leave one source out, and one task out within a source.

    python -m llmroute.learn.transfer [--data DIR] [--json FILE] [--sources a,b] [--quick]
                                      [--no-tasks] [--quick-cap N] [--only PREFIX,...]

* Leave-one-source-out: for each source S, train `fit_router` (the joint fit, default `TrainConfig`,
  hashing featurizer, each record's source for the per-source offsets) on every record of the other
  sources, test on all of S.
* Leave-one-task-out, for each source with ≥ 2 tasks: train on the other sources plus S's other tasks,
  test on the held-out task.
* Honest: a router is never evaluated on a prompt it was trained on. Training records whose
  normalised prompt or bare question (`query`) equals one of the held-out set's, or whose prompt
  contains a held-out bare question or whose bare question a held-out prompt contains
  (`sources.link_contained_questions`), are removed from the training side (llmrouter and
  routeprofile share a query pool; RouteProfile's ARC and LLMRouter's MBPP questions are inside
  RouterBench's prompts); the count is reported.
* Pair (`pick_pair`): candidates are the models with outcomes on the held-out set that the trained
  router knows (outcomes in its training data). If the source's preferred pair (`PREFERRED_PAIRS`,
  RouterBench: gpt-4 vs mixtral, as in the issue) are both candidates, it is used. Otherwise strong =
  the candidate with the best mean quality on the held-out set, weak = the best candidate at least
  `min_gap` (0.10) below it (the strongest clearly weaker model, like RouteLLM's pair); if none is that
  far below, the weakest candidate when it is at least 0.02 below; else no pair.
* APGR (`evaluate.metrics.apgr`, tied scores averaged so ties are not split by row order) of: the
  router's score P(strong good) − P(weak good); the prompt-length router (strong when the prompt is
  longer than a threshold, every threshold swept — that is APGR with the length as score); random
  scores (5–95% band, `evaluate_quick.random_band`).
* In-source ceiling (`in_source_scores`; off with `--no-ceiling`): the same pair's APGR for a router
  trained on the held-out set itself, 2-fold cross-fit (each random half scored by a router trained on
  the other half of that set only) — what a router trained on that source or task reaches, shown
  where the transfer target is not met.
* Cost-at-quality, where the held-out set has costs: over the known models with an outcome and a cost
  on every held-out prompt, the cost on the router's hull (both knobs swept exactly) to reach 95% of
  the pair's strong model's quality, against the cheapest single model that reaches it; both as a
  fraction of the strong model's cost. The router's cost estimate comes from its char prices; for a
  model whose training data had no costs (NaN price) its mean cost on the held-out set stands in, as a
  price list would. Sources without recorded costs (zeroeval, mmlu-pro, llmrouter) get none: the repo
  has no price table for their models.
* `--quick`: training records capped at `--quick-cap` (default 600) per source, drawn with a fixed
  seed; held-out sets are always complete.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from ..evaluate import metrics as mx
from . import blas, policy
from .data import OutcomeTable
from .evaluate_quick import random_band
from .model import RouterModel
from .sources import SOURCE_FILES, SourcedRecord, link_contained_questions, load_sources, tasks_of

F64 = npt.NDArray[np.float64]

#: source → (strong, weak) used when both are candidates (names after `sources.ALIASES`).
PREFERRED_PAIRS: Final[Mapping[str, tuple[str, str]]] = {
    "routerbench": ("gpt-4-1106-preview", "mistralai/mixtral-8x7b-instruct-v0.1"),
}
MIN_GAP: Final = 0.10
TARGET_APGR: Final = 0.60
KEEP_QUALITY: Final = 0.95
HONESTY: Final = ("honest evaluation: every router is tested only on prompts it was not trained on "
                  "(held-out source/task; training records whose prompt equals, contains or is contained "
                  "in a held-out prompt's question removed)")


@dataclass(frozen=True)
class Split:
    """One held-out set and the training set that goes with it."""

    kind: str                  # "source" or "task"
    source: str
    task: str                  # "" for a whole source
    train: tuple[SourcedRecord, ...]
    test: tuple[SourcedRecord, ...]
    removed: int               # training records dropped because their prompt is held out

    @property
    def name(self) -> str:
        """`source` or `source/task`."""
        return self.source if not self.task else f"{self.source}/{self.task}"


@dataclass(frozen=True)
class Pair:
    """The strong/weak pair of a held-out set and how it was chosen."""

    strong: str
    weak: str
    q_strong: float
    q_weak: float
    rule: str


@dataclass(frozen=True)
class CostAtQuality:
    """Cost to keep `KEEP_QUALITY` of the reference's quality, as fractions of its cost."""

    reference: str
    models: tuple[str, ...]
    n: int
    reference_cost_per_1k: float
    router: float | None
    best_single: str | None
    best_single_cost: float | None
    priced_from_heldout: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    """One row of the transfer table."""

    kind: str
    name: str
    n_train: int
    removed_from_train: int
    n_test: int
    n_models: int
    unknown_models: tuple[str, ...]
    pair: Pair | None = None
    n_pair: int = 0
    router_apgr: float | None = None
    random_low: float | None = None
    random_high: float | None = None
    length_apgr: float | None = None
    ceiling_apgr: float | None = None
    cost: CostAtQuality | None = None
    note: str = ""

    @property
    def meets_target(self) -> bool | None:
        """APGR ≥ 0.60 and ≥ the length-only router (None when there is no pair)."""
        if self.router_apgr is None or self.length_apgr is None:
            return None
        return self.router_apgr >= TARGET_APGR and self.router_apgr >= self.length_apgr


# ---------------------------------------------------------------- splits


def honest_train(train: Sequence[SourcedRecord], test: Sequence[SourcedRecord]
                 ) -> tuple[tuple[SourcedRecord, ...], int]:
    """`train` without records sharing a normalised prompt or question with `test`; how many went."""
    held = frozenset().union(*(r.texts for r in test)) if test else frozenset()
    kept = tuple(r for r in train if not (r.texts & held))
    return kept, len(train) - len(kept)


def _split(kind: str, source: str, task: str, train: Sequence[SourcedRecord],
           test: Sequence[SourcedRecord]) -> Split:
    kept, removed = honest_train(train, test)
    return Split(kind, source, task, kept, tuple(test), removed)


def loso_splits(sources: Mapping[str, Sequence[SourcedRecord]]) -> list[Split]:
    """Leave-one-source-out: each source held out, trained on all the others."""
    return [_split("source", name, "", [r for other, recs in sources.items() if other != name for r in recs],
                   held) for name, held in sources.items() if held]


def loto_splits(sources: Mapping[str, Sequence[SourcedRecord]]) -> list[Split]:
    """Leave-one-task-out within each source with ≥ 2 tasks: trained on the other sources and the
    source's other tasks (sources with fewer tasks first, so a cut-short run has whole sources)."""
    splits = []
    for name, recs in sorted(sources.items(), key=lambda item: (len(tasks_of(item[1])), item[0])):
        tasks = tasks_of(recs)
        if len(tasks) < 2:
            continue
        others = [r for other, rs in sources.items() if other != name for r in rs]
        for task in tasks:
            splits.append(_split("task", name, task, others + [r for r in recs if r.task != task],
                                 [r for r in recs if r.task == task]))
    return splits


def cap_per_source(records: Sequence[SourcedRecord], cap: int, seed: int = 0) -> tuple[SourcedRecord, ...]:
    """At most `cap` records of each source, drawn without replacement with a fixed seed (order kept)."""
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for source in sorted({r.source for r in records}):
        idx = [i for i, r in enumerate(records) if r.source == source]
        keep.extend(idx if len(idx) <= cap else rng.choice(idx, cap, replace=False).tolist())
    return tuple(records[i] for i in sorted(keep))


# ---------------------------------------------------------------- scoring


def tie_averaged_apgr(scores: F64, q_strong: F64, q_weak: F64) -> float:
    """APGR with the qualities of tied scores averaged: the expected APGR when ties are broken at
    random (`metrics.apgr` alone breaks them by row order)."""
    s = np.asarray(scores, dtype=np.float64)
    _, group = np.unique(s, return_inverse=True)
    counts = np.bincount(group)

    def averaged(q: F64) -> F64:
        out: F64 = (np.bincount(group, weights=np.asarray(q, dtype=np.float64)) / counts)[group]
        return out

    return mx.apgr(s, averaged(q_strong), averaged(q_weak))


def length_scores(prompts: Sequence[str]) -> F64:
    """The prompt-length router's score: its length in characters (longer → strong)."""
    return np.asarray([len(p) for p in prompts], dtype=np.float64)


def mean_quality(table: OutcomeTable) -> dict[str, float]:
    """Each model's mean quality over the rows where it has an outcome (models with none left out)."""
    known = ~np.isnan(table.quality)
    return {m: float(np.nanmean(table.quality[:, j]))
            for j, m in enumerate(table.models) if known[:, j].any()}


def pick_pair(means: Mapping[str, float], candidates: Sequence[str],
              preferred: tuple[str, str] | None = None, min_gap: float = MIN_GAP) -> Pair | None:
    """The strong/weak pair among `candidates` (see the module docstring for the rule)."""
    pool = sorted((m for m in candidates if m in means), key=lambda m: (-means[m], m))
    if (preferred is not None and all(m in pool for m in preferred)
            and means[preferred[0]] != means[preferred[1]]):
        return Pair(preferred[0], preferred[1], means[preferred[0]], means[preferred[1]], "preferred pair")
    if len(pool) < 2:
        return None
    strong = pool[0]
    far = [m for m in pool[1:] if means[m] <= means[strong] - min_gap]
    if far:
        return Pair(strong, far[0], means[strong], means[far[0]], f"best; best ≥ {min_gap:.2f} below")
    weakest = pool[-1]
    if means[weakest] <= means[strong] - 0.02:
        return Pair(strong, weakest, means[strong], means[weakest], "best; weakest (gap < min_gap)")
    return None


def cost_at_quality(model: RouterModel, table: OutcomeTable, reference: str) -> CostAtQuality | None:
    """See the module docstring; None without ≥ 2 models with complete outcomes and costs."""
    full = table.complete()
    if len(full.models) < 2 or not full.prompts or reference not in full.models:
        return None
    models = list(full.models)
    p, est = model.predict_many(full.prompts, models)
    missing: npt.NDArray[np.bool_] = np.asarray(np.isnan(est).any(axis=0), dtype=bool)
    est = np.where(missing[None, :], full.cost.mean(axis=0)[None, :], est)
    points = (policy.sweep_tradeoff(p, est, full.quality, full.cost)
              + policy.sweep_target(p, est, full.quality, full.cost))
    hull = mx.non_decreasing_convex_hull(mx.CurvePoint(pt.cost, pt.quality) for pt in points)
    j = models.index(reference)
    ref_cost, ref_q = float(full.cost[:, j].mean()), float(full.quality[:, j].mean())
    goal = KEEP_QUALITY * ref_q
    router = mx.cost_for_quality(hull, goal)
    singles = sorted((float(full.cost[:, k].mean()), m) for k, m in enumerate(models)
                     if float(full.quality[:, k].mean()) >= goal - mx.QUALITY_TOLERANCE)
    best = singles[0] if singles else None
    scale = ref_cost if ref_cost > 0 else float("nan")
    return CostAtQuality(
        reference, tuple(models), len(full.prompts), ref_cost * 1000,
        None if router is None else router / scale, None if best is None else best[1],
        None if best is None else best[0] / scale,
        tuple(m for m, gone in zip(models, missing, strict=True) if gone))


def two_folds(records: Sequence[SourcedRecord], seed: int = 0) -> npt.NDArray[np.bool_]:
    """A fixed random half of `records` (True = first fold), for the in-source ceiling."""
    mask: npt.NDArray[np.bool_] = np.random.default_rng(seed).permutation(len(records)) < len(records) // 2
    return mask


def in_source_scores(records: Sequence[SourcedRecord], pair: Pair, trainer: Trainer) -> F64:
    """The in-source ceiling's score P(strong good) − P(weak good) for every record of the held-out
    set: each half scored by a router trained on the other half of that set only (2-fold cross-fit)."""
    first = two_folds(records)
    scores = np.zeros(len(records))
    for fold in (first, ~first):
        train = [r for r, f in zip(records, fold, strict=True) if not f]
        test = [r.prompt for r, f in zip(records, fold, strict=True) if f]
        model = trainer(train)
        if not test or not all(m in model.models for m in (pair.strong, pair.weak)):
            return np.full(len(records), np.nan)
        p, _ = model.predict_many(test, [pair.strong, pair.weak])
        scores[fold] = policy.strong_scores(p[:, 0], p[:, 1])
    return scores


def evaluate_split(split: Split, model: RouterModel, ceiling: Trainer | None = None) -> Result:
    """Score one held-out set with the router trained on `split.train`; with `ceiling`, also the
    in-source ceiling (`in_source_scores`, routers trained by `ceiling` on halves of the held-out set)."""
    table = OutcomeTable.of(r.record for r in split.test)
    known = [m for m in table.models if m in model.models]
    unknown = tuple(m for m in table.models if m not in model.models)
    pair = pick_pair(mean_quality(table), known, PREFERRED_PAIRS.get(split.source))
    base = Result(kind=split.kind, name=split.name, n_train=len(split.train),
                  removed_from_train=split.removed, n_test=len(split.test), n_models=len(table.models),
                  unknown_models=unknown)
    if pair is None:
        return replace(base, note=f"no pair: {len(known)} held-out model(s) known to the router")
    both = table.rows(~np.isnan(table.quality[:, table.models.index(pair.strong)])
                      & ~np.isnan(table.quality[:, table.models.index(pair.weak)]))
    qs = both.quality[:, both.models.index(pair.strong)]
    qw = both.quality[:, both.models.index(pair.weak)]
    if abs(float(qs.mean() - qw.mean())) <= mx.QUALITY_TOLERANCE:
        return replace(base, pair=pair, n_pair=len(qs), note="pair tied on its common rows")
    p, _ = model.predict_many(both.prompts, [pair.strong, pair.weak])
    low, high = random_band(qs, qw)
    ceiling_apgr = None
    if ceiling is not None:
        i_s, i_w = table.models.index(pair.strong), table.models.index(pair.weak)
        rows = [r for r, q in zip(split.test, table.quality, strict=True)
                if not np.isnan(q[i_s]) and not np.isnan(q[i_w])]
        inside = in_source_scores(rows, pair, ceiling)
        ceiling_apgr = None if np.isnan(inside).any() else tie_averaged_apgr(inside, qs, qw)
    has_costs = not bool(np.isnan(table.cost).all())
    cost = cost_at_quality(model, OutcomeTable.of([r.record for r in split.test], known),
                           pair.strong) if has_costs else None
    return replace(base, pair=pair, n_pair=len(qs),
                   router_apgr=tie_averaged_apgr(policy.strong_scores(p[:, 0], p[:, 1]), qs, qw),
                   random_low=low, random_high=high,
                   length_apgr=tie_averaged_apgr(length_scores(both.prompts), qs, qw),
                   ceiling_apgr=ceiling_apgr, cost=cost)


# ---------------------------------------------------------------- running


Trainer = Callable[[Sequence[SourcedRecord]], RouterModel]


def default_trainer(records: Sequence[SourcedRecord]) -> RouterModel:
    """The joint recipe: `fit_router` with the default `TrainConfig`, the hashing featurizer and each
    record's source (per-source bias offsets)."""
    from .train import TrainConfig, fit_router

    return fit_router(OutcomeTable.of(r.record for r in records), TrainConfig(),
                      sources=[r.source for r in records])


def run(splits: Sequence[Split], trainer: Trainer = default_trainer, quick_cap: int | None = None,
        log: Callable[[str], None] = lambda _: None,
        on_result: Callable[[list[Result]], None] = lambda _: None,
        ceiling: Trainer | None = None) -> list[Result]:
    """Train and evaluate every split (`quick_cap`: training records per source, else all);
    `on_result` gets the results so far after each split; `ceiling`: also the in-source ceiling."""
    results: list[Result] = []
    for split in splits:
        start = time.monotonic()
        train = cap_per_source(split.train, quick_cap) if quick_cap is not None else split.train
        used = Split(split.kind, split.source, split.task, train, split.test, split.removed)
        results.append(evaluate_split(used, trainer(train), ceiling))
        log(f"{split.name}: trained on {len(train)} records in {time.monotonic() - start:.0f} s")
        log(table_lines(results[-1:])[-1])
        on_result(results)
    return results


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "unreachable" if value is None else f"{value * 100:.1f}%"


def table_lines(results: Sequence[Result]) -> list[str]:
    """The results as a markdown table, with the honesty statement on top."""
    lines = [f"_{HONESTY}_", "",
             "| held out | trained on | pair (strong / weak) | n | router APGR | random 5–95% "
             "| length-only APGR | in-source ceiling | target met "
             "| cost for 95% of strong (router / best single) | models unknown to the router |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        pair = "—" if r.pair is None else (
            f"{r.pair.strong} ({r.pair.q_strong:.3f}) / {r.pair.weak} ({r.pair.q_weak:.3f})")
        band = "—" if r.random_low is None else f"{r.random_low:.3f}–{_fmt(r.random_high)}"
        met = {None: r.note or "—", True: "yes", False: "no"}[r.meets_target]
        cost = "—" if r.cost is None else (
            f"{_pct(r.cost.router)} / {_pct(r.cost.best_single_cost)} ({r.cost.best_single or 'none'}; "
            f"{len(r.cost.models)} models, n={r.cost.n})")
        trained = ("the other sources" if r.kind == "source" else
                   f"the other sources + {r.name.split('/')[0]}'s other tasks")
        lines.append(f"| {r.kind}: {r.name} | {trained} ({r.n_train}) | {pair} | {r.n_pair or r.n_test} "
                     f"| {_fmt(r.router_apgr)} | {band} | {_fmt(r.length_apgr)} | {_fmt(r.ceiling_apgr)} "
                     f"| {met} | {cost} | {len(r.unknown_models)} of {r.n_models} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, default=None, help="write every result here as JSON")
    parser.add_argument("--sources", default=",".join(SOURCE_FILES), help="comma-separated sources to load")
    parser.add_argument("--quick", action="store_true", help="cap training records per source")
    parser.add_argument("--quick-cap", type=int, default=600)
    parser.add_argument("--no-tasks", action="store_true", help="leave-one-source-out only")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the in-source ceiling")
    parser.add_argument("--only", default="", help="comma-separated prefixes of held-out names to run "
                        "(e.g. 'llmrouter/' for llmrouter's tasks)")
    args = parser.parse_args(argv)
    sources = link_contained_questions(load_sources(args.data, [s for s in args.sources.split(",") if s]))
    splits = loso_splits(sources) + ([] if args.no_tasks else loto_splits(sources))
    prefixes = [p for p in args.only.split(",") if p]
    if prefixes:
        splits = [s for s in splits if any(s.name.startswith(p) for p in prefixes)]
    cap = args.quick_cap if args.quick else None
    mode = f"quick (≤ {cap} training records per source, seed 0)" if cap else "full"
    started = time.monotonic()

    def save(results: list[Result]) -> None:
        if args.json is not None:
            payload = {"mode": mode, "honesty": HONESTY, "splits": len(splits), "done": len(results),
                       "seconds": round(time.monotonic() - started),
                       "sources": {k: len(v) for k, v in sources.items()},
                       "results": [{**asdict(r), "meets_target": r.meets_target} for r in results]}
            args.json.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    results = run(splits, quick_cap=cap, log=lambda line: print(line, file=sys.stderr, flush=True),
                  on_result=save, ceiling=None if args.no_ceiling else default_trainer)
    print(f"mode: {mode}; {len(splits)} splits in {time.monotonic() - started:.0f} s")
    print("\n".join(table_lines(results)))


if __name__ == "__main__":
    blas.pin()  # the same fits on any x86-64 machine (learn/blas.py)
    main()

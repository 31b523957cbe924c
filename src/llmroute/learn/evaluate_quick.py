"""Print the learned router's report on held-out data: the cost–quality curve against the strong
model and the best single models, transfer APGR (train on two datasets, test on the third), and
decision latency.

    python -m llmroute.learn.evaluate_quick [--data ../shared/data] [--artifact PATH] [--transfer]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..evaluate.metrics import apgr
from . import artifact, policy
from .data import OutcomeRecord, OutcomeTable, load_records
from .features import Featurizer
from .model import RouterModel
from .policy import CurvePoint

STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/mixtral-8x7b-chat"
BUDGETS = (0.02, 0.05, 0.075, 0.10, 0.15, 0.20, 0.30, 0.40, 0.50, 0.75, 1.0)


@dataclass(frozen=True)
class Curve:
    """A router's frontier on a table, and the strong model's reference point."""

    points: list[CurvePoint]
    strong_cost: float
    strong_quality: float


def router_curve(model: RouterModel, table: OutcomeTable, strong: str = STRONG) -> Curve:
    """Frontier of both policies (λ trade-off and quality target) on `table`'s real outcomes."""
    p, est = model.predict_many(table.prompts, table.models)
    points = (policy.sweep_tradeoff(p, est, table.quality, table.cost)
              + policy.sweep_target(p, est, table.quality, table.cost))
    j = table.models.index(strong)
    return Curve(policy.frontier(points), float(table.cost[:, j].mean()), float(table.quality[:, j].mean()))


def single_models(table: OutcomeTable) -> list[tuple[str, float, float]]:
    """(model, mean cost, mean quality) of always using one model, cheapest first."""
    rows = [(m, float(table.cost[:, j].mean()), float(table.quality[:, j].mean()))
            for j, m in enumerate(table.models)]
    return sorted(rows, key=lambda r: r[1])


def single_best_within(singles: Sequence[tuple[str, float, float]], budget: float) -> float:
    """Best quality of one model alone, or of mixing two models at random, within `budget`."""
    best = max((q for _, c, q in singles if c <= budget), default=float("nan"))
    for _, c1, q1 in singles:
        for _, c2, q2 in singles:
            if c1 <= budget < c2:
                share = (budget - c1) / (c2 - c1)
                best = max(best, q1 + share * (q2 - q1))
    return best


def budget_table(curve: Curve, singles: Sequence[tuple[str, float, float]]) -> list[str]:
    """Rows: budget as % of strong cost, router cost/quality, % of strong quality, best single."""
    lines = ["  budget | router $/1k  quality  %strong-q | best single (or mix) quality"]
    for b in BUDGETS:
        budget = b * curve.strong_cost
        ok = [p for p in curve.points if p.cost <= budget]
        if not ok:
            lines.append(f"  {b * 100:5.1f}% | (no point)")
            continue
        pt = max(ok, key=lambda p: p.quality)
        single = single_best_within(singles, budget)
        lines.append(f"  {b * 100:5.1f}% | {pt.cost * 1000:8.3f}  {pt.quality:7.3f}  "
                     f"{pt.quality / curve.strong_quality * 100:8.1f}% | {single:7.3f}")
    return lines


def hull_readings(curve: Curve) -> dict[str, float]:
    """The issue's four numbers read off the curve's convex hull (RouterBench's R̃: any point between
    two settings is reached by blending them, see `llmroute calibrate`), as fractions of the strong
    model's cost / quality (NaN when out of reach)."""
    from ..evaluate import metrics as mx

    sq, sc = curve.strong_quality, curve.strong_cost
    hull = mx.non_decreasing_convex_hull(mx.CurvePoint(p.cost, p.quality) for p in curve.points)
    q15, q30 = mx.quality_at_cost(hull, 0.15 * sc), mx.quality_at_cost(hull, 0.30 * sc)
    c95, c100 = mx.cost_for_quality(hull, 0.95 * sq), mx.cost_for_quality(hull, sq)
    nan = float("nan")
    return {"quality_at_15pct_cost": nan if q15 is None else q15 / sq,
            "quality_at_30pct_cost": nan if q30 is None else q30 / sq,
            "cost_for_95pct_quality": nan if c95 is None else c95 / sc,
            "cost_for_100pct_quality": nan if c100 is None else c100 / sc}


def target_lines(curve: Curve) -> list[str]:
    """Where the curve meets or misses the issue's targets: on the hull (blends allowed) and at the
    best single knob setting."""
    sq, sc = curve.strong_quality, curve.strong_cost
    q15 = policy.quality_within(curve.points, 0.15 * sc)
    q30 = policy.quality_within(curve.points, 0.30 * sc)
    c95 = policy.cost_for(curve.points, 0.95 * sq)
    c100 = policy.cost_for(curve.points, sq)
    hull = hull_readings(curve)
    lines = []
    for goal, budget, key_q, key_c, single_q, single_c in (
            (0.95, 0.15, "quality_at_15pct_cost", "cost_for_95pct_quality", q15 / sq, c95 / sc),
            (1.00, 0.30, "quality_at_30pct_cost", "cost_for_100pct_quality", q30 / sq, c100 / sc)):
        met = hull[key_q] >= goal - 1e-12
        lines.append(
            f"  {goal:.0%} of strong quality within {budget:.0%} of its cost: {'MET' if met else 'MISSED'} "
            f"on the hull (at {budget:.0%}: {hull[key_q] * 100:.2f}%; {goal:.0%} needs "
            f"{hull[key_c] * 100:.1f}%); best single setting: {single_q * 100:.2f}% at {budget:.0%}, "
            f"{goal:.0%} needs {single_c * 100:.1f}%")
    return lines


def beats_singles(curve: Curve, singles: Sequence[tuple[str, float, float]]) -> list[str]:
    """Budgets (from each single model's cost) where the router is below the best single/mix."""
    lines = []
    for name, cost, _ in singles:
        mine = policy.quality_within(curve.points, cost)
        best = single_best_within(singles, cost)
        mark = "ok " if mine >= best else "LOW"
        lines.append(f"  {mark} at ${cost * 1000:6.3f}/1k ({name}): router {mine:.3f} vs single {best:.3f}")
    return lines


def random_band(q_strong: np.ndarray, q_weak: np.ndarray, draws: int = 200) -> tuple[float, float]:
    """5th and 95th percentile of APGR for random scores (how much APGR varies by chance here)."""
    rng = np.random.default_rng(0)
    values = [apgr(rng.random(len(q_strong)), q_strong, q_weak) for _ in range(draws)]
    low, high = np.percentile(values, [5, 95])
    return float(low), float(high)


def apgr_line(label: str, model: RouterModel, table: OutcomeTable, strong: str, weak: str) -> str:
    """APGR of `model` (strong vs weak) on `table`, with the random-score band."""
    p, _ = model.predict_many(table.prompts, [strong, weak])
    qs, qw = table.quality[:, table.models.index(strong)], table.quality[:, table.models.index(weak)]
    score = apgr(policy.strong_scores(p[:, 0], p[:, 1]), qs, qw)
    low, high = random_band(qs, qw)
    return (f"  {label:28s} n={len(table.prompts):4d}  APGR {score:.3f}  "
            f"(random 5–95%: {low:.3f}–{high:.3f}; q_strong {qs.mean():.3f}, q_weak {qw.mean():.3f})")


def transfer_apgr(train: Sequence[OutcomeRecord], test: Sequence[OutcomeRecord], strong: str = STRONG,
                  weak: str = WEAK, featurizer: Featurizer | None = None) -> list[str]:
    """For each dataset: train on `train` minus it, report APGR (strong vs weak) on its `test` rows
    (`featurizer`: refitted on each training split; default the hashing featurizer)."""
    from .train import TrainConfig, fit_router

    lines = []
    for held in sorted({r.dataset for r in test}):
        model = fit_router(OutcomeTable.of([r for r in train if r.dataset != held], [strong, weak]),
                           TrainConfig(), featurizer)
        table = OutcomeTable.of([r for r in test if r.dataset == held], [strong, weak]).complete()
        lines.append(apgr_line(f"held out {held}", model, table, strong, weak))
    return lines


def in_distribution_apgr(model: RouterModel, table: OutcomeTable, strong: str = STRONG,
                         weak: str = WEAK) -> list[str]:
    """APGR of the trained router on the test set, overall and per dataset."""
    lines = [apgr_line("all test prompts", model, table, strong, weak)]
    for name in sorted(set(table.datasets)):
        rows = table.rows(np.asarray([d == name for d in table.datasets]))
        lines.append(apgr_line(name, model, rows, strong, weak))
    return lines


def decision_ms(model: RouterModel, text: str, repeats: int = 300) -> tuple[float, float]:
    """p50 and p99 (ms) of one full decision (featurize, predict, choose by λ) on `text`, after a
    first call that is not counted."""
    model.predict(text)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pred = model.predict(text)
        policy.by_tradeoff(pred.p_good, pred.expected_cost, 100.0)
        times.append(time.perf_counter() - start)
    p50, p99 = np.percentile(times, [50, 99]) * 1000
    return float(p50), float(p99)


def latency_lines(model: RouterModel, prompts: Sequence[str], repeats: int = 300) -> list[str]:
    """p50/p99 of one full decision per prompt length."""
    lines = []
    for label, text in (("short", "What's the capital of France?"), ("2,000 tokens", _long(prompts))):
        p50, p99 = decision_ms(model, text, repeats)
        lines.append(f"  {label:12s} ({len(text):5d} chars): p50 {p50:.3f} ms  p99 {p99:.3f} ms")
    return lines


def _long(prompts: Sequence[str]) -> str:
    return "\n\n".join(prompts)[:8000]


def main(argv: Sequence[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--artifact", type=Path, default=None, help="default: the bundled router")
    parser.add_argument("--transfer", action="store_true", help="also train/test leave-one-dataset-out")
    args = parser.parse_args(argv)
    model = artifact.load(args.artifact) if args.artifact else artifact.load_default()
    test_records = load_records(args.data / "routerbench" / "test.jsonl")
    known = [m for m in OutcomeTable.of(test_records).models if m in model.models]
    table = OutcomeTable.of(test_records, known).complete()
    model = model.select(known)
    curve = router_curve(model, table)
    singles = single_models(table)
    print(f"routerbench test: {len(table.prompts)} prompts with all {len(known)} models; strong = {STRONG} "
          f"(quality {curve.strong_quality:.3f}, ${curve.strong_cost * 1000:.2f}/1k prompts)")
    print("\n".join(["cost–quality curve (both policies' frontier):", *budget_table(curve, singles),
                     "targets:", *target_lines(curve), "against single models:",
                     *beats_singles(curve, singles),
                     f"APGR, {STRONG} (strong) vs {WEAK} (weak), trained on all of train:",
                     *in_distribution_apgr(model, table), "decision latency:",
                     *latency_lines(model, table.prompts)]))
    if args.transfer:
        train = load_records(args.data / "routerbench" / "train.jsonl")
        print("\n".join(["transfer (train on two datasets, test on the third):",
                         *transfer_apgr(train, test_records, featurizer=model.featurizer)]))

if __name__ == "__main__":
    main()

"""`llmroute eval`'s engine: replay a dataset through routing strategies (random, rules, classifier,
cascade, oracle) and summarise each curve with the lab's metrics. No live calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..learn.model import RouterModel
from ..learn.policy import by_target_many, frontier, strong_scores, sweep_target, sweep_tradeoff
from ..routers.rules import RulesRouter
from ..types import RouteRequest
from . import metrics as mx
from .lab import Table, default_tier_models, oracle_choice, tier_choice
from .report import EvalReport, PairMetrics, StrategyResult

TARGETS = tuple(float(t) for t in np.linspace(0.0, 1.0, 101))
CASCADE_THRESHOLD = 0.7


@dataclass(frozen=True)
class Strategy:
    """A routing strategy in the lab: its curve points and, for a strong/weak pair, its scores
    (higher = more need of the strong model)."""

    name: str
    points: list[mx.CurvePoint]
    pair_scores: np.ndarray | None = None


def classifier_curve(table: Table, p: np.ndarray, est: np.ndarray, label: str) -> list[mx.CurvePoint]:
    """Both policy knobs swept exactly (every distinct set of choices each knob can make: see
    `sweep_target` / `sweep_tradeoff`); a knob's dominated settings are left out."""
    points = []
    for knob, sweep in (("target", sweep_target), ("λ", sweep_tradeoff)):
        for pt in frontier(sweep(p, est, table.quality, table.cost)):
            points.append(mx.CurvePoint(pt.cost, pt.quality, f"{label}@{knob}={pt.param:.10g}"))
    return points


def rules_tiers(router: RulesRouter, texts: Sequence[str]) -> tuple[list[str], list[float]]:
    """The rules router's tier and confidence for every prompt."""
    from ..constraints import Candidates

    empty = Candidates((), ())
    verdicts = [router.decide(RouteRequest.from_prompt(t), empty) for t in texts]
    return [v.tier for v in verdicts], [v.confidence for v in verdicts]


def strategies(table: Table, names: Sequence[str], *, model: RouterModel | None,
               rules: RulesRouter | None, ladder: Sequence[str], pair: tuple[int, int] | None
               ) -> list[Strategy]:
    """Build the requested strategies (`random`, `rules`, `classifier`, `cascade`, `oracle`)."""
    strong, weak = pair or (int(np.argmax(table.quality.mean(0))), int(np.argmin(table.cost.mean(0))))
    out: list[Strategy] = []
    p = est = None
    if model is not None and {"classifier", "cascade"} & set(names):
        p, est = model.predict_many(table.texts, table.models)
    tier_models = default_tier_models(table, ladder)
    builders: Mapping[str, Callable[[], Strategy]] = {
        "random": lambda: _random(table, strong, weak),
        "oracle": lambda: Strategy("oracle", [table.point(oracle_choice(table), "oracle")],
                                   table.quality[:, strong] - table.quality[:, weak]),
        "rules": lambda: _rules(table, rules, tier_models),
        "classifier": lambda: _classifier(table, p, est, strong, weak),
        "cascade": lambda: _cascade(table, rules, tier_models, p, est),
    }
    for name in names:
        if name in ("classifier", "cascade") and p is None:
            continue
        if name in ("rules", "cascade") and rules is None:
            continue
        out.append(builders[name]())
    return out


def _classifier(table: Table, p: np.ndarray | None, est: np.ndarray | None, strong: int,
                weak: int) -> Strategy:
    assert p is not None and est is not None
    return Strategy("classifier", classifier_curve(table, p, est, "classifier"),
                    strong_scores(p[:, strong], p[:, weak]))


def _random(table: Table, strong: int, weak: int) -> Strategy:
    s, w = table.single(table.models[strong]), table.single(table.models[weak])
    points = [mx.CurvePoint((1 - f) * w.cost + f * s.cost, (1 - f) * w.quality + f * s.quality,
                            f"random@{f:.2f}", f) for f in np.linspace(0, 1, 21)]
    rng = np.random.default_rng(0)
    return Strategy("random", points, rng.random(table.n))


def _rules(table: Table, rules: RulesRouter | None, tier_models: Mapping[str, str]) -> Strategy:
    assert rules is not None
    tiers, _ = rules_tiers(rules, table.texts)
    choice = tier_choice(table, tiers, tier_models)
    mapping = ", ".join(f"{t}→{m}" for t, m in tier_models.items())
    return Strategy("rules", [table.point(choice, f"rules ({mapping})")])


def _cascade(table: Table, rules: RulesRouter | None, tier_models: Mapping[str, str],
             p: np.ndarray | None, est: np.ndarray | None) -> Strategy:
    assert rules is not None and p is not None and est is not None
    tiers, confidence = rules_tiers(rules, table.texts)
    sure = np.asarray(confidence) >= CASCADE_THRESHOLD
    by_rules = tier_choice(table, tiers, tier_models)
    points = [table.point(np.where(sure, by_rules, by_target_many(p, est, t)),
                          f"cascade@target={t:.2f}") for t in TARGETS]
    return Strategy("cascade", points)


def summarise(table: Table, found: Sequence[Strategy], *, dataset: str,
              reference: str | None, pair: tuple[int, int] | None) -> EvalReport:
    """Curves → hulls, AIQ, target costs, savings, shortfalls and pair metrics."""
    singles = {m: table.single(m) for m in table.models}
    ref_name = reference or mx.best_single(singles)[0]
    ref = singles[ref_name]
    lo, hi = min(s.cost for s in singles.values()), max(s.cost for s in singles.values())
    results = []
    for strategy in found:
        hull = mx.non_decreasing_convex_hull(strategy.points)
        pair_metrics = None
        if pair is not None and strategy.pair_scores is not None:
            strong, weak = pair
            qs, qw = table.quality[:, strong], table.quality[:, weak]
            pair_metrics = PairMetrics(
                table.models[strong], table.models[weak],
                mx.apgr(strategy.pair_scores, qs, qw),
                {f"CPT({int(t * 100)}%)": mx.cpt(strategy.pair_scores, qs, qw, t)
                 for t in (0.5, 0.8, 0.95)})
        results.append(StrategyResult(
            strategy.name, strategy.points, hull, mx.aiq(strategy.points, lo, hi),
            mx.summary_at_targets(hull, ref), mx.savings_vs_best_single(hull, singles),
            mx.beats_best_single_everywhere(hull, singles), mx.shortfall_budgets(hull, singles),
            pair_metrics))
    return EvalReport(dataset, table.n, table.models, ref, singles, results)

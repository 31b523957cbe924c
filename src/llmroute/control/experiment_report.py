"""An experiment's report from per-arm aggregates (pure): per-arm numbers with always-valid
intervals, each arm compared with the control (verdict, non-inferiority on quality, how many more
requests would decide it), the guardrails' stops, and a JSON-ready view for the dashboard.

The numbers come from a window's rollups grouped by experiment arm (`Store.rollups("arm", ...)`, a
`RollupWindow`): per arm its `Tally` (exact counts and money sums), its `Moments` (sums of squares
and products) and its latency histogram, so a month of a 10M-row ledger is a few rows, never the
entries. `report_from_rollups` is the one computation; `build_experiment_report` (entries already in
memory) folds them into the same per-arm groups first (`arm_window`) and calls it.

Definitions (the statistics are in `stats`):

- an entry belongs to arm A of experiment E when its `experiment_arm` is "E:A"; entries labelled
  with an arm the configuration does not have are counted in `unknown_arms` and left out;
- error rate: entries with status "error" over all the arm's entries;
- success rate (quality): `task_success` True over the entries that have it (True or False).
  Entries without feedback are left out; there is no fallback (an answered request is not a
  solved task, and errors are measured by the error rate), as in `llmroute report`;
- mean rating (quality): the mean `user_rating` (1–5) over rated entries; its variance from the
  sum and the sum of squares, (Σx² − n·x̄²)/(n − 1);
- cost per request: the mean `cost_usd` over priced entries (unpriced ones are left out, never $0),
  its variance likewise;
- latency p50/p95: nearest-rank percentiles of `latency_s` over all entries, errors included, read
  from the arm's latency sketch (`ledger.sketch`): each value, and each bound of its interval (the
  order statistics of the ranks `stats.quantile_ranks` names), is within 1 % of the exact order
  statistic;
- cost per quality point: Σ cost_usd / Σ user_rating over entries both priced and rated, with the
  delta-method interval from sums (`stats.ratio_of_sums`).

The verdicts compare each arm with the control on success rate, mean rating, error rate and cost
per request; "more requests" converts the observations a metric still needs into requests at the
arm pair's current rate of observation (feedback is given on only some requests).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..ledger.aggregates import Tally
from ..ledger.entry import LedgerEntry
from ..ledger.rollup_read import RollupGroup, RollupWindow, WindowFold, group_of
from ..ledger.rollups import ZERO_MOMENTS, fact_of
from ..ledger.sketch import Histogram, nearest_rank, size, value_at_rank
from .experiments import ExperimentConfig, is_active, parse_arm_label
from .stats import (
    Comparison,
    Difference,
    Estimate,
    Interval,
    NonInferiorityVerdict,
    PairSums,
    Sample,
    compare,
    difference,
    mean_interval,
    mixture_rho,
    non_inferiority,
    proportion_interval,
    quantile_ranks,
    ratio_of_sums,
    shortfall,
    significantly_worse,
)


@dataclass(frozen=True)
class Metric:
    """A compared metric: how a sample is drawn from an arm's aggregates, which way is better, the
    margin within which a difference counts as none, and whether it measures quality."""

    name: str
    sample: Callable[[RollupGroup], Sample | None]
    higher_is_better: bool
    margin: Callable[[ExperimentConfig, Sample], float]
    quality: bool
    guarded: bool


def _errors(arm: RollupGroup) -> Sample | None:
    t = arm.tally
    return Sample.of_counts(t.errors, t.requests) if t.requests else None


def _successes(arm: RollupGroup) -> Sample | None:
    t = arm.tally
    return Sample.of_counts(t.successes, t.judged) if t.judged else None


def _ratings(arm: RollupGroup) -> Sample | None:
    t = arm.tally
    return (Sample.of_sums(t.rated, float(t.rating_points), float(arm.moments.rating_sq))
            if t.rated else None)


def _costs(arm: RollupGroup) -> Sample | None:
    t = arm.tally
    return Sample.of_sums(t.priced, float(t.cost_usd), arm.moments.cost_sq) if t.priced else None


METRICS: tuple[Metric, ...] = (
    Metric("success_rate", _successes, True, lambda x, _: x.non_inferiority_margin, True, True),
    Metric("mean_rating", _ratings, True, lambda x, _: x.rating_margin, True, True),
    Metric("error_rate", _errors, False, lambda x, _: x.non_inferiority_margin, False, True),
    Metric("cost_per_request", _costs, False, lambda x, c: x.cost_margin * abs(c.mean), False, False),
)


@dataclass(frozen=True)
class ArmSummary:
    """One arm's numbers; an estimate is None when the arm has nothing to measure it on."""

    arm: str
    policy: str
    share: float
    requests: int
    errors: int
    error_rate: Estimate | None
    judged: int
    success_rate: Estimate | None
    rated: int
    mean_rating: Estimate | None
    priced: int
    cost_per_request: Estimate | None
    latency_p50: Estimate | None
    latency_p95: Estimate | None
    cost_per_quality_point: Estimate | None


@dataclass(frozen=True)
class MetricComparison:
    """One metric of an arm against the control. `more_requests` (and the non-inferiority's) is
    about how many more requests, both arms together, would decide it: 0 decided, None out of
    reach. Non-inferiority ("no worse by more than the margin?") is tested on quality metrics."""

    metric: str
    comparison: Comparison
    more_requests: int | None
    non_inferiority: NonInferiorityVerdict | None = None
    non_inferiority_margin: float | None = None
    non_inferiority_more_requests: int | None = None


@dataclass(frozen=True)
class ArmComparison:
    """An arm's comparisons with the control, one per metric both arms can be measured on."""

    arm: str
    metrics: tuple[MetricComparison, ...]

    def get(self, metric: str) -> MetricComparison | None:
        return next((m for m in self.metrics if m.metric == metric), None)


@dataclass(frozen=True)
class GuardrailStop:
    """An arm to stop: on `metric` it is significantly worse than the control."""

    arm: str
    metric: str
    difference: Difference


@dataclass(frozen=True)
class ExperimentReport:
    """Everything `llmroute experiments report` shows."""

    experiment: ExperimentConfig
    status: str
    arms: tuple[ArmSummary, ...]
    comparisons: tuple[ArmComparison, ...]
    stops: tuple[GuardrailStop, ...]
    unknown_arms: tuple[tuple[str, int], ...]


def split_by_arm(experiment: ExperimentConfig, entries: Iterable[LedgerEntry]
                 ) -> tuple[dict[str, list[LedgerEntry]], Counter[str]]:
    """The experiment's entries per configured arm (every arm present, maybe empty), and the
    count of entries labelled with arms the configuration does not have."""
    by_arm: dict[str, list[LedgerEntry]] = {name: [] for name in experiment.arms}
    unknown: Counter[str] = Counter()
    for entry in entries:
        label = parse_arm_label(entry.experiment_arm)
        if label is None or label[0] != experiment.name:
            continue
        if label[1] in by_arm:
            by_arm[label[1]].append(entry)
        else:
            unknown[label[1]] += 1
    return by_arm, unknown


def arm_window(entries: Iterable[LedgerEntry]) -> RollupWindow:
    """Entries already in memory folded per `experiment_arm`: what `Store.rollups("arm", ...)`
    answers for the same entries (tallies and moments equal, the same latency sketch)."""
    fold = WindowFold("arm")
    fold.add_facts((fact_of(entry) for entry in entries), group_of("arm"))
    return fold.result()


def empty_arm(label: str) -> RollupGroup:
    """The aggregates of an arm without entries."""
    return RollupGroup(label, Tally(), ZERO_MOMENTS, (), ())


def arm_groups(experiment: ExperimentConfig, window: RollupWindow
               ) -> tuple[dict[str, RollupGroup], Counter[str]]:
    """The experiment's group per configured arm (every arm present, maybe empty) from a window
    grouped by arm, and the requests labelled with arms the configuration does not have."""
    if window.by != "arm":
        raise ValueError(f"an experiment report needs rollups by arm, not by {window.by!r}")
    by_arm = {name: empty_arm(f"{experiment.name}:{name}") for name in experiment.arms}
    unknown: Counter[str] = Counter()
    for group in window.groups:
        label = parse_arm_label(group.label)
        if label is None or label[0] != experiment.name:
            continue
        if label[1] in by_arm:
            by_arm[label[1]] = group
        else:
            unknown[label[1]] += group.tally.requests
    return by_arm, unknown


def build_experiment_report(experiment: ExperimentConfig, entries: Iterable[LedgerEntry],
                            now: datetime) -> ExperimentReport:
    """The report of `experiment` over `entries` (a window read from the ledger) at `now`: the
    entries folded per arm (`arm_window`), then `report_from_rollups`."""
    return report_from_rollups(experiment, arm_window(entries), now)


def report_from_rollups(experiment: ExperimentConfig, window: RollupWindow,
                        now: datetime) -> ExperimentReport:
    """The report of `experiment` at `now` from a window's aggregates grouped by arm
    (`Store.rollups("arm", since, until)`; other experiments' groups are ignored)."""
    by_arm, unknown = arm_groups(experiment, window)
    rho = mixture_rho(experiment.alpha, experiment.horizon)
    arms = tuple(summarize_arm(experiment, name, by_arm[name], rho) for name in experiment.arms)
    control = by_arm[experiment.control]
    comparisons = tuple(compare_arm(experiment, control, name, by_arm[name], rho)
                        for name in experiment.arms
                        if name != experiment.control and by_arm[name].tally.requests)
    return ExperimentReport(experiment, _status(experiment, now), arms, comparisons,
                            _stops(experiment, by_arm),
                            tuple(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))))


def _status(experiment: ExperimentConfig, now: datetime) -> str:
    if not experiment.enabled:
        return "stopped (kill switch)"
    if not is_active(experiment, now) and experiment.ends is not None:
        return f"ended {experiment.ends.isoformat()}"
    return "running"


def summarize_arm(experiment: ExperimentConfig, arm: str, group: RollupGroup,
                  rho: float) -> ArmSummary:
    """One arm's numbers with their always-valid intervals at the experiment's alpha, from its
    aggregates."""
    alpha, t, m = experiment.alpha, group.tally, group.moments
    ratings, costs, latency = _ratings(group), _costs(group), group.histogram()
    pairs = PairSums(m.pair_n, float(t.rated_cost_usd), float(t.rated_cost_points),
                     m.pair_cost_sq, float(m.pair_rating_sq), m.pair_cross)
    return ArmSummary(
        arm=arm, policy=experiment.arms[arm].policy, share=experiment.share(arm),
        requests=t.requests, errors=t.errors,
        error_rate=_proportion(t.errors, t.requests, alpha, rho),
        judged=t.judged, success_rate=_proportion(t.successes, t.judged, alpha, rho),
        rated=t.rated, mean_rating=_mean(ratings, alpha, rho),
        priced=t.priced, cost_per_request=_mean(costs, alpha, rho),
        latency_p50=_quantile(latency, 50, alpha, rho),
        latency_p95=_quantile(latency, 95, alpha, rho),
        cost_per_quality_point=ratio_of_sums(pairs, alpha, rho),
    )


def _proportion(successes: int, n: int, alpha: float, rho: float) -> Estimate | None:
    return Estimate(successes / n, proportion_interval(successes, n, alpha, rho), n) if n else None


def _mean(sample: Sample | None, alpha: float, rho: float) -> Estimate | None:
    return None if sample is None else Estimate(sample.mean, mean_interval(sample, alpha, rho),
                                                sample.n)


def _quantile(hist: Histogram, percent: int, alpha: float, rho: float) -> Estimate | None:
    """The nearest-rank percentile and its interval's order statistics, read from the sketch
    (each within its 1 %); a bound whose rank falls outside 1..n is unbounded."""
    n, value = size(hist), nearest_rank(hist, percent)
    if value is None:
        return None
    low, high = quantile_ranks(n, percent / 100, alpha, rho)
    return Estimate(value, Interval(value_at_rank(hist, low), value_at_rank(hist, high)), n)


def compare_arm(experiment: ExperimentConfig, control: RollupGroup, arm: str,
                group: RollupGroup, rho: float) -> ArmComparison:
    """`arm` against the control on every metric both can be measured on."""
    found = (_compare_metric(experiment, metric, control, group, rho) for metric in METRICS)
    return ArmComparison(arm, tuple(m for m in found if m is not None))


def _compare_metric(experiment: ExperimentConfig, metric: Metric, control: RollupGroup,
                    group: RollupGroup, rho: float) -> MetricComparison | None:
    base, other = metric.sample(control), metric.sample(group)
    if base is None or other is None:
        return None
    margin = metric.margin(experiment, base)
    result = compare(base, other, alpha=experiment.alpha, rho=rho, margin=margin,
                     higher_is_better=metric.higher_is_better, min_samples=experiment.min_samples)
    per_observation = (control.tally.requests + group.tally.requests) / (base.n + other.n)
    more = _requests(result.more_to_decide, per_observation)
    if not metric.quality:
        return MetricComparison(metric.name, result, more)
    test = non_inferiority(result.difference, margin, alpha=experiment.alpha, rho=rho,
                           higher_is_better=metric.higher_is_better,
                           shortfall=shortfall(base, other, experiment.min_samples))
    return MetricComparison(metric.name, result, more, test.verdict, margin,
                            _requests(test.more_to_decide, per_observation))


def _requests(observations: int | None, per_observation: float) -> int | None:
    return None if observations is None else math.ceil(observations * per_observation)


def guardrail_stops(experiment: ExperimentConfig, entries: Iterable[LedgerEntry]
                    ) -> tuple[GuardrailStop, ...]:
    """`stops_from_rollups` over entries already in memory (folded per arm first)."""
    return stops_from_rollups(experiment, arm_window(entries))


def stops_from_rollups(experiment: ExperimentConfig, window: RollupWindow
                       ) -> tuple[GuardrailStop, ...]:
    """The arms to stop, from a window's aggregates grouped by arm: on a guarded metric (error
    rate, success rate, mean rating) the interval of arm − control at the guardrails' alpha lies
    wholly on the bad side of 0, with at least `guardrails.min_requests` observations of that
    metric in each of the two arms."""
    return _stops(experiment, arm_groups(experiment, window)[0])


def _stops(experiment: ExperimentConfig, by_arm: Mapping[str, RollupGroup]
           ) -> tuple[GuardrailStop, ...]:
    rails = experiment.guardrails
    if not rails.enabled:
        return ()
    rho = mixture_rho(rails.alpha, experiment.horizon)
    stops = []
    for arm, group in by_arm.items():
        if arm == experiment.control:
            continue
        for metric in METRICS:
            base, other = metric.sample(by_arm[experiment.control]), metric.sample(group)
            if (not metric.guarded or base is None or other is None
                    or min(base.n, other.n) < rails.min_requests):
                continue
            diff = difference(base, other, rails.alpha, rho)
            if significantly_worse(diff, higher_is_better=metric.higher_is_better):
                stops.append(GuardrailStop(arm, metric.name, diff))
    return tuple(stops)


def report_dict(report: ExperimentReport, window: dict[str, str] | None = None) -> dict[str, Any]:
    """A JSON-ready view (floats; None for an unbounded side or a missing number)."""
    experiment = report.experiment
    return {
        "experiment": experiment.name, "status": report.status, "control": experiment.control,
        "alpha": experiment.alpha, **({"window": window} if window else {}),
        "arms": [_arm_dict(a) for a in report.arms],
        "comparisons": [{"arm": c.arm, "metrics": [_comparison_dict(m) for m in c.metrics]}
                        for c in report.comparisons],
        "guardrail_stops": [{"arm": s.arm, "metric": s.metric, **_difference_dict(s.difference)}
                            for s in report.stops],
        "unknown_arms": dict(report.unknown_arms),
    }


def _estimate_dict(estimate: Estimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    return {"value": estimate.value, "low": estimate.interval.low, "high": estimate.interval.high,
            "n": estimate.n}


def _arm_dict(arm: ArmSummary) -> dict[str, Any]:
    counts = ("arm", "policy", "share", "requests", "errors", "judged", "rated", "priced")
    estimates = ("error_rate", "success_rate", "mean_rating", "cost_per_request", "latency_p50",
                 "latency_p95", "cost_per_quality_point")
    return {**{k: getattr(arm, k) for k in counts},
            **{k: _estimate_dict(getattr(arm, k)) for k in estimates}}


def _difference_dict(diff: Difference) -> dict[str, Any]:
    return {"difference": diff.estimate, "low": diff.interval.low, "high": diff.interval.high,
            "p_value": diff.p_value}


def _comparison_dict(metric: MetricComparison) -> dict[str, Any]:
    out = {"metric": metric.metric, **_difference_dict(metric.comparison.difference),
           "verdict": metric.comparison.verdict, "more_requests": metric.more_requests}
    if metric.non_inferiority is not None:
        out["non_inferiority"] = {"verdict": metric.non_inferiority,
                                  "margin": metric.non_inferiority_margin,
                                  "more_requests": metric.non_inferiority_more_requests}
    return out


"""An experiment's report from ledger entries (pure): per-arm numbers with always-valid intervals,
each arm compared with the control (verdict, non-inferiority on quality, how many more requests
would decide it), the guardrails' stops, and a JSON-ready view for the dashboard.

Definitions (the statistics are in `stats`):

- an entry belongs to arm A of experiment E when its `experiment_arm` is "E:A"; entries labelled
  with an arm the configuration does not have are counted in `unknown_arms` and left out;
- error rate: entries with status "error" over all the arm's entries;
- success rate (quality): `task_success` True over the entries that have it (True or False).
  Entries without feedback are left out; there is no fallback (an answered request is not a
  solved task, and errors are measured by the error rate), as in `llmroute report`;
- mean rating (quality): the mean `user_rating` (1–5) over rated entries;
- cost per request: the mean `cost_usd` over priced entries (unpriced ones are left out, never $0);
- latency p50/p95: nearest-rank percentiles of `latency_s` over all entries, errors included;
- cost per quality point: Σ cost_usd / Σ user_rating over entries both priced and rated.

The verdicts compare each arm with the control on success rate, mean rating, error rate and cost
per request; "more requests" converts the observations a metric still needs into requests at the
arm pair's current rate of observation (feedback is given on only some requests).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..ledger.entry import LedgerEntry
from ..reports.aggregate import nearest_rank
from .experiments import ExperimentConfig, is_active, parse_arm_label
from .stats import (
    Comparison,
    Difference,
    Estimate,
    NonInferiorityVerdict,
    Sample,
    compare,
    difference,
    mean_interval,
    mixture_rho,
    non_inferiority,
    proportion_interval,
    quantile_interval,
    ratio_estimate,
    shortfall,
    significantly_worse,
)


@dataclass(frozen=True)
class Metric:
    """A compared metric: how a sample is drawn from an arm's entries, which way is better, the
    margin within which a difference counts as none, and whether it measures quality."""

    name: str
    sample: Callable[[Sequence[LedgerEntry]], Sample | None]
    higher_is_better: bool
    margin: Callable[[ExperimentConfig, Sample], float]
    quality: bool
    guarded: bool


def _errors(entries: Sequence[LedgerEntry]) -> Sample | None:
    failed = sum(e.status == "error" for e in entries)
    return Sample.of_counts(failed, len(entries)) if entries else None


def _successes(entries: Sequence[LedgerEntry]) -> Sample | None:
    judged = [e.task_success for e in entries if e.task_success is not None]
    return Sample.of_counts(sum(judged), len(judged)) if judged else None


def _ratings(entries: Sequence[LedgerEntry]) -> Sample | None:
    rated = [float(e.user_rating) for e in entries if e.user_rating is not None]
    return Sample.of_values(rated) if rated else None


def _costs(entries: Sequence[LedgerEntry]) -> Sample | None:
    priced = [float(e.cost_usd) for e in entries if e.cost_usd is not None]
    return Sample.of_values(priced) if priced else None


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


def build_experiment_report(experiment: ExperimentConfig, entries: Iterable[LedgerEntry],
                            now: datetime) -> ExperimentReport:
    """The report of `experiment` over `entries` (the window read from the ledger) at `now`."""
    by_arm, unknown = split_by_arm(experiment, entries)
    rho = mixture_rho(experiment.alpha, experiment.horizon)
    arms = tuple(summarize_arm(experiment, name, by_arm[name], rho) for name in experiment.arms)
    control = by_arm[experiment.control]
    comparisons = tuple(compare_arm(experiment, control, name, by_arm[name], rho)
                        for name in experiment.arms if name != experiment.control and by_arm[name])
    return ExperimentReport(experiment, _status(experiment, now), arms, comparisons,
                            _stops(experiment, by_arm),
                            tuple(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))))


def _status(experiment: ExperimentConfig, now: datetime) -> str:
    if not experiment.enabled:
        return "stopped (kill switch)"
    if not is_active(experiment, now) and experiment.ends is not None:
        return f"ended {experiment.ends.isoformat()}"
    return "running"


def summarize_arm(experiment: ExperimentConfig, arm: str, entries: Sequence[LedgerEntry],
                  rho: float) -> ArmSummary:
    """One arm's numbers with their always-valid intervals at the experiment's alpha."""
    alpha = experiment.alpha
    errors = sum(e.status == "error" for e in entries)
    judged = [e.task_success for e in entries if e.task_success is not None]
    ratings = _ratings(entries)
    costs = _costs(entries)
    latencies = [e.latency_s for e in entries]
    pairs = [(float(e.cost_usd), float(e.user_rating)) for e in entries
             if e.cost_usd is not None and e.user_rating is not None]
    return ArmSummary(
        arm=arm, policy=experiment.arms[arm].policy, share=experiment.share(arm),
        requests=len(entries), errors=errors,
        error_rate=_proportion(errors, len(entries), alpha, rho),
        judged=len(judged), success_rate=_proportion(sum(judged), len(judged), alpha, rho),
        rated=0 if ratings is None else ratings.n, mean_rating=_mean(ratings, alpha, rho),
        priced=0 if costs is None else costs.n, cost_per_request=_mean(costs, alpha, rho),
        latency_p50=_quantile(latencies, 50, alpha, rho),
        latency_p95=_quantile(latencies, 95, alpha, rho),
        cost_per_quality_point=ratio_estimate([c for c, _ in pairs], [r for _, r in pairs],
                                              alpha, rho),
    )


def _proportion(successes: int, n: int, alpha: float, rho: float) -> Estimate | None:
    return Estimate(successes / n, proportion_interval(successes, n, alpha, rho), n) if n else None


def _mean(sample: Sample | None, alpha: float, rho: float) -> Estimate | None:
    return None if sample is None else Estimate(sample.mean, mean_interval(sample, alpha, rho),
                                                sample.n)


def _quantile(values: Sequence[float], percent: int, alpha: float, rho: float) -> Estimate | None:
    value = nearest_rank(values, percent)
    if value is None:
        return None
    return Estimate(value, quantile_interval(values, percent / 100, alpha, rho), len(values))


def compare_arm(experiment: ExperimentConfig, control: Sequence[LedgerEntry], arm: str,
                entries: Sequence[LedgerEntry], rho: float) -> ArmComparison:
    """`arm` against the control on every metric both can be measured on."""
    found = (_compare_metric(experiment, metric, control, entries, rho) for metric in METRICS)
    return ArmComparison(arm, tuple(m for m in found if m is not None))


def _compare_metric(experiment: ExperimentConfig, metric: Metric, control: Sequence[LedgerEntry],
                    entries: Sequence[LedgerEntry], rho: float) -> MetricComparison | None:
    base, other = metric.sample(control), metric.sample(entries)
    if base is None or other is None:
        return None
    margin = metric.margin(experiment, base)
    result = compare(base, other, alpha=experiment.alpha, rho=rho, margin=margin,
                     higher_is_better=metric.higher_is_better, min_samples=experiment.min_samples)
    per_observation = (len(control) + len(entries)) / (base.n + other.n)
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
    """The arms to stop: on a guarded metric (error rate, success rate, mean rating) the interval
    of arm − control at the guardrails' alpha lies wholly on the bad side of 0, with at least
    `guardrails.min_requests` observations of that metric in each of the two arms."""
    return _stops(experiment, split_by_arm(experiment, entries)[0])


def _stops(experiment: ExperimentConfig, by_arm: dict[str, list[LedgerEntry]]
           ) -> tuple[GuardrailStop, ...]:
    rails = experiment.guardrails
    if not rails.enabled:
        return ()
    rho = mixture_rho(rails.alpha, experiment.horizon)
    stops = []
    for arm, entries in by_arm.items():
        if arm == experiment.control:
            continue
        for metric in METRICS:
            base, other = metric.sample(by_arm[experiment.control]), metric.sample(entries)
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


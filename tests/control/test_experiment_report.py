"""The experiment report on the fixture ledger (experiment_fixture.py), read back from SQLite with
the store's query(), checked against hand-computed values.

Worked by hand (α = 0.05, tuned for 1000: ρ = 126.00561; c(n) = sqrt((1 + ρ/n) ln((n + ρ)/(ρα²)))
gives c(50) = 4.718793, c(100) = 3.855055, c(200) = 3.363888, c(400) = 3.123779):

- base success 80/100, Wilson with c(100): [0.612159, 0.910209]; cheap 79/100: [0.601240, 0.903716]
- base errors 10/200, Wilson with c(200): [0.018202, 0.129992]; cheap 30/200: [0.084015, 0.253470]
- base rating 4.5, s² = 0.255102: 4.5 ± 4.718793·0.0714286 = [4.162943, 4.837057]
- base latency 0.01..2.00: p50 1.00 in ranks [76, 124] -> [0.76, 1.24]; p95 1.90 in [179, 201]:
  [1.79, unbounded]
- base cost per quality point 0.15/225 = 0.000666667; residuals c − R·r of ±0.0013333 (26) and
  ±0.00066667 (24): SE = sqrt(5.688889e-5 / 2450) / 4.5 = 3.386243e-5, ± c(50)·SE = ±0.00015979
- cheap − base, success: −0.01, p̃ = 81/102 and 80/102, SE 0.0576767, ± c(200)·SE:
  [−0.204018, 0.184018]; undecided at margin 0.02: the half-width must reach 0.01, i.e. 83,196
  judged requests in all, 82,996 more, 165,992 requests at 2 requests per judged one
- rating: −0.02, SE 0.1009748, ± c(100)·SE: [−0.409264, 0.369264], inside ±0.5: not different,
  and no worse at margin 0.5
- errors: +0.10, p̃ = 11/202 and 31/202, SE 0.0301168, ± c(400)·SE: [0.005922, 0.194078]: worse,
  p = 0.030884; at the guardrails' α = 0.01 (ρ = 86.70) the interval is [−0.009857, 0.209857]:
  no stop
- cost per request: −0.00225, SE 7.523847e-5, ± c(360)·SE: [−0.00248686, −0.00201314]: better
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from llmroute.control.experiment_report import (
    ExperimentReport,
    build_experiment_report,
    guardrail_stops,
    report_dict,
    split_by_arm,
)
from llmroute.control.experiments import ExperimentConfig
from llmroute.control.stats import Estimate
from llmroute.ledger.sketch import ALPHA

from .experiment_fixture import BASE, EXPERIMENT, fixture_entries, read_ledger, write_ledger

approx = pytest.approx


def experiment(**changes: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate({**EXPERIMENT, **changes})


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ExperimentReport:
    url = write_ledger(tmp_path_factory.mktemp("ledger"), fixture_entries())
    entries = read_ledger(url)
    assert len(entries) == 407
    return build_experiment_report(experiment(), entries, BASE + timedelta(days=1))


def bounds(estimate: Estimate | None) -> tuple[float, float | None, float | None]:
    assert estimate is not None
    return estimate.value, estimate.interval.low, estimate.interval.high


def test_arm_counts(report: ExperimentReport) -> None:
    base, cheap = report.arms
    assert (base.arm, base.policy, base.share, base.requests, base.errors, base.judged, base.rated,
            base.priced) == ("base", "default", 0.5, 200, 10, 100, 50, 190)
    assert (cheap.requests, cheap.errors, cheap.judged, cheap.rated, cheap.priced) == (
        200, 30, 100, 50, 170)
    assert report.unknown_arms == (("old", 2),) and report.status == "running"


def test_arm_intervals_by_hand(report: ExperimentReport) -> None:
    base, cheap = report.arms
    tol = {"abs": 1e-6}
    assert bounds(base.success_rate) == (0.8, approx(0.612159, **tol), approx(0.910209, **tol))
    assert bounds(cheap.success_rate) == (0.79, approx(0.601240, **tol), approx(0.903716, **tol))
    assert bounds(base.error_rate) == (0.05, approx(0.018202, **tol), approx(0.129992, **tol))
    assert bounds(cheap.error_rate) == (0.15, approx(0.084015, **tol), approx(0.253470, **tol))
    assert bounds(base.mean_rating) == (4.5, approx(4.162943, **tol), approx(4.837057, **tol))
    # latency comes from the arm's sketch: the order statistics of the hand-worked ranks, each
    # within the sketch's 1 % (ledger.sketch.ALPHA), no longer exact
    sketch = {"rel": ALPHA}
    assert bounds(base.latency_p50) == (approx(1.0, **sketch), approx(0.76, **sketch),
                                        approx(1.24, **sketch))
    assert bounds(base.latency_p95) == (approx(1.9, **sketch), approx(1.79, **sketch), None)
    assert bounds(cheap.latency_p50) == (approx(0.5, **sketch), approx(0.38, **sketch),
                                         approx(0.62, **sketch))
    value, low, high = bounds(base.cost_per_quality_point)
    assert value == approx(0.15 / 225)
    assert (low, high) == (approx(0.15 / 225 - 0.00015979, abs=1e-8),
                           approx(0.15 / 225 + 0.00015979, abs=1e-8))
    assert bounds(cheap.cost_per_quality_point)[0] == approx(0.0375 / 224)
    assert bounds(base.cost_per_request)[0] == approx(0.003)
    assert bounds(cheap.cost_per_request)[0] == approx(0.00075)


def test_comparisons_and_verdicts_by_hand(report: ExperimentReport) -> None:
    (cheap,) = report.comparisons
    assert cheap.arm == "cheap"
    assert [m.metric for m in cheap.metrics] == [
        "success_rate", "mean_rating", "error_rate", "cost_per_request"]
    expected = {  # metric: (difference, low, high, tolerance, verdict, more requests)
        "success_rate": (-0.01, -0.204018, 0.184018, 1e-6, "not enough data yet", 165_992),
        "mean_rating": (-0.02, -0.409264, 0.369264, 1e-6, "not different", 0),
        "error_rate": (0.10, 0.005922, 0.194078, 1e-6, "worse", 0),
        "cost_per_request": (-0.00225, -0.00248686, -0.00201314, 1e-8, "better", 0),
    }
    for metric in cheap.metrics:
        diff = metric.comparison.difference
        estimate, low, high, tol, verdict, more = expected[metric.metric]
        assert diff.estimate == approx(estimate)
        assert (diff.interval.low, diff.interval.high) == (approx(low, abs=tol), approx(high, abs=tol))
        assert (metric.comparison.verdict, metric.more_requests) == (verdict, more)
    errors = cheap.get("error_rate")
    assert errors is not None and errors.comparison.difference.p_value == approx(0.030884, abs=1e-6)


def test_non_inferiority_on_quality(report: ExperimentReport) -> None:
    (cheap,) = report.comparisons
    success, rating = cheap.get("success_rate"), cheap.get("mean_rating")
    assert success is not None and rating is not None
    assert (success.non_inferiority, success.non_inferiority_margin,
            success.non_inferiority_more_requests) == ("undecided", 0.02, 165_992)
    assert (rating.non_inferiority, rating.non_inferiority_margin) == ("no worse", 0.5)
    cost = cheap.get("cost_per_request")
    assert cost is not None and cost.non_inferiority is None
    # a 25-point margin is wider than the interval's reach (low -0.204): no worse
    wide = build_experiment_report(experiment(non_inferiority_margin=0.25), fixture_entries(), BASE)
    assert wide.comparisons[0].metrics[0].non_inferiority == "no worse"


def test_guardrails() -> None:
    entries = fixture_entries()
    assert guardrail_stops(experiment(), entries) == ()  # [-0.0099, 0.2099] at α = 0.01
    stops = guardrail_stops(experiment(guardrails={"alpha": 0.05}), entries)
    assert [(s.arm, s.metric) for s in stops] == [("cheap", "error_rate")]
    assert stops[0].difference.interval.low == approx(0.005922, abs=1e-6)
    assert guardrail_stops(experiment(guardrails={"alpha": 0.05, "min_requests": 201}), entries) == ()
    assert guardrail_stops(experiment(guardrails={"alpha": 0.05, "enabled": False}), entries) == ()


def test_status_kill_switch_end_and_an_empty_arm() -> None:
    entries = fixture_entries()
    assert build_experiment_report(experiment(enabled=False), entries, BASE).status == \
        "stopped (kill switch)"
    ended = build_experiment_report(experiment(ends="2025-01-01T00:00:00Z"), entries, BASE)
    assert ended.status == "ended 2025-01-01T00:00:00+00:00"
    three = experiment(arms={**EXPERIMENT["arms"], "new": {"policy": "llm"}})
    result = build_experiment_report(three, entries, BASE)
    assert [a.arm for a in result.arms] == ["base", "cheap", "new"]
    new = result.arms[2]
    assert new.requests == 0 and new.success_rate is None and new.latency_p50 is None
    assert [c.arm for c in result.comparisons] == ["cheap"]  # nothing to compare "new" on


def test_split_by_arm_ignores_other_experiments() -> None:
    by_arm, unknown = split_by_arm(experiment(), fixture_entries())
    assert {arm: len(v) for arm, v in by_arm.items()} == {"base": 200, "cheap": 200}
    assert dict(unknown) == {"old": 2}


def test_report_dict_is_json_ready(report: ExperimentReport) -> None:
    import json

    data = json.loads(json.dumps(report_dict(report, {"since": "a", "until": "b"})))
    assert data["experiment"] == "cheap-vs-default" and data["window"] == {"since": "a", "until": "b"}
    assert data["arms"][0]["latency_p95"]["high"] is None
    success = data["comparisons"][0]["metrics"][0]
    assert success["verdict"] == "not enough data yet" and success["more_requests"] == 165_992
    assert success["non_inferiority"] == {"verdict": "undecided", "margin": 0.02,
                                          "more_requests": 165_992}
    assert data["guardrail_stops"] == [] and data["unknown_arms"] == {"old": 2}


def test_report_works_without_feedback(tmp_path: Path) -> None:
    plain = [e for e in fixture_entries() if e.task_success is None and e.user_rating is None]
    result = build_experiment_report(experiment(), plain, BASE)
    assert result.arms[0].success_rate is None and result.arms[0].cost_per_quality_point is None
    assert [m.metric for m in result.comparisons[0].metrics] == ["error_rate", "cost_per_request"]

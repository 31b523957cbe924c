"""Experiment reports and alert tallies at ledger scale, on SQLite and PostgreSQL: the report from
`Store.rollups("arm", ...)` equals the report from the same entries in memory (counts and verdicts
exact, means and intervals to 1e-9 relative), and agrees with the numbers computed straight from the
entries' values (latency percentiles and their bounds within the sketch's 1 %); the alert
evaluator's slices, tallied batch by batch over `Store.iterate`, equal the tallies of the window's
entries."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ledger_factories import make_entry

from llmroute.control.alert_evaluator import _LedgerSlices
from llmroute.control.alert_tallies import FeedbackTally, tally
from llmroute.control.alerts_config import GroupBy
from llmroute.control.experiment_report import (
    ArmSummary,
    ExperimentReport,
    build_experiment_report,
    guardrail_stops,
    report_from_rollups,
    split_by_arm,
    stops_from_rollups,
)
from llmroute.control.experiments import ExperimentConfig
from llmroute.control.stats import (
    Estimate,
    Interval,
    Sample,
    mean_interval,
    mixture_rho,
    quantile_interval,
    ratio_estimate,
)
from llmroute.ledger import LedgerEntry, Store
from llmroute.ledger.reads import InlineReads
from llmroute.ledger.sketch import ALPHA
from llmroute.reports.aggregate import nearest_rank

START = datetime(2025, 3, 1, tzinfo=UTC)
#: Two experiments over three days; "ab:gone" is an arm the configuration does not have.
AB = ExperimentConfig.model_validate({
    "name": "ab", "control": "base", "rating_margin": 0.5, "min_samples": 20,
    "arms": {"base": {"policy": "p1"}, "cheap": {"policy": "p2"}, "idle": {"policy": "p3"}}})
XY = ExperimentConfig.model_validate({
    "name": "xy", "control": "x", "arms": {"x": {"policy": "p1"}, "y": {"policy": "p2"}},
    "guardrails": {"alpha": 0.2, "min_requests": 5}})
LABELS = ("ab:base", "ab:cheap", "ab:gone", "xy:x", "xy:y", None, "")
#: Per label: error share, success share, mean cost, latency scale (the arms differ).
PROFILE: dict[str | None, tuple[float, float, float, float]] = {
    "ab:base": (0.05, 0.8, 0.004, 1.0), "ab:cheap": (0.12, 0.7, 0.001, 0.6),
    "xy:x": (0.02, 0.9, 0.002, 0.8), "xy:y": (0.3, 0.4, 0.002, 2.0)}


def random_experiment_ledger(seed: int, n: int) -> list[LedgerEntry]:
    """Entries over three days: continuous latencies and costs, unpriced errors, sparse ratings
    and success feedback, arms of two experiments, an unknown arm and unlabelled traffic."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = rng.choice(LABELS)
        errors, success, cost, scale = PROFILE.get(label, (0.1, 0.5, 0.003, 1.0))
        ok = rng.random() >= errors
        priced = ok and rng.random() < 0.9
        rows.append(make_entry(
            i, ts=START + timedelta(seconds=rng.uniform(0, 3 * 86400)), experiment_arm=label,
            status="ok" if ok else "error", http_status=200 if ok else 502,
            policy=rng.choice(["p1", "p2"]), latency_s=scale * rng.lognormvariate(0, 0.7),
            cost_usd=Decimal(f"{rng.uniform(0.2, 1.8) * cost:.9f}") if priced else None,
            user_rating=rng.choice([1, 2, 3, 4, 5]) if rng.random() < 0.3 else None,
            task_success=(rng.random() < success) if rng.random() < 0.4 else None))
    return rows


def close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


def same_estimate(a: Estimate | None, b: Estimate | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return (a.n == b.n and close(a.value, b.value, rel) and close(a.interval.low, b.interval.low, rel)
            and close(a.interval.high, b.interval.high, rel))


COUNTS = ("arm", "policy", "share", "requests", "errors", "judged", "rated", "priced")
ESTIMATES = ("error_rate", "success_rate", "mean_rating", "cost_per_request", "latency_p50",
             "latency_p95", "cost_per_quality_point")


def assert_same_report(found: ExperimentReport, expected: ExperimentReport) -> None:
    """Counts, verdicts and how many more requests exactly; every number to 1e-9 relative."""
    assert (found.status, found.unknown_arms) == (expected.status, expected.unknown_arms)
    for arm, want in zip(found.arms, expected.arms, strict=True):
        assert [getattr(arm, k) for k in COUNTS] == [getattr(want, k) for k in COUNTS]
        for name in ESTIMATES:
            assert same_estimate(getattr(arm, name), getattr(want, name)), (arm.arm, name)
    for comparison, want_c in zip(found.comparisons, expected.comparisons, strict=True):
        assert comparison.arm == want_c.arm
        for metric, want_m in zip(comparison.metrics, want_c.metrics, strict=True):
            a, b = metric.comparison.difference, want_m.comparison.difference
            assert (metric.metric, metric.comparison.verdict, metric.more_requests,
                    metric.non_inferiority, metric.non_inferiority_more_requests) == (
                want_m.metric, want_m.comparison.verdict, want_m.more_requests,
                want_m.non_inferiority, want_m.non_inferiority_more_requests)
            assert close(a.estimate, b.estimate) and close(a.std_error, b.std_error)
            assert close(a.interval.low, b.interval.low) and close(a.interval.high, b.interval.high)
            assert close(a.p_value, b.p_value)
    assert [(s.arm, s.metric) for s in found.stops] == [(s.arm, s.metric) for s in expected.stops]


def within_sketch(found: float | None, exact: float | None) -> bool:
    if found is None or exact is None:
        return found is exact
    return abs(found - exact) <= ALPHA * exact + 1e-12


def assert_matches_values(summary: ArmSummary, entries: list[LedgerEntry], experiment: ExperimentConfig
                          ) -> None:
    """The arm's numbers against the definitions over the entries' values: means and the ratio from
    the values themselves, latency from the exact order statistics (within the sketch's 1 %)."""
    alpha, rho = experiment.alpha, mixture_rho(experiment.alpha, experiment.horizon)
    costs = [float(e.cost_usd) for e in entries if e.cost_usd is not None]
    if costs:
        sample = Sample.of_values(costs)
        assert summary.cost_per_request is not None
        assert close(summary.cost_per_request.value, sample.mean)
        interval = mean_interval(sample, alpha, rho)
        assert close(summary.cost_per_request.interval.low, interval.low, 1e-6)
        assert close(summary.cost_per_request.interval.high, interval.high, 1e-6)
    pairs = [(float(e.cost_usd), float(e.user_rating)) for e in entries
             if e.cost_usd is not None and e.user_rating is not None]
    ratio = ratio_estimate([a for a, _ in pairs], [b for _, b in pairs], alpha, rho)
    assert same_estimate(summary.cost_per_quality_point, ratio, 1e-6)
    latencies = [e.latency_s for e in entries]
    for percent, found in ((50, summary.latency_p50), (95, summary.latency_p95)):
        exact = nearest_rank(latencies, percent)
        if found is None or exact is None:
            assert found is None and exact is None
            continue
        bounds: Interval = quantile_interval(latencies, percent / 100, alpha, rho)
        assert within_sketch(found.value, exact)
        assert within_sketch(found.interval.low, bounds.low)
        assert within_sketch(found.interval.high, bounds.high)


async def window_reports(store: Store, rows: list[LedgerEntry], since: datetime, until: datetime,
                         now: datetime) -> None:
    window = await store.rollups("arm", since, until)
    inside = [e for e in rows if since <= e.ts < until]
    for experiment in (AB, XY):
        found = report_from_rollups(experiment, window, now)
        assert_same_report(found, build_experiment_report(experiment, inside, now))
        assert stops_from_rollups(experiment, window) == found.stops
        assert [(s.arm, s.metric) for s in guardrail_stops(experiment, inside)] == \
            [(s.arm, s.metric) for s in found.stops]
        by_arm, unknown = split_by_arm(experiment, inside)
        assert found.unknown_arms == tuple(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))
        for summary in found.arms:
            assert summary.requests == len(by_arm[summary.arm])
            assert_matches_values(summary, by_arm[summary.arm], experiment)


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(3))
async def test_reports_from_rollups_equal_reports_from_entries(store: Store, seed: int) -> None:
    rows = random_experiment_ledger(seed, 1500)
    await store.write(rows)
    rng = random.Random(500 + seed)
    now = START + timedelta(days=4)
    # the whole ledger (day rollups), then windows with raw edges, hour and day rollups between
    await window_reports(store, rows, START, START + timedelta(days=3), now)
    for _ in range(2):
        since = START + timedelta(seconds=rng.uniform(0, 86400))
        until = since + timedelta(seconds=rng.uniform(3600, 2 * 86400))
        await window_reports(store, rows, since, until, now)


@pytest.mark.asyncio
async def test_late_feedback_moves_the_report(store: Store) -> None:
    rows = random_experiment_ledger(7, 400)
    await store.write(rows)
    changed = {e.request_id: replace(e, user_rating=5, task_success=True) for e in rows[:120]
               if e.experiment_arm and e.experiment_arm.startswith("ab:")}
    for request_id in changed:
        assert await store.feedback(request_id, rating=5, success=True)
    now = START + timedelta(days=4)
    window = await store.rollups("arm", START, START + timedelta(days=3))
    updated = [changed.get(e.request_id, e) for e in rows]
    assert_same_report(report_from_rollups(AB, window, now),
                       build_experiment_report(AB, updated, now))


@pytest.mark.asyncio
async def test_a_report_needs_rollups_by_arm(store: Store) -> None:
    window = await store.rollups("model", START, START + timedelta(days=1))
    with pytest.raises(ValueError, match="by arm"):
        report_from_rollups(AB, window, START)


@pytest.mark.asyncio
async def test_alert_slices_fold_batches_into_the_window_tallies(store: Store) -> None:
    rows = random_experiment_ledger(11, 700)
    await store.write(rows)
    slices = _LedgerSlices(InlineReads(store), batch_size=37)
    since, until = START + timedelta(hours=5, minutes=7), START + timedelta(days=2, hours=3)
    inside = [e for e in rows if since <= e.ts < until]
    groupings: tuple[GroupBy, ...] = ("global", "model", "policy", "key")
    for by in groupings:
        assert await slices.tallies(since, until, by) == tally(inside, by)
        assert await slices.tallies(since, until, by) is await slices.tallies(since, until, by)
    # spend and feedback come from the rollups: the same numbers as the entries' tallies
    for by in groupings:
        spend = await slices.spend(since, until, by)
        assert spend == {s: t.spend for s, t in tally(inside, by).items()}, by
    expected = {s: FeedbackTally(t.rated, t.rating_sum, t.judged, t.successes)
                for s, t in tally(inside, "policy").items()}
    assert await slices.feedback(since, until) == expected
    assert await slices.spend(START - timedelta(days=9), START - timedelta(days=8), "global") == {}

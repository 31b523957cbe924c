"""`GatewayMetrics.observe`'s shortcut for the common request (one successful try of the answering
model: its attempt child kept on the row, no fallback test) and its unrolled token counts (issue 17,
cut17d) expose exactly what the former per-metric updates exposed, kept here verbatim over the
prometheus children (`.labels()`), for any mix of attempts (skipped, the LLM router's, failed,
other models, none), statuses, missing labels and numbers."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from helpers import metrics_text
from llmroute.ledger.entry import AttemptRecord, LedgerEntry
from llmroute.metrics import TOKEN_KINDS, GatewayMetrics


def _before(m: GatewayMetrics, rows: set[tuple[str, ...]], entry: LedgerEntry) -> None:
    """The former `observe`, over the children themselves (a row's children made at its first
    request, as `_Row.of` makes them)."""
    labels = (entry.model or "-", entry.tier or "-", entry.policy or "-", entry.key_name or "-")
    model = labels[0]
    if (*labels, entry.status) not in rows:
        rows.add((*labels, entry.status))
        m.requests.labels(*labels, entry.status)
        m.latency.labels(model, labels[1])
        for kind in TOKEN_KINDS:
            m.tokens.labels(model, kind)
        m.cost.labels(*labels)
        m.baseline.labels(*labels)
    m.requests.labels(*labels, entry.status).inc()
    if entry.status == "error":
        m.errors.labels(entry.error_type or "-", entry.error_code or "-").inc()
    for attempt in entry.attempts:
        m.attempts.labels(attempt.model, attempt.error_kind or "ok").inc()
    if entry.fallback:
        m.fallbacks.labels(*labels).inc()
    m.latency.labels(model, labels[1]).observe(entry.latency_s)
    if entry.ttft_s is not None:
        m.ttft.labels(model).observe(entry.ttft_s)
    for kind, value in zip(TOKEN_KINDS, (entry.input_tokens, entry.output_tokens,
                                         entry.cached_tokens, entry.cache_write_tokens), strict=True):
        if value:
            m.tokens.labels(model, kind).inc(value)
    if entry.cost_usd is not None:
        m.cost.labels(*labels).inc(float(entry.cost_usd))
    elif entry.status == "ok":
        m.unpriced.labels(model).inc()
    if entry.baseline_cost_usd is not None:
        m.baseline.labels(*labels).inc(float(entry.baseline_cost_usd))
    if entry.cache is not None:
        m.cache.labels(entry.cache).inc()
    if entry.cache_saved_usd is not None:
        m.cache_saved.labels(model).inc(float(entry.cache_saved_usd))


def _attempt(rng: random.Random, model: str | None) -> AttemptRecord:
    return AttemptRecord(rng.choice([model or "m1", model or "-", "m2", "m9", "-"]),
                         rng.choice([None, None, None, "server", "timeout", "cooldown"]),
                         skipped=rng.random() < 0.15, router=rng.random() < 0.15)


def _entries(seed: int, n: int) -> list[LedgerEntry]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ok = rng.random() < 0.8
        model = rng.choice(["m1", "m2", "-", None, ""])
        count = rng.choice([0, 1, 1, 1, 1, 2, 3])
        attempts = tuple(_attempt(rng, model) for _ in range(count))
        if rng.random() < 0.5 and model:  # the common request, often
            attempts = (AttemptRecord(model, None, latency_s=0.01),)
        out.append(LedgerEntry(
            request_id=f"r{i}", ts=datetime.now(UTC), status="ok" if ok else "error",
            http_status=200 if ok else 502, key_name=rng.choice(["k1", None]),
            model=model or None, tier=rng.choice(["simple", None]),
            policy=rng.choice(["default", None]), latency_s=rng.random() * rng.choice([0.01, 3]),
            ttft_s=rng.choice([None, rng.random()]), attempts=attempts,
            error_type=None if ok else rng.choice(["upstream_error", None]),
            error_code=None if ok else rng.choice(["server", None]),
            input_tokens=rng.choice([None, 0, rng.randint(1, 900)]),
            output_tokens=rng.choice([None, 0, rng.randint(1, 90)]),
            cached_tokens=rng.choice([None, 0, 7]), cache_write_tokens=rng.choice([None, 0, 3]),
            cost_usd=rng.choice([None, Decimal(rng.randint(1, 10**6)).scaleb(-9)]),
            baseline_cost_usd=rng.choice([None, Decimal("0.00031")]),
            cache=rng.choice([None, "miss", "hit"]),
            cache_saved_usd=rng.choice([None, Decimal("0.0001")])))
    return out


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_observe_exposes_what_the_per_metric_updates_exposed(keep: bool, seed: int) -> None:
    now, before = GatewayMetrics(keep=keep), GatewayMetrics(keep=False)
    rows: set[tuple[str, ...]] = set()
    entries = _entries(seed, 600)
    for start in range(0, len(entries), 150):  # compared between batches too
        for entry in entries[start:start + 150]:
            now.observe(entry)
            _before(before, rows, entry)
        assert metrics_text(now) == metrics_text(before)
    assert 'result="ok"' in metrics_text(now) and "llmroute_fallbacks_total{" in metrics_text(now)


def test_no_ok_attempt_child_is_shown_before_a_successful_try() -> None:
    """The row's attempt child is made at its first successful try, not with the row: a model
    that only failed shows no `result="ok"` series."""
    metrics = GatewayMetrics()
    metrics.observe(LedgerEntry(request_id="r", ts=datetime.now(UTC), status="error",
                                http_status=502, model="m1", latency_s=0.1,
                                attempts=(AttemptRecord("m1", "server"),)))
    assert 'llmroute_upstream_attempts_total{model="m1",result="ok"}' not in metrics_text(metrics)
    assert 'llmroute_upstream_attempts_total{model="m1",result="server"} 1.0' in metrics_text(metrics)

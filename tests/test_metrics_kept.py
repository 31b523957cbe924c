"""Kept metric numbers (`metrics_kept`, issue 17): what a collection sees is exactly what the
prometheus children would hold had every request updated them directly."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from helpers import metrics_text
from llmroute.ledger.entry import AttemptRecord, LedgerEntry
from llmroute.metrics import GatewayMetrics


def _entries(n: int) -> list[LedgerEntry]:
    rng = random.Random(17)
    out = []
    for i in range(n):
        ok = rng.random() < 0.85
        model = rng.choice(["m1", "m2", "m3"])
        first = rng.choice([model, "m9"])
        out.append(LedgerEntry(
            request_id=f"r{i}", ts=datetime.now(UTC), status="ok" if ok else "error",
            http_status=200 if ok else 502, key_name=rng.choice(["k1", "k2"]), model=model,
            tier=rng.choice(["simple", "complex"]), policy="default",
            latency_s=rng.choice([rng.random() * 0.02, rng.random() * 3, 200.0, 0.005]),
            ttft_s=rng.choice([None, rng.random()]),
            attempts=(AttemptRecord(first, None if ok else "server"),
                      *((AttemptRecord(model, None),) if first != model else ())),
            error_type=None if ok else "upstream_error", error_code=None if ok else "server",
            input_tokens=rng.randint(0, 900), output_tokens=rng.choice([None, rng.randint(1, 90)]),
            cached_tokens=rng.choice([None, 0, 7]),
            cost_usd=rng.choice([None, Decimal(rng.randint(1, 10**6)).scaleb(-9)]),
            baseline_cost_usd=rng.choice([None, Decimal("0.00031")]),
            cache=rng.choice([None, "miss", "hit"]),
            cache_saved_usd=rng.choice([None, Decimal("0.0001")])))
    return out


def test_kept_numbers_collect_exactly_as_direct_updates() -> None:
    kept, direct = GatewayMetrics(keep=True), GatewayMetrics(keep=False)
    entries = _entries(3000)
    for start in range(0, len(entries), 700):  # collected between batches too
        for entry in entries[start:start + 700]:
            kept.observe(entry)
            direct.observe(entry)
        assert metrics_text(kept) == metrics_text(direct)
    assert "llmroute_requests_total{" in metrics_text(kept)
    assert kept.registry.get_sample_value(
        "llmroute_request_latency_seconds_count", {"model": "m1", "tier": "simple"}) == \
        direct.registry.get_sample_value(
            "llmroute_request_latency_seconds_count", {"model": "m1", "tier": "simple"})
    assert kept.render() == kept.render()


def test_a_negative_count_is_refused_as_the_counter_does() -> None:
    entry = _entries(1)[0]
    bad = LedgerEntry.of({**entry.__dict__, "input_tokens": -5})
    for keep in (True, False):
        with pytest.raises(ValueError, match="non-negative"):
            GatewayMetrics(keep=keep).observe(bad)

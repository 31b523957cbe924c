"""The metrics' children tables: the same children `.labels()` gives, and every label set counted
on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from prometheus_client import Counter

from llmroute.ledger.entry import AttemptRecord, LedgerEntry
from llmroute.metrics import Children, GatewayMetrics


def _entry(model: str, key: str, status: str = "ok") -> LedgerEntry:
    return LedgerEntry(request_id=f"req_{model}_{key}_{status}", ts=datetime.now(UTC), status=status,
                       http_status=200 if status == "ok" else 502, key_name=key, model=model,
                       tier="simple", policy="default", latency_s=0.01,
                       attempts=(AttemptRecord(model, None if status == "ok" else "server"),),
                       error_type=None if status == "ok" else "upstream_error",
                       input_tokens=3, output_tokens=5, cost_usd=Decimal("0.001"))


def test_children_are_the_labelled_metrics_own() -> None:
    counter = Counter("x_total", "x", ("a", "b"), registry=None)
    children = Children(counter)
    assert children("1", "2") is counter.labels("1", "2")
    assert children("1", "2") is children("1", "2")
    assert children("1", "3") is not children("1", "2")


def _value(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_every_label_set_is_counted_on_its_own() -> None:
    metrics = GatewayMetrics()
    for _ in range(3):
        metrics.observe(_entry("m1", "k1"))
    metrics.observe(_entry("m2", "k1"))
    metrics.observe(_entry("m1", "k2", status="error"))
    base = {"tier": "simple", "policy": "default"}
    assert _value(metrics, "llmroute_requests_total", model="m1", key="k1", status="ok", **base) == 3
    assert _value(metrics, "llmroute_requests_total", model="m2", key="k1", status="ok", **base) == 1
    assert _value(metrics, "llmroute_requests_total", model="m1", key="k2", status="error", **base) == 1
    assert _value(metrics, "llmroute_upstream_attempts_total", model="m1", result="ok") == 3
    assert _value(metrics, "llmroute_upstream_attempts_total", model="m1", result="server") == 1
    assert _value(metrics, "llmroute_tokens_total", model="m1", kind="output") == 20
    assert _value(metrics, "llmroute_cost_usd_total", model="m1", key="k1", **base) == \
        3 * 0.001
    assert _value(metrics, "llmroute_request_latency_seconds_count", model="m1", tier="simple") == 4
    assert b'llmroute_requests_total{key="k1",model="m2",policy="default",status="ok",tier="simple"} 1.0' \
        in metrics.render()


def test_a_label_sets_row_counts_every_token_kind_and_the_baseline() -> None:
    metrics = GatewayMetrics()
    entry = _entry("m1", "k1")
    cached = LedgerEntry(**{**{f: getattr(entry, f) for f in entry.__dataclass_fields__},
                            "request_id": "req_cached", "cached_tokens": 2,
                            "cache_write_tokens": 1, "baseline_cost_usd": Decimal("0.01")})
    metrics.observe(entry)
    metrics.observe(cached)
    base = {"tier": "simple", "policy": "default"}
    assert _value(metrics, "llmroute_tokens_total", model="m1", kind="input") == 6
    assert _value(metrics, "llmroute_tokens_total", model="m1", kind="cached") == 2
    assert _value(metrics, "llmroute_tokens_total", model="m1", kind="cache_write") == 1
    assert _value(metrics, "llmroute_baseline_cost_usd_total", model="m1", key="k1", **base) == 0.01
    assert _value(metrics, "llmroute_requests_total", model="m1", key="k1", status="ok",
                  **base) == 2

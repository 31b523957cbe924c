"""Hypothesis strategies for ledger entries with any field set or not (issue 17's byte-for-byte
comparisons of the row, the WAL line and the rollup delta)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from llmroute.ledger import AttemptRecord, LedgerEntry

ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11))]
START = datetime(2025, 1, 1, 22, 30, tzinfo=UTC)
text = st.none() | st.sampled_from(["", "a", "b/model", "héllo \"q\" \x00 \u2028 ☃"]) | st.text(max_size=8)
money = st.none() | st.sampled_from([Decimal("0"), Decimal("-0.00"), Decimal("1E-30"), Decimal("1E+2"),
                                     Decimal("0.0000042"), Decimal("-0.00000000075"),
                                     Decimal("123.4500"), Decimal("0E-7")]) | st.decimals(
    min_value=-10, max_value=10, allow_nan=False, allow_infinity=False, places=12)
small_int = st.none() | st.integers(0, 10) | st.integers(-(2**63), 2**63 - 1)
ratio = (st.none() | st.floats(allow_nan=False, allow_infinity=False)
         | st.sampled_from([0.0, -0.0, 1e-7, 0.83]))
attempt = st.builds(AttemptRecord, st.sampled_from(["a", "b", "c/x"]),
                    st.sampled_from([None, "server", "timeout"]),
                    message=st.sampled_from(["", "429 slow down", "é\n\x01"]),
                    status=st.none() | st.integers(100, 599),
                    latency_s=st.floats(0, 100), skipped=st.booleans(), router=st.booleans())
when = st.builds(lambda s, us, zone: (START + timedelta(seconds=s, microseconds=us)).astimezone(zone),
                 st.integers(-400 * 86400, 3 * 3600), st.sampled_from([0, 1, 999_999, 123_456]),
                 st.sampled_from(ZONES))


@st.composite
def any_entry(draw: st.DrawFn) -> LedgerEntry:
    """An entry with each optional field drawn set or not."""
    values: dict[str, Any] = {
        "request_id": draw(st.text(min_size=1, max_size=12)),
        "ts": draw(when), "status": draw(st.sampled_from(["ok", "error"])),
        "http_status": draw(st.sampled_from([200, 429, 502])),
        "attempts": tuple(draw(st.lists(attempt, max_size=3))),
        "stream": draw(st.booleans()), "usage_estimated": draw(st.booleans()),
        "explored": draw(st.booleans()),
        "latency_s": draw(st.floats(0, 100) | st.sampled_from([0.0, 1e-7, float("nan")])),
        "user_rating": draw(st.none() | st.integers(1, 5)),
        "task_success": draw(st.sampled_from([None, True, False])),
        "feedback_ts": draw(st.none() | when),
        "cache": draw(st.sampled_from([None, "hit", "semantic", "miss", "bypass"])),
    }
    for name in ("key_name", "user", "session", "policy", "router", "tier", "reason", "experiment_arm",
                 "model", "error_type", "error_code", "baseline_model", "prompt_text", "response_text",
                 "feedback_comment", "shadow", "latent", "cached_from"):
        values[name] = draw(text)
    for name in ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens"):
        values[name] = draw(small_int)
    for name in ("confidence", "ttft_s", "upstream_latency_s", "cache_similarity"):
        values[name] = draw(ratio)
    for name in ("cost_usd", "baseline_cost_usd", "routing_cost_usd", "prompt_cache_saved_usd",
                 "cache_saved_usd"):
        values[name] = draw(money)
    if draw(st.booleans()):  # the gateway's way: every field, in order, as the instance dict
        return LedgerEntry.of(values)
    return LedgerEntry(**values)

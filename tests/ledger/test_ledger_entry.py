"""LedgerEntry: validation, and the JSON form the spool uses (exact money, UTC times)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from ledger_factories import BASE_TS, full_entry, make_entry

from llmroute.ledger import AttemptRecord, LedgerEntry
from llmroute.resilience import Attempt


def test_json_round_trip_keeps_every_field() -> None:
    entry = full_entry()
    text = entry.to_json()
    assert "\n" not in text
    assert LedgerEntry.from_json(text) == entry


def test_money_is_written_as_exact_plain_strings() -> None:
    entry = make_entry(1, cost_usd=Decimal("1.234E-7"), baseline_cost_usd=Decimal("0"))
    data = json.loads(entry.to_json())
    assert data["cost_usd"] == "0.0000001234"
    assert data["baseline_cost_usd"] == "0"
    back = LedgerEntry.from_json(entry.to_json())
    assert back.cost_usd == Decimal("0.0000001234") and back.baseline_cost_usd == 0


def test_unpriced_stays_none_through_json() -> None:
    entry = make_entry(1, cost_usd=None, input_tokens=None)
    data = json.loads(entry.to_json())
    assert data["cost_usd"] is None and data["input_tokens"] is None
    back = LedgerEntry.from_json(entry.to_json())
    assert back.cost_usd is None and back.input_tokens is None


def test_times_are_kept_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    entry = make_entry(1, ts=BASE_TS.astimezone(tokyo))
    assert entry.ts == BASE_TS and entry.ts.utcoffset() == timedelta(0)
    assert json.loads(entry.to_json())["ts"].endswith("+00:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        make_entry(1, ts=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        make_entry(1, feedback_ts=datetime(2025, 1, 1))


@pytest.mark.parametrize("changes", [
    {"status": "maybe"},
    {"request_id": ""},
    {"user_rating": 0},
    {"user_rating": 6},
    {"cost_usd": Decimal("NaN")},
    {"cost_usd": 0.1},
])
def test_invalid_entries_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_entry(1, **changes)


def test_from_json_tolerates_other_versions() -> None:
    minimal = {"request_id": "r1", "ts": BASE_TS.isoformat(), "status": "ok", "http_status": 200,
               "a_field_from_the_future": 1}
    entry = LedgerEntry.from_json(json.dumps(minimal))
    assert entry.request_id == "r1" and entry.attempts == () and entry.cost_usd is None


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"request_id": "r"}', "not json",
                                  '{"request_id": "r", "ts": "x", "status": "ok", "http_status": 200}'])
def test_from_json_raises_value_error_on_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        LedgerEntry.from_json(text)


def test_attempt_record_from_a_resilience_attempt() -> None:
    attempt = Attempt("a/m", 2, "rate_limit", "slow down", 429, 0.5)
    assert AttemptRecord.from_attempt(attempt) == AttemptRecord("a/m", "rate_limit", "slow down", 429, 0.5)
    skipped = Attempt("b/m", 1, "cooldown", "skipped", skipped=True)
    assert AttemptRecord.from_attempt(skipped).skipped


def test_attempts_given_as_a_list_become_a_tuple() -> None:
    entry = make_entry(1, attempts=[AttemptRecord("a/m", None)])
    assert entry.attempts == (AttemptRecord("a/m", None),)
    assert hash(dataclasses.astuple(entry.attempts[0]))


def test_savings_need_both_costs() -> None:
    assert make_entry(1, cost_usd=Decimal("1"), baseline_cost_usd=Decimal("3")).savings_usd == 2
    assert make_entry(1, cost_usd=None, baseline_cost_usd=Decimal("3")).savings_usd is None


class Count:
    """An integer-like number that is not an int (as numpy's are)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_json_never_fails_on_foreign_number_types() -> None:
    entry = make_entry(1, input_tokens=Count(7))
    assert json.loads(entry.to_json())["input_tokens"] == 7

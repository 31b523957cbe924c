"""`LedgerEntry.of`, the gateway's per-request construction: the same entry as the generated
`__init__` (equal, same field order, same conversions), the same checks, the same refusals."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from ledger_factories import full_entry, make_entry

from llmroute.ledger import AttemptRecord, LedgerEntry


def _values(entry: LedgerEntry) -> dict[str, Any]:
    return {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}


@pytest.mark.parametrize("entry", [full_entry(), make_entry(3), make_entry(4, cost_usd=None)])
def test_of_builds_what_init_builds(entry: LedgerEntry) -> None:
    built = LedgerEntry.of(_values(entry))
    assert built == entry and type(built) is LedgerEntry
    assert list(vars(built)) == list(vars(entry))  # field order: to_dict, rows, JSON alike
    assert built.to_json() == entry.to_json()
    assert pickle.loads(pickle.dumps(built)) == entry  # the write process gets it pickled


def test_of_fills_the_defaults_and_converts_as_init_does() -> None:
    paris = timezone(timedelta(hours=1))
    values = {"request_id": "req_1", "ts": datetime(2026, 1, 1, 13, tzinfo=paris),
              "status": "ok", "http_status": 200,
              "attempts": [AttemptRecord("m", None)]}  # a list: stored as a tuple
    built = LedgerEntry.of(values)
    assert built == LedgerEntry(**values)
    assert built.ts.tzinfo is not None and built.ts.utcoffset() == timedelta(0)
    assert built.attempts == (AttemptRecord("m", None),) and built.cost_usd is None


@pytest.mark.parametrize(("change", "error"), [
    ({"status": "maybe"}, ValueError), ({"request_id": ""}, ValueError),
    ({"ts": datetime(2026, 1, 1)}, ValueError), ({"cost_usd": Decimal("NaN")}, ValueError),
    ({"user_rating": 7}, ValueError), ({"cache": "warm"}, ValueError),
    ({"no_such_field": 1}, TypeError)])
def test_of_refuses_what_init_refuses(change: dict[str, Any], error: type[Exception]) -> None:
    values = {**_values(make_entry(1)), **change}
    with pytest.raises(error):
        LedgerEntry(**values)
    with pytest.raises(error):
        LedgerEntry.of(values)


def test_of_needs_the_required_fields() -> None:
    with pytest.raises(TypeError, match=r"missing.*http_status"):
        LedgerEntry.of({"request_id": "req_1", "ts": datetime.now(UTC), "status": "ok"})

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


@pytest.mark.parametrize("entry", [full_entry(), make_entry(3), make_entry(4, cost_usd=None)])
def test_of_all_builds_what_init_builds_and_keeps_the_dict(entry: LedgerEntry) -> None:
    values = _values(entry)
    built = LedgerEntry.of_all(values)
    assert built == entry and type(built) is LedgerEntry
    assert list(vars(built)) == list(vars(entry))
    assert vars(built) is values  # no copy: the fresh dict is the entry's own
    assert built.to_json() == entry.to_json()
    assert pickle.loads(pickle.dumps(built)) == entry


def test_of_all_checks_and_converts_as_init_does() -> None:
    paris = timezone(timedelta(hours=1))
    values = _values(make_entry(1, ts=datetime(2026, 1, 1, 13, tzinfo=paris)))
    built = LedgerEntry.of_all(dict(values))
    assert built.ts == datetime(2026, 1, 1, 12, tzinfo=UTC) and built.ts.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="status"):
        LedgerEntry.of_all({**values, "status": "maybe"})
    with pytest.raises(ValueError, match="cost_usd"):
        LedgerEntry.of_all({**values, "cost_usd": Decimal("NaN")})


def test_of_all_takes_any_other_dict_through_of() -> None:
    values = _values(full_entry())
    shuffled = dict(reversed(list(values.items())))  # every field, another order
    built = LedgerEntry.of_all(shuffled)
    assert built == full_entry() and list(vars(built)) == list(values)
    assert vars(built) is not shuffled
    partial = {"request_id": "r", "ts": datetime.now(UTC), "status": "ok", "http_status": 200}
    assert LedgerEntry.of_all(dict(partial)) == LedgerEntry(**partial)
    with pytest.raises(TypeError):
        LedgerEntry.of_all({**values, "colour": "red"})


class _Moment(datetime):
    """A datetime subclass: its zone converted the general way."""


def test_times_are_converted_as_as_utc_converts_them() -> None:
    """`__post_init__` leaves a UTC `datetime` as it is (what `astimezone(UTC)` returns for it:
    itself) and converts every other time through `as_utc`, as before (issue 17, cpu17b)."""
    utc_ts = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    for ts in (utc_ts, utc_ts.astimezone(timezone(timedelta(hours=5, minutes=30))),
               utc_ts.replace(tzinfo=timezone(timedelta(0))), _Moment(2025, 1, 2, tzinfo=UTC),
               _Moment(2025, 1, 2, tzinfo=timezone(timedelta(hours=-3)))):
        times = {"ts": ts, "feedback_ts": ts}
        for entry in (make_entry(1, **times), LedgerEntry.of_all({**vars(make_entry(1)), **times})):
            expected = ts.astimezone(UTC)
            for value in (entry.ts, entry.feedback_ts):
                assert value == ts and value.tzinfo is UTC and type(value) is type(expected)
                assert value.isoformat() == expected.isoformat()
            assert (entry.ts is ts) == (ts.tzinfo is UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        make_entry(1, ts=datetime(2025, 1, 2))
    with pytest.raises(TypeError, match="ts must be a datetime"):
        make_entry(1, ts="2025-01-02T00:00:00Z")


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), 0.5, "0.5", 1])
def test_each_money_field_is_refused_by_its_name(bad: object) -> None:
    from llmroute.ledger.entry import MONEY_FIELDS
    for name in MONEY_FIELDS:
        with pytest.raises(ValueError, match=f"^{name} must be a finite Decimal or None"):
            make_entry(1, **{name: bad})
    with pytest.raises(ValueError, match="must be a finite Decimal") as caught:
        make_entry(1, **dict.fromkeys(MONEY_FIELDS, bad))
    assert str(caught.value).startswith(next(iter(MONEY_FIELDS)))  # the first in the set's order
    for rating in (0, 6, True, 2.0):
        with pytest.raises(ValueError, match="user_rating"):
            make_entry(1, user_rating=rating)

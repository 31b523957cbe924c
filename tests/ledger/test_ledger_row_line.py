"""The ledger row and the WAL line built the cheaper way (issue 17, cpu17b) are exactly what the
earlier code built: the same values of the same types in every column, the same bytes in the log.
The references are the earlier code, kept here verbatim (times through strftime, money through
`format(value, "f")`, their definitions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from ledger_factories import full_entry, make_entry
from ledger_strategies import any_entry

from llmroute.ledger import AttemptRecord, LedgerEntry
from llmroute.ledger.entry import money_text
from llmroute.ledger.rows import (
    _ATTEMPTS,
    _FLAGS,
    _MONEY,
    _SQLITE_TIME,
    _TIMES,
    _VALUES,
    FIELDS,
    POSTGRES,
    SQLITE,
    Dialect,
    _same,
    to_row,
)
from llmroute.ledger.wal import encode


def _reference_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime(_SQLITE_TIME)


REFERENCE_SQLITE = Dialect(_reference_time, SQLITE.time_in, lambda value: format(value, "f"),
                           SQLITE.money_in, int, bool, _same)


def reference_attempts_json(attempts: Sequence[AttemptRecord],
                            text: Callable[[str], str] = _same) -> str:
    """`rows.attempts_json` before cpu17b."""
    if text is _same:
        return orjson.dumps([a.to_dict() for a in attempts]).decode()
    items = [{k: text(v) if isinstance(v, str) else v for k, v in a.to_dict().items()}
             for a in attempts]
    return orjson.dumps(items).decode()


def reference_to_row(entry: LedgerEntry, dialect: Dialect) -> tuple[Any, ...]:
    """`rows.to_row` before cpu17b."""
    state = entry.__dict__
    row = list(state.values()) if tuple(state) == FIELDS else list(_VALUES(entry))
    row[_ATTEMPTS] = reference_attempts_json(row[_ATTEMPTS], dialect.text_out)
    for positions, out in ((_TIMES, dialect.time_out), (_MONEY, dialect.money_out),
                           (_FLAGS, dialect.flag_out)):
        for i in positions:
            value = row[i]
            if value is not None and not isinstance(value, str):
                row[i] = out(value)
    text = dialect.text_out
    if text is not _same:
        row = [text(value) if isinstance(value, str) else value for value in row]
    row += (dialect.flag_out(entry.unpriced), dialect.flag_out(entry.fallback))
    return tuple(row)


def _typed(row: tuple[Any, ...]) -> list[tuple[type, str]]:
    return [(type(value), repr(value)) for value in row]


def _check_row(entry: LedgerEntry) -> None:
    expected = reference_to_row(entry, REFERENCE_SQLITE)
    assert _typed(to_row(entry, SQLITE)) == _typed(expected)
    assert _typed(to_row(entry, POSTGRES)) == _typed(reference_to_row(entry, POSTGRES))


@settings(max_examples=400, deadline=None)
@given(any_entry())
def test_the_sqlite_row_is_the_earlier_row(entry: LedgerEntry) -> None:
    _check_row(entry)


def test_rows_of_fixed_entries_and_odd_instance_dicts() -> None:
    odd_flags = make_entry(5, stream=1, explored=0, task_success=2, usage_estimated="yes")
    for entry in (make_entry(1), full_entry(2), make_entry(3, cost_usd=Decimal("1E-9")), odd_flags):
        _check_row(entry)
        shuffled = object.__new__(LedgerEntry)
        shuffled.__dict__.update(reversed(list(entry.__dict__.items())))
        assert to_row(shuffled, SQLITE) == to_row(entry, SQLITE)
    partial = object.__new__(LedgerEntry)  # no instance dict entry for a field: the class default
    partial.__dict__.update({k: v for k, v in make_entry(4).__dict__.items() if k != "shadow"})
    assert to_row(partial, SQLITE) == to_row(make_entry(4), SQLITE)


def reference_encode(entry: LedgerEntry) -> bytes:
    """`wal.encode` before cpu17b (its `default`: money through `money_text`)."""
    def default(value: object) -> object:
        if isinstance(value, Decimal):
            return money_text(value)
        if hasattr(value, "__index__"):
            return int(value.__index__())
        if hasattr(value, "__float__"):
            return float(value)
        return str(value)
    try:
        return orjson.dumps(entry, default=default, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return (entry.to_json() + "\n").encode()


class _Money(Decimal):
    """A Decimal subclass: `encode` takes it the general way."""


@settings(max_examples=400, deadline=None)
@given(any_entry())
def test_the_wal_line_is_the_earlier_line(entry: LedgerEntry) -> None:
    assert encode(entry) == reference_encode(entry)


def test_wal_lines_of_fixed_entries() -> None:
    for entry in (make_entry(1), full_entry(2), make_entry(3, cost_usd=Decimal("1E-9")),
                  make_entry(4, cost_usd=_Money("0.5E-7"), input_tokens=2**70)):
        assert encode(entry) == reference_encode(entry)
        assert LedgerEntry.from_json(encode(entry).decode()) == entry

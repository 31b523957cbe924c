"""Mapping between `LedgerEntry` and a row of `llmroute_requests`, for either backend.

Columns follow the entry's fields in order; `user` and `session` become `user_name` and `session_id`
(both words are SQL keywords). A `Dialect` says how times, money and flags are stored: SQLite keeps
times as fixed-width UTC text (so text order is time order), money as exact text, flags as 0/1;
PostgreSQL takes datetimes, Decimals and bools as they are, and gets U+FFFD for NUL characters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from .entry import MONEY_FIELDS, TIME_FIELDS, AttemptRecord, LedgerEntry, money_text, parse_money

#: Entry fields whose column has another name.
RENAMED: dict[str, str] = {"user": "user_name", "session": "session_id"}
FLAG_FIELDS: frozenset[str] = frozenset({"stream", "task_success", "usage_estimated", "explored"})
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LedgerEntry))
COLUMNS: tuple[str, ...] = tuple(RENAMED.get(name, name) for name in FIELDS)
#: Columns derived from the entry (`LedgerEntry.unpriced`, `.fallback`), written after `COLUMNS`
#: so that SQL can count them (migration 0009); never read back into an entry.
DERIVED_COLUMNS: tuple[str, ...] = ("unpriced", "fallback")
#: What an insert writes: `COLUMNS` then `DERIVED_COLUMNS` (`to_row`'s order).
INSERT_COLUMNS: tuple[str, ...] = (*COLUMNS, *DERIVED_COLUMNS)
_SQLITE_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class Dialect:
    """How one backend stores the values that need converting (None is always stored as NULL)."""

    time_out: Callable[[datetime], Any]
    time_in: Callable[[Any], datetime]
    money_out: Callable[[Decimal], Any]
    money_in: Callable[[Any], Decimal | None]
    flag_out: Callable[[bool], Any]
    flag_in: Callable[[Any], bool]
    text_out: Callable[[str], str]


def sqlite_time(value: datetime) -> str:
    """Fixed-width UTC text, e.g. 2025-01-02T03:04:05.000006Z: sorts as time sorts."""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)  # an entry's ts is UTC already
    if utc.year < 1000:  # strftime's %Y does not pad these; keep what it always wrote
        return utc.strftime(_SQLITE_TIME)
    if type(utc) is not datetime:  # a subclass (orjson takes datetime itself only)
        return utc.isoformat(timespec="microseconds")[:-6] + "Z"
    # the same text as strftime's at a fraction of its instructions: orjson writes RFC 3339
    # ("Z" for UTC) in ~1 k instructions where isoformat takes ~13 k, and leaves out a zero
    # fraction, which is put back (fixed width)
    text = orjson.dumps(utc, option=orjson.OPT_UTC_Z)
    if len(text) == 22:  # b'"2025-01-02T03:04:05Z"'
        return text[1:20].decode() + ".000000Z"
    return text[1:-1].decode()


def _sqlite_time_in(text: Any) -> datetime:
    """A stored time back (fromisoformat: ~50× faster than strptime on the fixed-width text)."""
    value = datetime.fromisoformat(str(text))
    if value.tzinfo is None:
        raise ValueError(f"ledger time without a zone: {text!r}")
    return value


def _same(value: Any) -> Any:
    return value


def _no_nul(text: str) -> str:
    """PostgreSQL text (and jsonb) cannot hold NUL: store U+FFFD instead."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


SQLITE = Dialect(sqlite_time, _sqlite_time_in, money_text, parse_money, int, bool, _same)
POSTGRES = Dialect(_same, _same, _same, parse_money, _same, bool, _no_nul)


def attempts_json(attempts: Sequence[AttemptRecord], text: Callable[[str], str] = _same) -> str:
    """The attempts column: a JSON array of attempt objects (their strings passed through `text`)."""
    if text is _same:
        if len(attempts) == 1:  # the usual one: no comprehension (orjson writes a tuple as an array)
            return orjson.dumps((attempts[0].to_dict(),)).decode()
        return orjson.dumps([a.to_dict() for a in attempts]).decode()
    items = [{k: text(v) if isinstance(v, str) else v for k, v in a.to_dict().items()} for a in attempts]
    return orjson.dumps(items).decode()


#: Every field of an entry in one C call, in `FIELDS` order (a tuple).
_VALUES = operator.attrgetter(*FIELDS)
_ATTEMPTS = FIELDS.index("attempts")
#: The positions in `FIELDS` whose values a dialect converts, by kind.
_TIMES = tuple(i for i, name in enumerate(FIELDS) if name in TIME_FIELDS)
_MONEY = tuple(i for i, name in enumerate(FIELDS) if name in MONEY_FIELDS)
_FLAGS = tuple(i for i, name in enumerate(FIELDS) if name in FLAG_FIELDS)


def to_row(entry: LedgerEntry, dialect: Dialect) -> tuple[Any, ...]:
    """The column values of `entry`, in `INSERT_COLUMNS` order: None stays None, any text goes
    through `dialect.text_out`, times, money and flags through their converters, the attempts
    become their JSON. Reads the fields at once (the instance dict's values when its keys are
    `FIELDS` in order, as every constructor leaves them: ~1 k instructions, against ~12 k for the
    46 attribute reads) and converts only the positions that need it. SQLite's rows are built by
    `_sqlite_row` (the same values, a third fewer instructions)."""
    if dialect is SQLITE:
        try:
            return _sqlite_row(entry)
        except KeyError:  # an instance dict without every field: the general way below
            pass
    state = entry.__dict__  # a dataclass's instance dict holds its fields in declaration order
    row = list(state.values()) if tuple(state) == FIELDS else list(_VALUES(entry))
    row[_ATTEMPTS] = attempts_json(row[_ATTEMPTS], dialect.text_out)
    for positions, out in ((_TIMES, dialect.time_out), (_MONEY, dialect.money_out),
                           (_FLAGS, dialect.flag_out)):
        for i in positions:
            value = row[i]
            if value is not None and not isinstance(value, str):
                row[i] = out(value)
    text = dialect.text_out
    if text is not _same:  # the attempts' JSON escapes control characters: no NUL left in it
        row = [text(value) if isinstance(value, str) else value for value in row]
    row += (dialect.flag_out(entry.unpriced), dialect.flag_out(entry.fallback))
    return tuple(row)


def _row_function(dialect: Dialect) -> Callable[[LedgerEntry], tuple[Any, ...]]:
    """`to_row(entry, dialect)` for a dialect whose `text_out` leaves text as it is, as one
    generated function (issue 17): each field read from the instance dict by name (a KeyError when
    one is missing), converted where `to_row` converts it (not None and not text), the row built
    as one tuple: no list, no loops over positions, no order check. With `int` for flags, a bool
    becomes 1 or 0 without the call (what `int` gives; ~1.2 k instructions each), and with
    `money_text` for money, its two lines are inlined."""
    if dialect.text_out is not _same:
        raise ValueError("only for a dialect that stores text as it is")

    def flag(value: str) -> str:  # `value` assigns v
        if dialect.flag_out is int:
            return f"(1 if {value} is True else 0 if v is False else _flag(v))"
        return f"_flag({value})"

    def converted(name: str) -> str:
        get = f"(v := s[{name!r}])"
        if name in TIME_FIELDS:
            out = "_time(v)"
        elif name in MONEY_FIELDS:
            out = ('(t if "E" not in (t := str(v)) else format(v, "f"))'
                   if dialect.money_out is money_text else "_money(v)")
        else:
            out = flag("v")
        return f"(v if {get} is None or isinstance(v, str) else {out})"

    parts = []
    for name in FIELDS:
        if name == "attempts":
            parts.append(f"_attempts(s[{name!r}])")
        elif name in TIME_FIELDS or name in MONEY_FIELDS or name in FLAG_FIELDS:
            parts.append(converted(name))
        else:
            parts.append(f"s[{name!r}]")
    parts += (flag("(v := entry.unpriced)"), flag("(v := entry.fallback)"))
    source = f"def _row(entry):\n    s = entry.__dict__\n    return ({', '.join(parts)})\n"
    namespace: dict[str, Any] = {"_time": dialect.time_out, "_money": dialect.money_out,
                                 "_flag": dialect.flag_out, "_attempts": attempts_json}
    exec(source, namespace)  # built from the entry's own field names
    row: Callable[[LedgerEntry], tuple[Any, ...]] = namespace["_row"]
    return row


_sqlite_row = _row_function(SQLITE)


#: Entries converted between two yields to the event loop (a few hundred µs of work at most). 8
#: read ~0.1-0.2 ms better at the 1-client p99 (tail.py) but, at full load, left the writer twice as
#: far behind (run.py c=64: up to 6,178 entries queued against 2,444), each slice waiting its turn.
ROWS_PER_SLICE = 32


async def to_rows(entries: Sequence[LedgerEntry], dialect: Dialect, *,
                  sliced: bool = True) -> list[tuple[Any, ...]]:
    """`to_row` for a batch, on the event loop but in slices: a batch of 256 entries is ~2 ms of
    work, which done in one go would stall every request in flight (it showed as the p99).
    `sliced=False` builds them in one go: under full load every yield waits for a whole round
    of requests, and a writer that yields 8 times a batch falls behind (`idle.py`)."""
    if not sliced:
        return [to_row(entry, dialect) for entry in entries]
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(entries), ROWS_PER_SLICE):
        if start:
            await asyncio.sleep(0)
        rows.extend(to_row(entry, dialect) for entry in entries[start:start + ROWS_PER_SLICE])
    return rows


def from_row(row: Sequence[Any], dialect: Dialect) -> LedgerEntry:
    """The entry stored in `row` (its values in `COLUMNS` order)."""
    values: dict[str, Any] = {}
    for name, value in zip(FIELDS, row, strict=True):
        if name == "attempts":
            values[name] = tuple(AttemptRecord.from_dict(a) for a in json.loads(value or "[]"))
        elif value is None:
            values[name] = None
        elif name in TIME_FIELDS:
            values[name] = dialect.time_in(value)
        elif name in MONEY_FIELDS:
            values[name] = dialect.money_in(value)
        elif name in FLAG_FIELDS:
            values[name] = dialect.flag_in(value)
        else:
            values[name] = value
    return LedgerEntry(**values)

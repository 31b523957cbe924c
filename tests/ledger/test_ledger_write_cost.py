"""The cheaper ledger write (issue 17, cpu17): each shortcut gives exactly what the code it replaces
gave — the rows SQLite stores with no NULL bound, the time and money texts, the row read from the
instance dict."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ledger_factories import BASE_TS, full_entry, make_entry

from llmroute.ledger import LedgerEntry
from llmroute.ledger.entry import money_text
from llmroute.ledger.rows import _SQLITE_TIME, FIELDS, INSERT_COLUMNS, SQLITE, sqlite_time, to_row
from llmroute.ledger.sqlite import _CONFLICT, _INSERT, SQLiteStore
from llmroute.ledger.sqlite_insert import NullFreeInsert, insert_fresh
from llmroute.ledger.sqlite_tx import immediate


def _entries() -> list[LedgerEntry]:
    """Entries with different sets of None columns, interleaved (runs of one and of several)."""
    out = [make_entry(n) for n in range(3)]
    out += [full_entry(3), make_entry(4), make_entry(5, key_name=None, cost_usd=None)]
    out += [make_entry(6, model=None, tier=None), make_entry(7), make_entry(8), full_entry(9)]
    return out


async def _stored(path: Path, insert: str | NullFreeInsert | None) -> list[tuple[Any, ...]]:
    store = SQLiteStore(path)
    await store.migrate()
    entries = _entries()
    if insert is None:  # the store's own write
        await store.write(entries)
    else:
        conn = store._connection()
        rows = [to_row(e, SQLITE) for e in entries]
        assert immediate(conn, lambda c: insert_fresh(c, insert, rows, entries)) == entries
    conn = store._connection()
    stored = conn.execute("SELECT rowid, * FROM llmroute_requests ORDER BY rowid").fetchall()
    await store.close()
    return stored


@pytest.mark.asyncio
async def test_null_free_insert_stores_the_same_rows_in_the_same_order(tmp_path: Path) -> None:
    expected = await _stored(tmp_path / "full.db", _INSERT)
    assert len(expected) == len(_entries())
    assert any(None in row for row in expected)
    probe = sqlite3.connect(tmp_path / "full.db")
    insert = NullFreeInsert.of(probe, "llmroute_requests", INSERT_COLUMNS, _CONFLICT)
    probe.close()
    assert await _stored(tmp_path / "free.db", insert) == expected
    assert await _stored(tmp_path / "store.db", None) == expected


@pytest.mark.asyncio
async def test_null_free_insert_binds_no_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    adapted: list[object] = []
    key = (type(None), sqlite3.PrepareProtocol)
    monkeypatch.setitem(sqlite3.adapters, key, lambda value: adapted.append(value))
    store = SQLiteStore(tmp_path / "l.db")
    await store.migrate()
    await store.write(_entries())
    assert adapted == []  # the rows hold NULLs, none of them bound
    conn = store._connection()
    assert conn.execute("SELECT count(*) FROM llmroute_requests WHERE user_name IS NULL").fetchone()[0] > 0
    await store.close()


def test_a_none_in_a_not_null_column_is_still_refused() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a TEXT PRIMARY KEY, b INTEGER NOT NULL DEFAULT 0, c TEXT, "
                 "d TEXT DEFAULT 'x')")
    insert = NullFreeInsert.of(conn, "t", ("a", "b", "c", "d"), "")
    assert insert.many(conn, [("1", 5, None, None), ("2", 6, "c", "d")]) == 2
    # d's default is not NULL: its None is bound, not left to the default
    assert conn.execute("SELECT * FROM t ORDER BY a").fetchall() == [("1", 5, None, None),
                                                                   ("2", 6, "c", "d")]
    with pytest.raises(sqlite3.IntegrityError):  # not silently the default 0
        insert.many(conn, [("3", None, None, None)])


def test_sqlite_time_is_strftime_text() -> None:
    rng = random.Random(17)
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11))]
    for _ in range(5000):
        value = datetime(rng.randint(1001, 9998), rng.randint(1, 12), rng.randint(1, 28),
                         rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                         rng.choice([0, rng.randint(0, 999_999)]), tzinfo=rng.choice(zones))
        assert sqlite_time(value) == value.astimezone(UTC).strftime(_SQLITE_TIME)
    assert sqlite_time(BASE_TS) == "2025-01-01T12:00:00.000000Z"
    old = datetime(999, 1, 1, 0, 0, 1, tzinfo=UTC)  # strftime's own text below year 1000
    assert sqlite_time(old) == old.strftime(_SQLITE_TIME)


def test_money_text_is_plain_decimal_text() -> None:
    rng = random.Random(17)
    samples = [Decimal(v) for v in ("0", "-0", "0E-10", "1E+2", "0.0000042", "4.2E-7",
                                     "123.4500", "-0.000001", "1e-30")]
    samples += [Decimal(rng.randint(-10**9, 10**9)).scaleb(rng.randint(-25, 6)) for _ in range(5000)]
    for value in samples:
        assert money_text(value) == format(value, "f")
        assert "E" not in money_text(value)


def test_to_row_reads_fields_in_order_whatever_the_instance_dict() -> None:
    entry = full_entry(3)
    expected = to_row(entry, SQLITE)
    shuffled = object.__new__(LedgerEntry)
    shuffled.__dict__.update(reversed(list(entry.__dict__.items())))  # same fields, other order
    assert tuple(shuffled.__dict__) != FIELDS
    assert to_row(shuffled, SQLITE) == expected
    assert to_row(LedgerEntry.of(dict(entry.__dict__)), SQLITE) == expected


def test_fallback_is_the_first_tried_model_against_the_answering_one() -> None:
    from llmroute.ledger import AttemptRecord

    def fallback(model: str | None, *attempts: AttemptRecord) -> bool:
        return make_entry(1, model=model, attempts=attempts).fallback

    def reference(model: str | None, *attempts: AttemptRecord) -> bool:  # the definition
        tried = [a for a in attempts if not a.skipped and not a.router]
        return bool(model and tried and tried[0].model != model)

    a, b = AttemptRecord("a", "server"), AttemptRecord("b", None)
    skipped, router = AttemptRecord("a", "cooldown", skipped=True), AttemptRecord("r", None, router=True)
    cases: list[tuple[str | None, tuple[AttemptRecord, ...]]] = [
        ("b", (a, b)), ("b", (b,)), ("b", (skipped, b)), ("b", (router, b)), ("b", (router, a, b)),
        (None, (a, b)), ("", (a,)), ("b", ()), ("b", (skipped, router))]
    for model, attempts in cases:
        assert fallback(model, *attempts) == reference(model, *attempts), (model, attempts)
    assert fallback("b", a, b) and not fallback("b", skipped, b)

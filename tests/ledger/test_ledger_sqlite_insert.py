"""SQLite's insert of a batch (issue 17): the all-new batch in one pass, a batch with ids the table
holds (or one id twice) told by its rowids, or through the id lookup near the largest rowid, the
same rows and fresh entries on every path, never under a savepoint; None binds as NULL through the
registered adapter."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_factories import make_entry

from llmroute.ledger.rows import SQLITE, to_row
from llmroute.ledger.sqlite import _INSERT, SQLiteStore
from llmroute.ledger.sqlite_insert import MAX_ROWID, NullFreeInsert, bind_none_directly, insert_fresh
from llmroute.ledger.sqlite_tx import immediate


@pytest.mark.asyncio
async def test_fresh_entries_are_the_new_ones_on_both_paths(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "l.db")
    await store.migrate()
    conn = store._connection()
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    first = [make_entry(n) for n in range(3)]
    fresh = immediate(conn, lambda c: insert_fresh(c, _INSERT, [to_row(e, SQLITE) for e in first], first))
    assert fresh == first
    assert not any("SELECT request_id" in sql for sql in statements)  # all new: no id lookup
    again = [make_entry(2, model="other"), make_entry(3), make_entry(4), make_entry(3, model="x")]
    fresh = immediate(conn, lambda c: insert_fresh(c, _INSERT, [to_row(e, SQLITE) for e in again], again))
    assert [e.request_id for e in fresh] == ["req-000003", "req-000004"]  # 2 held, 3 once
    assert any("WHERE rowid >" in sql for sql in statements)  # told by the rowids
    assert not any("SAVEPOINT" in sql.upper() for sql in statements)  # no statement journal
    conn.set_trace_callback(None)
    rows = conn.execute("SELECT request_id, model FROM llmroute_requests ORDER BY request_id").fetchall()
    assert rows == [(f"req-{n:06d}", make_entry(n).model) for n in range(5)]  # the first write wins
    await store.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("gap", [0, 1, 3])
async def test_near_the_largest_rowid_the_ids_are_looked_up(tmp_path: Path, gap: int) -> None:
    """Past MAX_ROWID - len(batch) SQLite may give new rows random rowids, below the largest: the
    rowids cannot tell the new rows, so the ids are looked up first (and the answer is the same)."""
    store = SQLiteStore(tmp_path / "l.db")
    await store.migrate()
    conn = store._connection()
    held = make_entry(1)
    top = MAX_ROWID - gap
    immediate(conn, lambda c: c.execute(
        "INSERT INTO llmroute_requests (rowid, request_id, ts, status, http_status, latency_s) "
        "VALUES (?, ?, '2025-01-01T00:00:00.000000Z', 'ok', 200, 0.1)", (top, held.request_id)))
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    batch = [make_entry(2), held, make_entry(3), make_entry(2, model="x")]
    fresh = immediate(conn, lambda c: insert_fresh(c, _INSERT, [to_row(e, SQLITE) for e in batch], batch))
    conn.set_trace_callback(None)
    assert [e.request_id for e in fresh] == ["req-000002", "req-000003"]
    assert any("SELECT request_id" in sql and " IN (" in sql for sql in statements)
    assert conn.execute("SELECT count(*) FROM llmroute_requests").fetchone() == (3,)
    await store.close()


@pytest.mark.asyncio
async def test_rows_pruned_at_the_end_do_not_confuse_the_rowids(tmp_path: Path) -> None:
    """The newest rows deleted (their rowids free again): the next batch's rows still come past the
    largest rowid left, and its held ids are told apart."""
    store = SQLiteStore(tmp_path / "l.db")
    await store.migrate()
    conn = store._connection()
    first = [make_entry(n) for n in range(6)]
    immediate(conn, lambda c: insert_fresh(c, _INSERT, [to_row(e, SQLITE) for e in first], first))
    conn.execute("DELETE FROM llmroute_requests WHERE request_id IN ('req-000004', 'req-000005')")
    again = [make_entry(5), make_entry(0), make_entry(7), make_entry(4), make_entry(7)]
    fresh = immediate(conn, lambda c: insert_fresh(c, _INSERT, [to_row(e, SQLITE) for e in again], again))
    assert [e.request_id for e in fresh] == ["req-000005", "req-000007", "req-000004"]
    await store.close()


def test_none_binds_as_null() -> None:
    bind_none_directly()
    bind_none_directly()  # idempotent
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b)")
    conn.execute("INSERT INTO t VALUES (?, ?)", (None, 1))
    assert conn.execute("SELECT a IS NULL, typeof(a), b FROM t").fetchone() == (1, "null", 1)


_COLUMNS = ("a", "b", "c", "d", "e")
#: a: the key; b NOT NULL (a None is bound and refused); c, e: nullable, NULL default (left out
#: when None); d: nullable with another default (a None is bound, not left to 'x').
_TABLE = ("CREATE TABLE t (a INTEGER PRIMARY KEY, b INTEGER NOT NULL DEFAULT 0, c TEXT, "
          "d TEXT DEFAULT 'x', e REAL)")
_value = st.none() | st.integers(0, 3) | st.sampled_from(["", "v", "\x00"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), _value, _value, _value, _value), max_size=12))
def test_null_free_insert_is_the_plain_insert(rows: list[tuple[Any, ...]]) -> None:
    """Rows of every None pattern, in runs and interleaved (each row checked against the previous
    row's pattern first): the same rows stored, the same change count, the same refusal."""
    rows = [(n, *row[1:]) for n, row in enumerate(rows)]  # unique keys
    outcomes = []
    for null_free in (False, True):
        conn = sqlite3.connect(":memory:")
        conn.execute(_TABLE)
        plain = f"INSERT INTO t ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (a) DO NOTHING"
        insert: Any = (NullFreeInsert.of(conn, "t", _COLUMNS, " ON CONFLICT (a) DO NOTHING")
                       if null_free else plain)
        try:
            changed: Any = insert.many(conn, rows) if null_free else conn.executemany(insert, rows).rowcount
        except sqlite3.IntegrityError as exc:
            changed = type(exc)
        outcomes.append((changed, conn.execute("SELECT * FROM t ORDER BY a").fetchall()))
        conn.close()
    assert outcomes[1] == outcomes[0]


def test_null_free_insert_checks_each_row_against_the_previous_pattern() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute(_TABLE)
    insert = NullFreeInsert.of(conn, "t", _COLUMNS, "")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    rows = [(1, 1, "c", "d", 1.0), (2, 1, None, "d", 1.0), (3, 1, "c", "d", None), (4, 1, None, "d", None),
            (5, 1, None, "d", 2.0), (6, 1, "c", "d", 2.0), (7, 2, "c", "d", 3.0)]
    assert insert.many(conn, rows) == 7
    assert conn.execute("SELECT * FROM t ORDER BY a").fetchall() == rows
    assert conn.execute("SELECT count(*) FROM t WHERE c IS NULL").fetchone() == (3,)
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert sum("(a, b, d)" in s for s in inserts) == 1  # (4, 1, None, 'd', None): c and e left out
    assert sum("(a, b, c, d, e)" in s for s in inserts) == 3  # rows 1, 6 and 7

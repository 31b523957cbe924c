"""SQLite's insert of a batch (issue 17): the all-new batch in one pass, a batch with ids the table
holds (or one id twice) through the id lookup, the same rows and fresh entries either way; None
binds as NULL through the registered adapter."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from ledger_factories import make_entry

from llmroute.ledger.rows import SQLITE, to_row
from llmroute.ledger.sqlite import _INSERT, SQLiteStore
from llmroute.ledger.sqlite_insert import bind_none_directly, insert_fresh
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
    assert any("SELECT request_id" in sql for sql in statements)
    conn.set_trace_callback(None)
    rows = conn.execute("SELECT request_id, model FROM llmroute_requests ORDER BY request_id").fetchall()
    assert rows == [(f"req-{n:06d}", make_entry(n).model) for n in range(5)]  # the first write wins
    await store.close()


def test_none_binds_as_null() -> None:
    bind_none_directly()
    bind_none_directly()  # idempotent
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (a, b)")
    conn.execute("INSERT INTO t VALUES (?, ?)", (None, 1))
    assert conn.execute("SELECT a IS NULL, typeof(a), b FROM t").fetchone() == (1, "null", 1)

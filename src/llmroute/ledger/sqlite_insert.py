"""SQLite: a batch's rows inserted, and which of its entries were new (issue 17: the writer's cost).

`insert_fresh` inserts with `ON CONFLICT (request_id) DO NOTHING` and tells the rollups which
entries the table did not hold before. The common batch is all new: it is inserted once, inside a
savepoint, and the statement's change count (one per row) shows it. A batch holding an id the table
has (a replayed spool, a WAL recovered after a crash) or an id twice is rolled back to the
savepoint and inserted again after looking its ids up, as before: the same rows land and the same
entries count either way, in the caller's transaction.

`bind_none_directly` registers the identity adapter for None: the standard library's sqlite3 binds
None only after a failed adapter lookup (an AttributeError formatted and dropped for each NULL
parameter: ~70,000 instructions for a gateway's ledger row, 21 NULLs of 46 columns).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from .entry import LedgerEntry

#: Ids looked up at once on the slow path (SQLite's default limit is 32,766 variables).
ID_CHUNK = 500
_SAVEPOINT = "llmroute_fresh"


def bind_none_directly() -> None:
    """Bind None as NULL through the adapter registry's first lookup (the same NULL; idempotent,
    and an adapter someone else registered for None is left alone)."""
    if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
        null: dict[None, None] = {}
        to_null: Callable[[None], None] = null.get  # null.get(None) is None: a C call
        sqlite3.register_adapter(type(None), to_null)


def insert_fresh(conn: sqlite3.Connection, insert_sql: str, rows: Sequence[Sequence[Any]],
                 entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """Insert the rows (`insert_sql` ignores ids the table holds); the entries that were stored
    now, in order, each id once (a repeated id in the batch: the first one). In a transaction."""
    conn.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        if _change(conn, insert_sql, rows) == len(rows):  # every row new: every entry counts
            return list(entries)
        conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
        return _insert_checked(conn, insert_sql, rows, entries)
    finally:
        conn.execute(f"RELEASE {_SAVEPOINT}")


def _insert_checked(conn: sqlite3.Connection, insert_sql: str, rows: Sequence[Sequence[Any]],
                    entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """The slow path: look the ids up first, then insert."""
    ids = [entry.request_id for entry in entries]
    stored: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start:start + ID_CHUNK]
        sql = f"SELECT request_id FROM llmroute_requests WHERE request_id IN ({', '.join('?' * len(chunk))})"
        with contextlib.closing(conn.execute(sql, chunk)) as cursor:
            stored.update(row[0] for row in cursor.fetchall())
    _change(conn, insert_sql, rows)
    fresh = []
    for entry in entries:
        if entry.request_id not in stored:
            stored.add(entry.request_id)  # a repeated id in the batch: the first one was stored
            fresh.append(entry)
    return fresh


def _change(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    with contextlib.closing(conn.executemany(sql, rows)) as cursor:
        return cursor.rowcount

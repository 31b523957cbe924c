"""SQLite: a batch's rows inserted, and which of its entries were new (issue 17: the writer's cost).

`insert_fresh` inserts with `ON CONFLICT (request_id) DO NOTHING` and tells the rollups which
entries the table did not hold before. The common batch is all new: it is inserted once and the
statements' change count (one per row) shows it, with no id looked up. A batch holding an id the
table has (a replayed spool, a WAL recovered after a crash) or an id twice has its new rows told by
their rowids: SQLite gives a row inserted without one the table's largest rowid + 1, so the rows
past the largest rowid read just before the insert are this batch's (in the caller's write
transaction, so no other writer inserts between). Near the largest possible rowid SQLite picks
rowids at random: there the ids are looked up first, as before. The same rows land and the same
entries count on every path.

No savepoint (sqlite17): one open over the insert copied every page the batch changed to the
statement journal, a temporary file (`temp_store` is FILE): a write() per page, in the kernel, so
callgrind did not count it, 10–20 µs of the SQLite thread's CPU per entry on a 200,000-row ledger
(`bench/ledger/sqlite_write_cpu.py`, docs/benchmarks.md).

`NullFreeInsert` binds no NULL at all: a row's None values are left out of its statement (one
statement per set of None columns, consecutive rows with the same set in one `executemany`), so the
columns take their declared default, NULL, as the bound None would have given them. Only columns the
table declares nullable with no other default are left out (read once from the table): a None
for any other column is bound as before (and refused by a NOT NULL as before). The standard
library's sqlite3 adapts every None it binds (a key tuple built, the adapter registry looked up
and called: ~1,200 instructions each, ~21 per gateway row).

`bind_none_directly` registers the identity adapter for None: the standard library's sqlite3 binds
None only after a failed adapter lookup (an AttributeError formatted and dropped for each NULL
parameter: ~70,000 instructions for a gateway's ledger row, 21 NULLs of 46 columns).
"""

from __future__ import annotations

import contextlib
import operator
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .entry import LedgerEntry

#: Ids looked up at once on the slow path (SQLite's default limit is 32,766 variables).
ID_CHUNK = 500
#: The largest rowid SQLite holds; past it, it picks a new row's rowid at random.
MAX_ROWID = 2**63 - 1


def bind_none_directly() -> None:
    """Bind None as NULL through the adapter registry's first lookup (the same NULL; idempotent,
    and an adapter someone else registered for None is left alone)."""
    if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
        null: dict[None, None] = {}
        to_null: Callable[[None], None] = null.get  # null.get(None) is None: a C call
        sqlite3.register_adapter(type(None), to_null)


class _Plan(NamedTuple):
    """One pattern of None columns: the statement, the bound values' getter, and (`exact`: no
    None bound, every bound value present) the getter of the absent ones, to check a row against."""

    sql: str
    take: Callable[[Sequence[Any]], tuple[Any, ...]]
    absent: Callable[[Sequence[Any]], tuple[Any, ...]]
    nones: tuple[None, ...]
    exact: bool


def _getter(positions: Sequence[int]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The values at `positions` as a tuple (itemgetter gives a lone value bare, none at all)."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    if positions:
        only = positions[0]
        return lambda row: (row[only],)
    return lambda row: ()


class NullFreeInsert:
    """`INSERT INTO table (columns) VALUES (...)` + `suffix` with each row's None values left out
    where the column's default is NULL anyway (`omittable`: True per column)."""

    def __init__(self, table: str, columns: Sequence[str], suffix: str,
                 omittable: Sequence[bool]) -> None:
        if len(omittable) != len(columns):
            raise ValueError("one omittable flag per column")
        self._table, self._columns, self._suffix = table, tuple(columns), suffix
        self._kept = tuple(not o for o in omittable)  # bound even when None
        self._nones = (None,) * len(self._columns)
        #: Per pattern of present values (`operator.is_not(value, None)` per column).
        self._plans: dict[tuple[bool, ...], _Plan] = {}

    @classmethod
    def of(cls, conn: sqlite3.Connection, table: str, columns: Sequence[str],
           suffix: str) -> NullFreeInsert:
        """The insert for `table` as the connection's schema declares it."""
        with contextlib.closing(conn.execute(f"PRAGMA table_info({table})")) as cursor:
            info = {row[1]: (row[3], row[4]) for row in cursor.fetchall()}  # notnull, default
        return cls(table, columns, suffix,
                   [c in info and not info[c][0] and info[c][1] is None for c in columns])

    def _plan(self, row: Sequence[Any]) -> _Plan:
        present = tuple(map(operator.is_not, row, self._nones))
        plan = self._plans.get(present)
        if plan is None:
            bound = [i for i, (p, k) in enumerate(zip(present, self._kept, strict=True)) if p or k]
            names = [self._columns[i] for i in bound]
            absent = [i for i, p in enumerate(present) if not p]
            plan = self._plans[present] = _Plan(
                f"INSERT INTO {self._table} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' * len(names))}){self._suffix}",
                _getter(bound), _getter(absent), (None,) * len(absent),
                all(present[i] for i in bound))
        return plan

    def many(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert the rows in order; the statements' change count. A row is first checked
        against the previous row's pattern (its absent values None, its bound ones not: two C
        calls and a scan), the common case in a batch; else its pattern is looked up."""
        changed = 0
        sql, run = "", list[tuple[Any, ...]]()
        plan: _Plan | None = None
        for row in rows:
            values = plan.take(row) if plan is not None and plan.exact else None
            if values is None or None in values or plan is None or plan.absent(row) != plan.nones:
                plan = self._plan(row)
                values = plan.take(row)
            if plan.sql is not sql:
                if run:
                    changed += _change(conn, sql, run)
                sql, run = plan.sql, []
            run.append(values)
        if run:
            changed += _change(conn, sql, run)
        return changed


Insert = str | NullFreeInsert


class SchemaInsert:
    """A `NullFreeInsert` read from the schema on first use, read again after `reset` (the
    schema migrated). Use it from the connection's thread."""

    def __init__(self, table: str, columns: Sequence[str], suffix: str) -> None:
        self._args = (table, tuple(columns), suffix)
        self._insert: NullFreeInsert | None = None

    def of(self, conn: sqlite3.Connection) -> NullFreeInsert:
        if self._insert is None:
            self._insert = NullFreeInsert.of(conn, *self._args)
        return self._insert

    def reset(self) -> None:
        self._insert = None


def insert_fresh(conn: sqlite3.Connection, insert_sql: Insert, rows: Sequence[Sequence[Any]],
                 entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """Insert the rows (`insert_sql` ignores ids the table holds); the entries that were stored
    now, in order, each id once (a repeated id in the batch: the first one). In a write
    transaction (the rowids read before the insert must be the last ones)."""
    last = _last_rowid(conn)
    if last > MAX_ROWID - len(rows):  # rowids may come at random: look the ids up
        return _insert_checked(conn, insert_sql, rows, entries)
    if _change(conn, insert_sql, rows) == len(rows):  # every row new: every entry counts
        return list(entries)
    return _inserted_after(conn, last, entries)


def _last_rowid(conn: sqlite3.Connection) -> int:
    with contextlib.closing(conn.execute("SELECT max(rowid) FROM llmroute_requests")) as cursor:
        last = cursor.fetchone()[0]
    return 0 if last is None else int(last)


def _inserted_after(conn: sqlite3.Connection, last: int,
                    entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """The entries whose rows have rowids past `last` (inserted now), each id once, in order."""
    sql = "SELECT request_id FROM llmroute_requests WHERE rowid > ?"
    with contextlib.closing(conn.execute(sql, (last,))) as cursor:
        new = {row[0] for row in cursor.fetchall()}
    fresh = []
    for entry in entries:
        if entry.request_id in new:
            new.discard(entry.request_id)  # a repeated id in the batch: the first one was stored
            fresh.append(entry)
    return fresh


def _insert_checked(conn: sqlite3.Connection, insert_sql: Insert, rows: Sequence[Sequence[Any]],
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


def _change(conn: sqlite3.Connection, sql: Insert, rows: Sequence[Sequence[Any]]) -> int:
    if isinstance(sql, NullFreeInsert):
        return sql.many(conn, rows)
    with contextlib.closing(conn.executemany(sql, rows)) as cursor:
        return cursor.rowcount

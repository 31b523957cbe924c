"""`SQLiteStore`: the embedded ledger backend, on the standard library's sqlite3.

One connection in WAL mode (`synchronous=NORMAL`, a busy timeout so concurrent processes wait rather
than fail), opened on first use and guarded by a lock; every call runs in a worker thread through
a dedicated worker thread, so the event loop never waits on the disk. `:memory:` works (one connection,
so the data lives as long as the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .aggregate_rows import Bucket, MoneyTextError, chunks_needed, fold, ranks_wanted, read_bucket
from .aggregate_sql import DEFAULT_CHUNKS, SqlDialect, bucket_sql, percentile_sql, where_clause
from .aggregates import WindowAggregate, check_group_key
from .entry import LedgerEntry, as_utc, check_rating
from .explore_sql import Cursor as PageCursor
from .explore_sql import Filters, latest_sql
from .idle import Starved, lower_this_thread
from .migrations import MIGRATIONS, MIGRATIONS_TABLE, REBUILD_AFTER, sqlite_statements
from .paging import DEFAULT_BATCH_SIZE, Pager
from .prune_sqlite import prune as _prune
from .rated import Cursor, Rated, rated_of, rated_params, rated_sql
from .retention import Cutoffs, Pruned
from .rollup_cover import check_window, cover
from .rollup_delta import delta_of_entries
from .rollup_queries import STORED_FROM_SQL, check_groupings, count_fields, read_money, window_queries
from .rollup_read import RollupWindow, WindowFolds, fact_from_row, histogram_rows, merged_rows
from .rollup_sql import (
    FACT_COLUMNS,
    clear_sql,
    delta_params,
    insert_latency_sql,
    latency_params,
    merge_latency_sql,
    rebuild_day_hists_sql,
    rebuild_hour_bins_sql,
    rebuild_sql,
    register_functions,
    upsert_rollups_sql,
)
from .rollup_sql import (
    SQLITE as _ROLLUP_SQL,
)
from .rollups import LATENCY_DIMS, Delta, LatencyKey, feedback_delta
from .rows import COLUMNS, INSERT_COLUMNS, SQLITE, sqlite_time, to_rows
from .rows import from_row as _from_row
from .sketch import Histogram
from .sqlite_insert import Insert, SchemaInsert, bind_none_directly, insert_fresh
from .sqlite_tx import immediate
from .store import MigrationStatus, StoreError, StoreRejectedError, check_limit

T = TypeVar("T")
MEMORY = ":memory:"
#: Errors caused by the data itself (a constraint, a value SQLite cannot bind), not by the database.
_REJECTED = (sqlite3.IntegrityError, sqlite3.DataError, sqlite3.ProgrammingError, OverflowError)
_SQL = SqlDialect(placeholder=lambda _: "?", time_param=sqlite_time, day="substr(ts, 1, 10)",
                  text_money=True)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM llmroute_requests"
_CONFLICT = " ON CONFLICT (request_id) DO NOTHING"
_INSERT = (f"INSERT INTO llmroute_requests ({', '.join(INSERT_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(INSERT_COLUMNS))}){_CONFLICT}")
_UPSERT_ROLLUPS = upsert_rollups_sql(_ROLLUP_SQL)
_MERGE_LATENCY = merge_latency_sql()
_FACTS = f"SELECT {', '.join(FACT_COLUMNS)} FROM llmroute_requests"
_FEEDBACK = """
UPDATE llmroute_requests SET
    feedback_ts = CASE
        WHEN (?2 IS NOT NULL AND ?2 IS NOT user_rating) OR (?3 IS NOT NULL AND ?3 IS NOT task_success)
          OR (?4 IS NOT NULL AND ?4 IS NOT feedback_comment) THEN ?5
        ELSE feedback_ts END,
    user_rating = COALESCE(?2, user_rating),
    task_success = COALESCE(?3, task_success),
    feedback_comment = COALESCE(?4, feedback_comment)
WHERE request_id = ?1 AND (?6 IS NULL OR key_name = ?6)
"""


class SQLiteStore:
    """The ledger in one SQLite file (or in memory)."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.Lock()
        # A thread of its own: a call stuck on a locked database must never starve the event
        # loop's default executor (which also resolves host names for every new connection).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmroute-sqlite")
        #: `write_idle`'s thread, at the lowest CPU priority (started on first use), and whether
        #: it was starved lately (then `write_idle` writes as `write_behind` does for a while).
        self._idle: ThreadPoolExecutor | None = None
        self._starved = Starved()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        #: Text older than this was cleared by this store's last prune.
        self._text_cleared: datetime | None = None
        self._insert = SchemaInsert("llmroute_requests", INSERT_COLUMNS, _CONFLICT)  # no NULL bound

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    # -- plumbing ----------------------------------------------------------------------------
    async def _call(self, fn: Callable[[sqlite3.Connection], T],
                    executor: ThreadPoolExecutor | None = None) -> T:
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor or self._executor, self._locked, fn)

    def _locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            try:
                return fn(self._connection())
            except _REJECTED as exc:
                raise StoreRejectedError(f"{self!r}: {type(exc).__name__}: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreError(f"{self!r}: {type(exc).__name__}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != MEMORY:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000,
                                   isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
                self._enable_wal(conn)
                conn.execute("PRAGMA synchronous=NORMAL")
                register_functions(conn)
                bind_none_directly()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a file to WAL (a lasting property of the file). The switch needs the file to
        itself and does not wait on the busy handler, so retry while other processes hold it."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
            if mode in ("wal", "memory"):
                return
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @staticmethod
    def _transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in an immediate (write-locked) transaction: commit, or roll back and raise."""
        return immediate(conn, work)

    # -- migrations --------------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        self._insert.reset()
        return await self._call(lambda conn: self._transaction(conn, _apply_migrations))

    async def migration_status(self) -> list[MigrationStatus]:
        return await self._call(_migration_status)

    # -- entries -----------------------------------------------------------------------------
    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        await self._write_on(self._executor, entries)

    #: `PacedWrites`: a write is one call on the store's thread, so a batch at a time even when behind.
    catch_up = 1

    async def write_idle(self, entries: Sequence[LedgerEntry]) -> None:
        """`write` by a thread at the lowest CPU priority (`idle.IDLE_NICE`): for a batch that can
        wait while requests use the CPU. The connection (and its lock) is the same. While an
        earlier idle write was starved (`idle.Starved`), as `write_behind`."""
        if self._starved.lately():
            return await self.write_behind(entries)
        if self._idle is None:
            self._idle = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmroute-sqlite-idle",
                                            initializer=lower_this_thread)
        await self._write_on(self._idle, entries, timed=self._starved)

    async def write_behind(self, entries: Sequence[LedgerEntry]) -> None:
        """`write` with the rows built in one go: for a writer that is behind."""
        await self._write_on(self._executor, entries, sliced=False)

    async def _write_on(self, executor: ThreadPoolExecutor, entries: Sequence[LedgerEntry], *,
                        sliced: bool = True, timed: Starved | None = None) -> None:
        rows = await to_rows(entries, SQLITE, sliced=sliced)
        if rows:
            def work(conn: sqlite3.Connection) -> None:
                self._transaction(conn, lambda c: _write(c, rows, entries, self._insert.of(c)))
            await self._call(work if timed is None else timed.timed(work), executor)

    async def feedback(self, request_id: str, rating: int | None = None, success: bool | None = None,
                       comment: str | None = None, *, at: datetime | None = None,
                       owner: str | None = None) -> bool:
        check_rating(rating)
        when = sqlite_time(as_utc(at, "at") if at else datetime.now(UTC))
        flag = None if success is None else int(success)
        params = (request_id, rating, flag, comment, when, owner)
        return await self._call(lambda conn: self._transaction(
            conn, lambda c: _feedback(c, params, rating, success)))

    async def get(self, request_id: str) -> LedgerEntry | None:
        rows = await self._call(lambda conn: _fetch(conn, f"{_SELECT} WHERE request_id = ?", (request_id,)))
        return _from_row(rows[0], SQLITE) if rows else None

    async def rated(self, until: datetime, after: Cursor | None = None,
                    limit: int = 500) -> list[Rated]:
        sql = rated_sql(_SQL.placeholder, after is not None, limit)
        params = rated_params(until, after, sqlite_time)
        rows = await self._call(lambda conn: _fetch(conn, sql, params))
        return [rated_of(row, SQLITE.time_in) for row in rows]

    async def query(self, since: datetime | None = None, until: datetime | None = None,
                    limit: int | None = None, *,
                    experiments: Sequence[str] | None = None) -> list[LedgerEntry]:
        check_limit(limit)
        params: list[Any] = []
        sql = _SELECT + where_clause(_SQL, since, until, params, experiments) + " ORDER BY ts, request_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = await self._call(lambda conn: _fetch(conn, sql, params))
        return [_from_row(row, SQLITE) for row in rows]

    def iterate(self, since: datetime | None = None, until: datetime | None = None, *,
                batch_size: int = DEFAULT_BATCH_SIZE,
                experiments: Sequence[str] | None = None,
                cache: Sequence[str] | None = None) -> AsyncIterator[list[LedgerEntry]]:
        return Pager.build(_SQL, _SELECT, since, until, experiments, batch_size,
                           cache).batches(self._page)

    async def latest(self, since: datetime, until: datetime, filters: Filters, limit: int,
                     before: PageCursor | None = None) -> list[LedgerEntry]:
        return await self._page(*latest_sql(_SQL, _SELECT, since, until, filters, limit, before))

    async def _page(self, sql: str, params: Sequence[Any]) -> list[LedgerEntry]:
        """One batch, its rows turned into entries in the store's thread (off the event loop)."""
        return await self._call(lambda conn: [_from_row(row, SQLITE) for row in _fetch(conn, sql, params)])

    async def aggregate(self, by: str, since: datetime | None = None,
                        until: datetime | None = None, *, key: str | None = None
                        ) -> WindowAggregate:
        check_group_key(by)
        params: list[Any] = []
        where = where_clause(_SQL, since, until, params, key=key)
        return await self._call(lambda conn: _aggregate(conn, by, where, params))

    async def rollups(self, by: str, since: datetime | None = None,
                      until: datetime | None = None) -> RollupWindow:
        return (await self.rollups_by((by,), since, until))[by]

    async def rollups_by(self, bys: Sequence[str], since: datetime | None = None,
                         until: datetime | None = None) -> dict[str, RollupWindow]:
        window = check_window(since, until)
        check_groupings(bys)
        return await self._call(lambda conn: _rollups(conn, bys, *window))

    async def rebuild_rollups(self) -> None:
        await self._call(lambda conn: self._transaction(conn, _rebuild))

    async def prune(self, cutoffs: Cutoffs, *, dry_run: bool = False) -> Pruned:
        pruned = await _prune(self._call, cutoffs, dry_run=dry_run, text_floor=self._text_cleared)
        if not dry_run and cutoffs.text is not None:
            self._text_cleared = max(cutoffs.text, self._text_cleared or cutoffs.text)
        return pruned

    async def count(self) -> int:
        rows = await self._call(lambda conn: _fetch(conn, "SELECT count(*) FROM llmroute_requests"))
        return int(rows[0][0])

    async def ping(self) -> None:
        await self._call(lambda conn: _fetch(conn, "SELECT 1"))

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` on the connection in the store's thread (autocommit: one statement is its own
        transaction); for modules with tables of their own, such as the alert history."""
        return await self._call(work)

    async def close(self) -> None:
        if self._closed:
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)
        if self._idle is not None:
            self._idle.shutdown(wait=False)

    def _close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _fetch(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """All rows of a query. Cursors never leave the worker thread: one finalized on another thread
    while the connection is busy is API misuse (SQLITE_MISUSE)."""
    with contextlib.closing(conn.execute(sql, params)) as cursor:
        return cursor.fetchall()


def _aggregate(conn: sqlite3.Connection, by: str, where: str, params: Sequence[Any]) -> WindowAggregate:
    """Both aggregation queries in one read transaction (one snapshot of the file)."""
    conn.execute("BEGIN")
    try:
        buckets = _buckets(conn, by, where, params)
        sql = percentile_sql(_SQL, by, where, *ranks_wanted(buckets))
        ranked = _fetch(conn, sql, params) if buckets else []
    finally:
        conn.execute("COMMIT")
    return fold(by, buckets, ranked)


def _buckets(conn: sqlite3.Connection, by: str, where: str, params: Sequence[Any]) -> list[Bucket]:
    """The buckets, money summed whole, else (a long text, a sum past 64 bits) in chunks."""
    chunks = DEFAULT_CHUNKS
    try:
        rows = _fetch(conn, bucket_sql(_SQL, by, where, chunks), params)
        needed = chunks_needed(rows)
    except MoneyTextError as exc:
        raise StoreError(f"{exc}: cannot sum the ledger's money exactly") from exc
    except sqlite3.OperationalError as exc:
        if "integer overflow" not in str(exc):
            raise
        rows, needed = [], 2
    if needed > chunks:
        chunks = needed
        rows = _fetch(conn, bucket_sql(_SQL, by, where, chunks), params)
    return [read_bucket(row, chunks) for row in rows]


def _write(conn: sqlite3.Connection, rows: Sequence[Sequence[Any]],
           entries: Sequence[LedgerEntry], insert: Insert = _INSERT) -> None:
    """Insert the rows and roll up the entries that were not stored before (in the caller's
    transaction, so a replayed batch is counted once)."""
    _apply(conn, delta_of_entries(insert_fresh(conn, insert, rows, entries)))


def _apply(conn: sqlite3.Connection, delta: Delta) -> None:
    """Add a delta to the rollups (in the caller's write transaction: one writer at a time)."""
    rollups = delta_params(_ROLLUP_SQL, delta)
    if rollups:
        _change(conn, _UPSERT_ROLLUPS, rollups)
    if delta.latencies:  # merged with the stored histograms in the upsert: none read first
        _change(conn, _MERGE_LATENCY, latency_params(_ROLLUP_SQL, delta, _nothing_stored))


def _nothing_stored(key: LatencyKey) -> Histogram:
    return {}


def _feedback(conn: sqlite3.Connection, params: Sequence[Any], rating: int | None,
              success: bool | None) -> bool:
    """Apply feedback and move the rollups of the entry by what changed."""
    request_id, owner = params[0], params[5]
    found = _fetch(conn, f"{_FACTS} WHERE request_id = ? AND (? IS NULL OR key_name = ?)",
                   (request_id, owner, owner))
    if not found:
        return False
    _change(conn, _FEEDBACK, [params])
    old = fact_from_row(found[0], SQLITE)
    _apply(conn, feedback_delta(old, old.with_feedback(rating, success)))
    return True


def _rebuild(conn: sqlite3.Connection) -> None:
    """Every rollup again from the raw rows (in the caller's transaction)."""
    for statement in (*clear_sql(), *rebuild_sql(_ROLLUP_SQL)):
        conn.execute(statement)
    insert = insert_latency_sql(_ROLLUP_SQL)
    for dim in LATENCY_DIMS:
        with contextlib.closing(conn.execute(rebuild_hour_bins_sql(_ROLLUP_SQL, dim))) as rows:
            hours = [(dim, "hour", hour, value, blob) for hour, value, blob in histogram_rows(rows)]
        conn.executemany(insert, hours)
    with contextlib.closing(conn.execute(rebuild_day_hists_sql(_ROLLUP_SQL))) as rows:
        days = [(dim, "day", day, value, blob) for dim, day, value, blob in merged_rows(rows)]
    conn.executemany(insert, days)


def _rollups(conn: sqlite3.Connection, bys: Sequence[str], since: datetime | None,
             until: datetime | None) -> dict[str, RollupWindow]:
    """A window's numbers from one read transaction: rollups for its hours and days, raw rows
    for its edges (`rollup_queries.window_queries`)."""
    folds = WindowFolds(bys, count_fields(), read_money(_ROLLUP_SQL))
    conn.execute("BEGIN")
    try:
        raw_from, hours_from, newest = (None if t is None else SQLITE.time_in(t)
                                        for t in _fetch(conn, STORED_FROM_SQL)[0])
        window = cover(since, until, raw_from=raw_from, hours_from=hours_from, newest=newest)
        for query in window_queries(_ROLLUP_SQL, bys, window):
            folds.add(query.kind, _fetch(conn, query.sql, query.params), query.sign)
    finally:
        conn.execute("COMMIT")
    return folds.results()



def _change(conn: sqlite3.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run a write statement for each row; how many rows it touched."""
    with contextlib.closing(conn.executemany(sql, rows)) as cursor:
        return cursor.rowcount


def _apply_migrations(conn: sqlite3.Connection) -> list[str]:
    conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                 "(name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in _fetch(conn, f"SELECT name FROM {MIGRATIONS_TABLE}")}
    applied: list[str] = []
    for migration in MIGRATIONS:
        if migration.name in done:
            continue
        for statement in sqlite_statements(migration.sqlite_sql):
            conn.execute(statement)
        conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)",
                     (migration.name, sqlite_time(datetime.now(UTC))))
        applied.append(migration.name)
    if REBUILD_AFTER.intersection(applied):  # roll up the rows written before, on the schema complete
        _rebuild(conn)
    return applied


def _migration_status(conn: sqlite3.Connection) -> list[MigrationStatus]:
    exists = _fetch(conn, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                    (MIGRATIONS_TABLE,))
    rows = _fetch(conn, f"SELECT name, applied_at FROM {MIGRATIONS_TABLE} ORDER BY name") if exists else []
    applied = {name: SQLITE.time_in(at) for name, at in rows}
    known = [MigrationStatus(m.name, applied.pop(m.name, None)) for m in MIGRATIONS]
    return known + [MigrationStatus(name, at) for name, at in applied.items()]

"""`PostgresStore`: the ledger in PostgreSQL, through an asyncpg connection pool.

Everything lives in one schema (`public` by default; created when missing, so tests can use a
throwaway schema): each pooled connection's `search_path` points at it. The pool is created on first
use, so a store can be built while the database is down. Migrations run under a transaction-level
advisory lock keyed by the schema, so concurrent starters apply each migration once. Driver errors
become `StoreError` (`StoreRejectedError` for data the database refuses). PostgreSQL text cannot hold
NUL characters: they are stored as U+FFFD.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from .aggregate_rows import fold, ranks_wanted, read_bucket
from .aggregate_sql import SqlDialect, bucket_sql, percentile_sql, where_clause
from .aggregates import WindowAggregate, check_group_key
from .entry import LedgerEntry, as_utc, check_rating
from .explore_sql import Cursor as PageCursor
from .explore_sql import Filters, latest_sql
from .migrations import MIGRATIONS, MIGRATIONS_TABLE, REBUILD_AFTER
from .paging import DEFAULT_BATCH_SIZE, Pager
from .partitions import ensure_months
from .partitions import prune as _prune
from .rated import Cursor, Rated, rated_of, rated_params, rated_sql
from .retention import Cutoffs, Pruned, month_start, next_month
from .rollup_cover import check_window, cover
from .rollup_delta import delta_of_entries
from .rollup_queries import STORED_FROM_SQL, check_groupings, count_fields, read_money, window_queries
from .rollup_read import RollupWindow, WindowFolds, fact_from_row, histogram_rows, merged_rows
from .rollup_sql import (
    FACT_COLUMNS,
    LATENCY_TABLE,
    ROLLUPS_TABLE,
    clear_sql,
    delta_params,
    insert_latency_sql,
    latency_params,
    rebuild_day_hists_sql,
    rebuild_hour_bins_sql,
    rebuild_sql,
    stored_latency_sql,
    upsert_many_sql,
)
from .rollup_sql import (
    POSTGRES as _ROLLUP_SQL,
)
from .rollups import LATENCY_DIMS, Delta, LatencyKey, feedback_delta
from .rows import COLUMNS, INSERT_COLUMNS, POSTGRES, from_row, to_rows
from .sketch import unpack
from .store import MigrationStatus, StoreError, StoreRejectedError, check_limit

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: A migration may move every row (0005_partitions): far longer than an ordinary command.
_MIGRATION_TIMEOUT_S = 6 * 3600.0
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
#: Errors caused by the data itself (SQLSTATE classes 22 and 23, or a value asyncpg cannot encode).
_REJECTED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
#: Columns of type jsonb: sent and read as text.
_JSON_COLUMNS = frozenset({"attempts", "shadow"})
_SQL = SqlDialect(placeholder=lambda n: f"${n}", time_param=lambda t: t,
                  day="to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD')", text_money=False)
_SELECT = "SELECT " + ", ".join(f"{c}::text" if c in _JSON_COLUMNS else c for c in COLUMNS) + \
    " FROM llmroute_requests"
#: The PostgreSQL type of each column but text (jsonb columns travel as text).
_TYPES = {"ts": "timestamptz", "feedback_ts": "timestamptz", "http_status": "integer",
          "confidence": "float8", "latency_s": "float8", "ttft_s": "float8",
          "upstream_latency_s": "float8", "input_tokens": "int8", "output_tokens": "int8",
          "cached_tokens": "int8", "stream": "boolean", "usage_estimated": "boolean",
          "explored": "boolean", "unpriced": "boolean", "fallback": "boolean",
          "task_success": "boolean", "cost_usd": "numeric", "baseline_cost_usd": "numeric",
          "routing_cost_usd": "numeric", "cache_write_tokens": "int8",
          "prompt_cache_saved_usd": "numeric", "cache_saved_usd": "numeric",
          "cache_similarity": "float8", "user_rating": "int2"}
#: A batch in one statement (one array per column), answering the ids it inserted: the entries
#: rolled up are exactly the new ones, even with another writer inserting the same id at once.
#: The conflict target is the primary key of the partitioned table (0005_partitions): a replayed
#: entry has the same request_id and ts.
_INSERT = (f"INSERT INTO llmroute_requests ({', '.join(INSERT_COLUMNS)}) SELECT "
           + ", ".join(f"{c}::jsonb" if c in _JSON_COLUMNS else c for c in INSERT_COLUMNS)
           + " FROM unnest(" + ", ".join(f"${i}::{_TYPES.get(c, 'text')}[]"
                                         for i, c in enumerate(INSERT_COLUMNS, 1))
           + f") AS batch({', '.join(INSERT_COLUMNS)}) ON CONFLICT (request_id, ts) DO NOTHING "
           "RETURNING request_id")
_UPSERT_ROLLUPS = upsert_many_sql(ROLLUPS_TABLE)
_UPSERT_LATENCY = upsert_many_sql(LATENCY_TABLE)
_STORED_LATENCY = stored_latency_sql(_ROLLUP_SQL)
_FACTS = f"SELECT {', '.join(FACT_COLUMNS)} FROM llmroute_requests"
_FEEDBACK = """
UPDATE llmroute_requests SET
    feedback_ts = CASE
        WHEN ($2::smallint IS NOT NULL AND $2::smallint IS DISTINCT FROM user_rating)
          OR ($3::boolean IS NOT NULL AND $3::boolean IS DISTINCT FROM task_success)
          OR ($4::text IS NOT NULL AND $4::text IS DISTINCT FROM feedback_comment) THEN $5
        ELSE feedback_ts END,
    user_rating = COALESCE($2::smallint, user_rating),
    task_success = COALESCE($3::boolean, task_success),
    feedback_comment = COALESCE($4::text, feedback_comment)
WHERE request_id = $1 AND ($6::text IS NULL OR key_name = $6::text)
"""


def advisory_key(schema: str) -> int:
    """A stable signed 64-bit advisory-lock key for migrating `schema`."""
    digest = hashlib.sha256(f"llmroute.ledger.migrate:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresStore:
    """The ledger in a PostgreSQL schema."""

    def __init__(self, dsn: str, schema: str = "public", *, min_size: int = 1, max_size: int = 10,
                 connect_timeout_s: float = 10.0, command_timeout_s: float = 30.0) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema must be a lower-case SQL identifier ([a-z_][a-z0-9_]*), "
                             f"got {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self._pool_options: dict[str, Any] = {
            "min_size": min_size, "max_size": max_size, "timeout": connect_timeout_s,
            "command_timeout": command_timeout_s,
            # jit off: compiling a plan costs 50-100 ms, more than the rollup reads themselves
            "server_settings": {"search_path": schema, "application_name": "llmroute-ledger",
                                "jit": "off"},
        }
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._closed = False
        #: Months whose partition this store knows exists (another replica's prune may drop one:
        #: its rows then go to the DEFAULT partition, never fail).
        self._months: set[datetime] = set()
        #: Text older than this was cleared by this store's last prune.
        self._text_cleared: datetime | None = None

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"  # never the DSN: it may hold a password

    # -- plumbing ----------------------------------------------------------------------------
    async def _get_pool(self) -> Any:
        async with self._pool_lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            if self._pool is None:
                self._pool = await asyncpg.create_pool(self.dsn, **self._pool_options)
            return self._pool

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        """A pooled connection; driver errors (including failing to connect) become StoreError."""
        try:
            pool = await self._get_pool()
            async with pool.acquire() as conn:
                yield conn
        except _REJECTED as exc:
            raise StoreRejectedError(f"{self!r}: {type(exc).__name__}: {exc}") from exc
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"{self!r}: {type(exc).__name__}: {exc}") from exc

    def connection(self) -> AbstractAsyncContextManager[Any]:
        """A pooled connection, driver errors as StoreError; for modules with tables of their own,
        such as the alert history."""
        return self._connection()

    # -- migrations --------------------------------------------------------------------------
    async def migrate(self) -> list[str]:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key(self.schema))
            if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema) is None:
                await conn.execute(f'CREATE SCHEMA "{self.schema}"')
            await conn.execute(f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
                               "(name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)")
            done = {row[0] for row in await conn.fetch(f"SELECT name FROM {MIGRATIONS_TABLE}")}
            applied: list[str] = []
            for migration in MIGRATIONS:
                if migration.name in done:
                    continue
                await conn.execute(migration.postgres_sql, timeout=_MIGRATION_TIMEOUT_S)
                await conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) "
                                   "VALUES ($1, now())", migration.name)
                applied.append(migration.name)
            if REBUILD_AFTER.intersection(applied):  # roll up the rows written before, schema complete
                await _rebuild(conn)
            return applied

    async def migration_status(self) -> list[MigrationStatus]:
        async with self._connection() as conn:
            table = f"{self.schema}.{MIGRATIONS_TABLE}"
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
            rows = await conn.fetch(f"SELECT name, applied_at FROM {table} ORDER BY name") if exists else []
        applied: dict[str, datetime] = {row[0]: row[1].astimezone(UTC) for row in rows}
        known = [MigrationStatus(m.name, applied.pop(m.name, None)) for m in MIGRATIONS]
        return known + [MigrationStatus(name, at) for name, at in applied.items()]

    # -- entries -----------------------------------------------------------------------------
    #: `PacedWrites`: while the writer is behind, up to 8 batches per write. A write waits for the
    #: event loop at each round trip (and, in the normal path, between slices of rows); at 64
    #: clients each wait is a whole round of requests, and batch by batch the writer fell behind
    #: (docs/benchmarks.md: up to 6,897-7,420 entries queued; with this, 253).
    catch_up = 8

    async def write(self, entries: Sequence[LedgerEntry], *, sliced: bool = True) -> None:
        """Write a batch, the rows built in slices between yields (`sliced`) or in one go.
        `PacedWrites`: `write_idle` is this (PostgreSQL works in its own process: no thread to
        lower), `write_behind` the rows in one go."""
        rows = await to_rows(entries, POSTGRES, sliced=sliced)
        if not rows:
            return
        columns = _columns(rows)
        await self._ensure_months(entries)
        async with self._connection() as conn, conn.transaction():
            inserted = {row[0] for row in await conn.fetch(_INSERT, *columns)}
            fresh = []
            for entry in entries:
                if entry.request_id in inserted:
                    inserted.discard(entry.request_id)  # a repeated id: the first was stored
                    fresh.append(entry)
            await _apply(conn, await asyncio.to_thread(delta_of_entries, fresh))

    write_idle = write

    async def write_behind(self, entries: Sequence[LedgerEntry]) -> None:
        await self.write(entries, sliced=False)

    async def _ensure_months(self, entries: Sequence[LedgerEntry]) -> None:
        """Create the partitions of the batch's months (and of the month after its latest, so
        that a new month's first batch rarely waits) unless this store knows they exist."""
        months = {month_start(entry.ts) for entry in entries}
        months.add(next_month(max(months)))
        if not months <= self._months:
            async with self._connection() as conn:
                self._months |= await ensure_months(conn, self.schema, months - self._months)

    async def feedback(self, request_id: str, rating: int | None = None, success: bool | None = None,
                       comment: str | None = None, *, at: datetime | None = None,
                       owner: str | None = None) -> bool:
        check_rating(rating)
        when = as_utc(at, "at") if at else datetime.now(UTC)
        async with self._connection() as conn, conn.transaction():
            found = await conn.fetchrow(f"{_FACTS} WHERE request_id = $1 AND "
                                        "($2::text IS NULL OR key_name = $2::text) FOR UPDATE",
                                        request_id, owner)
            if found is None:
                return False
            await conn.execute(_FEEDBACK, request_id, rating, success, comment, when, owner)
            old = fact_from_row(tuple(found), POSTGRES)
            await _apply(conn, feedback_delta(old, old.with_feedback(rating, success)))
        return True

    async def get(self, request_id: str) -> LedgerEntry | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE request_id = $1", request_id)
        return None if row is None else from_row(row, POSTGRES)

    async def rated(self, until: datetime, after: Cursor | None = None,
                    limit: int = 500) -> list[Rated]:
        sql = rated_sql(_SQL.placeholder, after is not None, limit)
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *rated_params(until, after, POSTGRES.time_out))
        return [rated_of(row, POSTGRES.time_in) for row in rows]

    async def query(self, since: datetime | None = None, until: datetime | None = None,
                    limit: int | None = None, *,
                    experiments: Sequence[str] | None = None) -> list[LedgerEntry]:
        check_limit(limit)
        params: list[Any] = []
        sql = _SELECT + where_clause(_SQL, since, until, params, experiments) + " ORDER BY ts, request_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [from_row(row, POSTGRES) for row in rows]

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
        """One batch, on a pooled connection taken for that query only."""
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [from_row(row, POSTGRES) for row in rows]

    async def aggregate(self, by: str, since: datetime | None = None,
                        until: datetime | None = None, *, key: str | None = None
                        ) -> WindowAggregate:
        check_group_key(by)
        params: list[Any] = []
        where = where_clause(_SQL, since, until, params, key=key)
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read",
                                                                readonly=True):
            buckets = [read_bucket(tuple(row), None)
                       for row in await conn.fetch(bucket_sql(_SQL, by, where), *params)]
            sql = percentile_sql(_SQL, by, where, *ranks_wanted(buckets))
            ranked = [tuple(row) for row in await conn.fetch(sql, *params)] if buckets else []
        return fold(by, buckets, ranked)

    async def rollups(self, by: str, since: datetime | None = None,
                      until: datetime | None = None) -> RollupWindow:
        return (await self.rollups_by((by,), since, until))[by]

    async def rollups_by(self, bys: Sequence[str], since: datetime | None = None,
                         until: datetime | None = None) -> dict[str, RollupWindow]:
        since, until = check_window(since, until)
        check_groupings(bys)
        folds = WindowFolds(bys, count_fields(), read_money(_ROLLUP_SQL))
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read",
                                                                readonly=True):
            raw_from, hours_from, newest = await conn.fetchrow(STORED_FROM_SQL)
            window = cover(since, until, raw_from=raw_from, hours_from=hours_from, newest=newest)
            for query in window_queries(_ROLLUP_SQL, bys, window):
                folds.add(query.kind, await conn.fetch(query.sql, *query.params), query.sign)
        return folds.results()

    async def rebuild_rollups(self) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("LOCK TABLE llmroute_requests IN SHARE MODE")
            await _rebuild(conn)

    async def prune(self, cutoffs: Cutoffs, *, dry_run: bool = False) -> Pruned:
        async with self._connection() as conn:
            pruned = await _prune(conn, self.schema, cutoffs, dry_run=dry_run,
                                  text_floor=self._text_cleared)
        if not dry_run:
            self._months = {month for month in self._months
                            if cutoffs.raw is None or next_month(month) > cutoffs.raw}
            if cutoffs.text is not None:
                self._text_cleared = max(cutoffs.text, self._text_cleared or cutoffs.text)
        return pruned

    async def count(self) -> int:
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM llmroute_requests"))

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        async with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10.0)
            except TimeoutError:
                pool.terminate()


#: The transaction-level advisory lock writers take before changing rollups: histograms are
#: merged in Python, so two writers must not read-merge-write the same one at once.
ROLLUP_LOCK = "llmroute.ledger.rollups"


async def _apply(conn: Any, delta: Delta) -> None:
    """Add a delta to the rollups, in the caller's transaction."""
    rollups = delta_params(_ROLLUP_SQL, delta)
    if not rollups and not delta.latencies:
        return
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || current_schema(), 0))",
                       ROLLUP_LOCK)
    if rollups:
        await conn.execute(_UPSERT_ROLLUPS, *_columns(rollups))
    if delta.latencies:
        keys = sorted(delta.latencies)
        found = await conn.fetch(_STORED_LATENCY, [k.dim for k in keys], [k.grain for k in keys],
                                 [k.start for k in keys], [k.value for k in keys])
        stored = {LatencyKey(row[1], row[2], row[0], row[3]): unpack(row[4]) for row in found}
        params = latency_params(_ROLLUP_SQL, delta, lambda key: stored.get(key, {}))
        await conn.execute(_UPSERT_LATENCY, *_columns(params))


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one list per column (the arrays of an unnest)."""
    return [list(column) for column in zip(*rows, strict=True)]


#: A rebuild reads every raw row: far longer than a normal command may take.
REBUILD_TIMEOUT_S = 6 * 3600.0


async def _rebuild(conn: Any) -> None:
    """Every rollup again from the raw rows (in the caller's transaction)."""
    for statement in (*clear_sql(), *rebuild_sql(_ROLLUP_SQL)):
        await conn.execute(statement, timeout=REBUILD_TIMEOUT_S)
    insert = insert_latency_sql(_ROLLUP_SQL)
    for dim in LATENCY_DIMS:
        rows = await conn.fetch(rebuild_hour_bins_sql(_ROLLUP_SQL, dim), timeout=REBUILD_TIMEOUT_S)
        await conn.executemany(insert, [(dim, "hour", hour, value, blob)
                                        for hour, value, blob in histogram_rows(rows)])
    rows = await conn.fetch(rebuild_day_hists_sql(_ROLLUP_SQL), timeout=REBUILD_TIMEOUT_S)
    await conn.executemany(insert, [(dim, "day", day, value, blob)
                                    for dim, day, value, blob in merged_rows(rows)])


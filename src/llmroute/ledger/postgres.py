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
from .migrations import MIGRATIONS, MIGRATIONS_TABLE
from .paging import DEFAULT_BATCH_SIZE, Pager
from .rows import COLUMNS, POSTGRES, from_row, to_rows
from .store import MigrationStatus, StoreError, StoreRejectedError, check_limit

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
#: Errors caused by the data itself (SQLSTATE classes 22 and 23, or a value asyncpg cannot encode).
_REJECTED = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
#: Columns of type jsonb: sent and read as text.
_JSON_COLUMNS = frozenset({"attempts", "shadow"})
_SQL = SqlDialect(placeholder=lambda n: f"${n}", time_param=lambda t: t,
                  day="to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD')", text_money=False)
_SELECT = "SELECT " + ", ".join(f"{c}::text" if c in _JSON_COLUMNS else c for c in COLUMNS) + \
    " FROM llmroute_requests"
_INSERT = (f"INSERT INTO llmroute_requests ({', '.join(COLUMNS)}) VALUES ("
           + ", ".join(f"${i}::jsonb" if c in _JSON_COLUMNS else f"${i}"
                       for i, c in enumerate(COLUMNS, 1))
           + ") ON CONFLICT (request_id) DO NOTHING")
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
            "server_settings": {"search_path": schema, "application_name": "llmroute-ledger"},
        }
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._closed = False

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
                await conn.execute(migration.postgres_sql)
                await conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) "
                                   "VALUES ($1, now())", migration.name)
                applied.append(migration.name)
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
    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        rows = await to_rows(entries, POSTGRES)
        if not rows:
            return
        async with self._connection() as conn, conn.transaction():
            await conn.executemany(_INSERT, rows)

    async def feedback(self, request_id: str, rating: int | None = None, success: bool | None = None,
                       comment: str | None = None, *, at: datetime | None = None,
                       owner: str | None = None) -> bool:
        check_rating(rating)
        async with self._connection() as conn:
            when = as_utc(at, "at") if at else datetime.now(UTC)
            status = await conn.execute(_FEEDBACK, request_id, rating, success, comment, when, owner)
        return int(str(status).rsplit(" ", 1)[-1]) > 0

    async def get(self, request_id: str) -> LedgerEntry | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE request_id = $1", request_id)
        return None if row is None else from_row(row, POSTGRES)

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
                experiments: Sequence[str] | None = None) -> AsyncIterator[list[LedgerEntry]]:
        return Pager.build(_SQL, _SELECT, since, until, experiments, batch_size).batches(self._page)

    async def _page(self, sql: str, params: Sequence[Any]) -> list[LedgerEntry]:
        """One batch, on a pooled connection taken for that query only."""
        async with self._connection() as conn:
            rows = await conn.fetch(sql, *params)
        return [from_row(row, POSTGRES) for row in rows]

    async def aggregate(self, by: str, since: datetime | None = None,
                        until: datetime | None = None) -> WindowAggregate:
        check_group_key(by)
        params: list[Any] = []
        where = where_clause(_SQL, since, until, params)
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read",
                                                                readonly=True):
            buckets = [read_bucket(tuple(row), None)
                       for row in await conn.fetch(bucket_sql(_SQL, by, where), *params)]
            sql = percentile_sql(_SQL, by, where, *ranks_wanted(buckets))
            ranked = [tuple(row) for row in await conn.fetch(sql, *params)] if buckets else []
        return fold(by, buckets, ranked)

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

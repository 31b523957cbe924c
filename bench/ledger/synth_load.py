"""Bulk loading into a ledger whose schema the store's own `migrate()` created.

The fastest path per backend, keeping the schema exactly as migrated: the table's secondary
indexes are read from the catalog, dropped, and re-created from their own definitions after the
load (also when the load fails, so the ledger never stays without them).

- SQLite: `executemany` in one transaction per batch, with `journal_mode=OFF`, `synchronous=OFF`
  and a large page cache during the load; WAL (the store's mode) is restored at the end.
- PostgreSQL: asyncpg's binary `copy_records_to_table` per batch with `synchronous_commit=off`,
  then the indexes and `VACUUM ANALYZE` (what autovacuum would have done to a ledger this size).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from llmroute.ledger.migrations import REQUESTS_TABLE


class Loader(Protocol):
    """Where the generated rows go."""

    async def write(self, rows: Sequence[tuple[Any, ...]]) -> None: ...

    async def finish(self) -> dict[str, float]:
        """Re-create the indexes and restore the settings; timings of those steps (seconds)."""
        ...


#: A connection lost (e.g. to another session's pg_terminate_backend): reconnect and run again.
_LOST = (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, asyncpg.InterfaceError,
         asyncpg.InternalClientError, OSError)


class SQLiteLoader:
    """Loads one SQLite file (nothing else may use it meanwhile: the journal is off)."""

    def __init__(self, path: str, columns: Sequence[str], cache_mib: int = 512) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{cache_mib * 1024}",
                       "temp_store=MEMORY", "locking_mode=EXCLUSIVE"):
            self.conn.execute(f"PRAGMA {pragma}")
        found = self.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND "
                                  "tbl_name = ? AND sql IS NOT NULL", (REQUESTS_TABLE,)).fetchall()
        self.indexes: list[tuple[str, str]] = [(str(name), str(sql)) for name, sql in found]
        for name, _ in self.indexes:
            self.conn.execute(f'DROP INDEX "{name}"')
        self.insert = (f"INSERT INTO {REQUESTS_TABLE} ({', '.join(columns)}) "
                       f"VALUES ({', '.join('?' * len(columns))})")

    async def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.conn.execute("BEGIN")
        try:
            self.conn.executemany(self.insert, rows)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    async def finish(self) -> dict[str, float]:
        started = time.perf_counter()
        for _, sql in self.indexes:
            self.conn.execute(sql)
        indexed = time.perf_counter()
        self.conn.execute("PRAGMA locking_mode=NORMAL")
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.close()
        return {"indexes_s": indexed - started, "finish_s": time.perf_counter() - indexed}


class PostgresLoader:
    """Loads the ledger table of one schema through one connection."""

    def __init__(self, conn: Any, dsn: str, schema: str, columns: Sequence[str],
                 indexes: list[tuple[str, str]]) -> None:
        self.conn = conn
        self.dsn = dsn
        self.schema = schema
        self.columns = list(columns)
        self.indexes = indexes

    @staticmethod
    async def _connect(dsn: str, schema: str) -> Any:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        await conn.execute("SET synchronous_commit TO off")
        await conn.execute("SET maintenance_work_mem TO '512MB'")
        return conn

    @classmethod
    async def open(cls, dsn: str, schema: str, columns: Sequence[str]) -> PostgresLoader:
        conn = await cls._connect(dsn, schema)
        found = await conn.fetch(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = $1 AND "
            "i.tablename = $2 AND NOT EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_namespace n "
            "ON n.oid = c.connamespace WHERE n.nspname = $1 AND c.conname = i.indexname)",
            schema, REQUESTS_TABLE)
        indexes = [(str(r[0]), str(r[1])) for r in found]
        for name, _ in indexes:
            await conn.execute(f'DROP INDEX "{schema}"."{name}"')
        return cls(conn, dsn, schema, columns, indexes)

    async def write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        await self.conn.copy_records_to_table(REQUESTS_TABLE, records=rows, columns=self.columns,
                                              schema_name=self.schema)

    async def finish(self) -> dict[str, float]:
        started = time.perf_counter()
        for _, sql in self.indexes:
            # pg_indexes writes a partitioned table's index as "ON ONLY": re-created that way it
            # would stay invalid and reach no partition
            sql = sql.replace(" ON ONLY ", " ON ", 1)
            await self._execute(sql.replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
        indexed = time.perf_counter()
        await self._execute(f"VACUUM ANALYZE {REQUESTS_TABLE}")
        await self.conn.close()
        return {"indexes_s": indexed - started, "vacuum_analyze_s": time.perf_counter() - indexed}

    async def _execute(self, sql: str, tries: int = 3) -> None:
        """Run one idempotent statement, reconnecting when the connection is lost (minutes of
        index building should not be thrown away with the rows already loaded)."""
        for attempt in range(tries):
            try:
                await self.conn.execute(sql)
                return
            except _LOST as exc:
                if attempt == tries - 1:
                    raise
                print(f"  connection lost ({type(exc).__name__}); reconnecting", flush=True)
                self.conn.terminate()
                self.conn = await self._connect(self.dsn, self.schema)

"""Ledger test fixtures: the same tests run against SQLite (a temporary file) and PostgreSQL.

PostgreSQL tests use schemas named after one prefix unique to the test module (one schema per test,
dropped after it; the module sweeps anything left with that prefix). They are skipped only when
the server is unreachable (set LLMROUTE_TEST_POSTGRES_DSN to point elsewhere).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from ledger_factories import POSTGRES_DSN, FlakyStore

from llmroute.ledger import SQLiteStore, Store
from llmroute.ledger.postgres import PostgresStore


async def _postgres_error() -> str | None:
    try:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=3)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def _drop_schemas(like: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
    try:
        names = await conn.fetch("SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", like)
        for (name,) in names:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can)."""
    return asyncio.run(_postgres_error())


@pytest.fixture(scope="module")
def pg_prefix(postgres_unreachable: str | None) -> Iterator[str]:
    """A schema-name prefix unique to this test module; its schemas are dropped at the end."""
    prefix = f"llmroute_test_{uuid.uuid4().hex[:10]}"
    yield prefix
    if postgres_unreachable is None:
        asyncio.run(_drop_schemas(prefix + "%"))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, postgres_unreachable: str | None) -> str:
    name: str = request.param
    if name == "postgres" and postgres_unreachable is not None:
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_DSN}: {postgres_unreachable}")
    return name


class StoreFactory:
    """New stores on one database of the test's backend (same SQLite file / same PG schema)."""

    def __init__(self, backend: str, tmp_path: Path, schema: str) -> None:
        self.backend = backend
        self.path = tmp_path / "ledger.db"
        self.schema = schema
        self.opened: list[Store] = []

    @property
    def url(self) -> str:
        """The database's URL (what another process opens it by)."""
        if self.backend == "sqlite":
            return f"sqlite:///{self.path}"
        return f"{POSTGRES_DSN}?schema={self.schema}"

    def new(self) -> Store:
        store: Store
        if self.backend == "sqlite":
            store = SQLiteStore(self.path)
        else:
            store = PostgresStore(POSTGRES_DSN, schema=self.schema, min_size=1, max_size=4)
        self.opened.append(store)
        return store

    async def aclose(self) -> None:
        for store in self.opened:
            await store.close()
        if self.backend == "postgres":
            await _drop_schemas(self.schema)


@pytest_asyncio.fixture
async def stores(backend: str, tmp_path: Path, pg_prefix: str) -> AsyncIterator[StoreFactory]:
    factory = StoreFactory(backend, tmp_path, f"{pg_prefix}_{uuid.uuid4().hex[:8]}")
    yield factory
    await factory.aclose()


@pytest_asyncio.fixture
async def store(stores: StoreFactory) -> Store:
    """A migrated, empty store of the test's backend."""
    created = stores.new()
    await created.migrate()
    return created


@pytest_asyncio.fixture
async def flaky() -> AsyncIterator[FlakyStore]:
    """An in-memory SQLite store that fails on demand (the writer's and the log's tests)."""
    inner = SQLiteStore(":memory:")
    await inner.migrate()
    yield FlakyStore(inner)
    await inner.close()

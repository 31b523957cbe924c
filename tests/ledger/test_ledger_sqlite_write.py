"""The ledger's SQLite write per entry (issue 17, sqlite17): the learner's index holds only rows with
feedback (migration 0010_rated_index), its poll still reads through it, and a ledger from before
the migration is upgraded with the same reads."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import StoreFactory
from ledger_factories import BASE_TS, make_entry, run_statements

from llmroute.ledger import SQLiteStore, Store
from llmroute.ledger.migrations import RATED_INDEX_MIGRATION
from llmroute.ledger.rated import Rated, rated_sql

_OLD_LEARN_INDEX = ("CREATE INDEX llmroute_requests_learn ON llmroute_requests (feedback_ts, request_id) "
                    "WHERE latent IS NOT NULL")
_AT = BASE_TS + timedelta(hours=1)


async def _with_feedback(store: Store, rated: int = 3, total: int = 20) -> None:
    """`total` entries with a latent (two without), feedback on the first `rated` of them."""
    await store.write([make_entry(i, latent=f"z{i}") for i in range(total)]
                      + [make_entry(total + i) for i in range(2)])
    for k in range(rated):
        await store.feedback(f"req-{k:06d}", rating=1 + k % 5, at=_AT + timedelta(seconds=k))


async def _all_rated(store: Store, until: datetime) -> list[Rated]:
    out: list[Rated] = []
    while page := await store.rated(until, out[-1].cursor if out else None, limit=2):
        out += page
    return out


def _index_entries(conn: sqlite3.Connection, index: str) -> int:
    """The entries an index holds (its cells on every page: an index B-tree's interior cells are
    entries too), read from SQLite's dbstat table."""
    try:
        row = conn.execute("SELECT coalesce(sum(ncell), 0) FROM dbstat WHERE name = ?", (index,)).fetchone()
    except sqlite3.OperationalError as exc:  # a SQLite built without SQLITE_ENABLE_DBSTAT_VTAB
        pytest.skip(f"no dbstat: {exc}")
    return int(row[0])


async def _downgrade(store: Store) -> None:
    """The ledger as 0009 left it: the learner's index over every row with a latent."""
    statements = ["DROP INDEX llmroute_requests_learn", _OLD_LEARN_INDEX,
                  f"DELETE FROM llmroute_migrations WHERE name = '{RATED_INDEX_MIGRATION}'"]
    await run_statements(store, statements)


@pytest.mark.asyncio
async def test_the_learners_index_holds_only_rows_with_feedback(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    await _with_feedback(store, rated=3, total=20)
    assert await store.run(lambda conn: _index_entries(conn, "llmroute_requests_learn")) == 3
    await store.feedback("req-000010", success=True, at=_AT + timedelta(minutes=1))
    assert await store.run(lambda conn: _index_entries(conn, "llmroute_requests_learn")) == 4
    await store.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("after", [False, True])
async def test_the_learners_poll_reads_through_its_index(tmp_path: Path, after: bool) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    params: tuple[str, ...] = ("2025-01-01T00:00:00.000000Z", "2024-01-01T00:00:00.000000Z", "req")[
        :3 if after else 1]
    sql = "EXPLAIN QUERY PLAN " + rated_sql(lambda _: "?", after, 500)
    plan = await store.run(lambda conn: conn.execute(sql, params).fetchall())
    details = " ".join(str(row[-1]) for row in plan)
    assert "llmroute_requests_learn" in details, details
    assert "TEMP B-TREE" not in details, details  # read in index order, never sorted
    await store.close()


@pytest.mark.asyncio
async def test_a_ledger_from_before_the_rated_index_migrates_with_the_same_reads(
        stores: StoreFactory) -> None:
    store = stores.new()
    await store.migrate()
    await _with_feedback(store, rated=4, total=12)
    until = _AT + timedelta(hours=1)
    before = await _all_rated(store, until)
    assert [r.request_id for r in before] == [f"req-{k:06d}" for k in range(4)]
    await _downgrade(store)

    upgraded = stores.new()
    assert await upgraded.migrate() == [RATED_INDEX_MIGRATION]
    assert await _all_rated(upgraded, until) == before
    await upgraded.feedback("req-000009", rating=5, at=_AT + timedelta(minutes=5))
    assert [r.request_id for r in await _all_rated(upgraded, until)] == [
        *(r.request_id for r in before), "req-000009"]
    if isinstance(upgraded, SQLiteStore):
        assert await upgraded.run(lambda conn: _index_entries(conn, "llmroute_requests_learn")) == 5
    assert await stores.new().migrate() == []

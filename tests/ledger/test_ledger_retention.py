"""Retention (`Store.prune`, `ledger.retention`) on SQLite and PostgreSQL: pruning raw rows keeps
every rollup, text goes on its own clock, rollups per grain; on PostgreSQL whole months are
dropped as partitions, new months get theirs on write, a ledger from before the partitions migrates
with its rows and rollups intact, and a replayed batch is still counted once. Also the settings'
checks, the background task and `llmroute db prune`."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import StoreFactory
from ledger_factories import FlakyStore, make_entry
from pydantic import ValidationError

from llmroute.config import check, load
from llmroute.ledger import LedgerEntry, SQLiteStore, Store, open_store
from llmroute.ledger import prune_sqlite as prune_sqlite_module
from llmroute.ledger.migrations import (
    CACHE_MIGRATION,
    CACHE_ROLLUP_COLUMNS,
    COUNTS_MIGRATION,
    COUNTS_ROLLUP_COLUMNS,
    MIGRATIONS,
    ONLINE_MIGRATION,
    ROUTING_COST_MIGRATION,
)
from llmroute.ledger.postgres import PostgresStore
from llmroute.ledger.pruner import prune_logged, prune_once
from llmroute.ledger.retention import Cutoffs, Pruned, month_start, next_month
from llmroute.ledger.rollup_sql import ROLLUP_GROUP_KEYS
from llmroute.runtime import build_runtime
from llmroute.settings import RetentionConfig

START = datetime(2025, 1, 10, tzinfo=UTC)
#: Mid-month and mid-day: January and February go whole, March partly.
RAW_CUTOFF = datetime(2025, 3, 15, 7, 30, tzinfo=UTC)
WHOLE_DAYS = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC))
HOURS = (datetime(2025, 2, 3, 5, tzinfo=UTC), datetime(2025, 2, 3, 9, tzinfo=UTC))


def ledger(n: int = 400, step: timedelta = timedelta(hours=6, minutes=7)) -> list[LedgerEntry]:
    """Entries from START on, every `step`, with text on every other one and a few models."""
    return [make_entry(i, ts=START + i * step, model=("a/one", "b/two", "c/three")[i % 3],
                       prompt_text=f"prompt {i}" if i % 2 else None,
                       response_text=f"answer {i}" if i % 4 == 1 else None)
            for i in range(n)]


async def _fetch(store: Store, sql: str) -> list[tuple[Any, ...]]:
    if isinstance(store, SQLiteStore):
        return await store.run(lambda conn: conn.execute(sql).fetchall())
    assert isinstance(store, PostgresStore)
    async with store.connection() as conn:
        return [tuple(row) for row in await conn.fetch(sql)]


async def _partitions(store: PostgresStore) -> set[str]:
    async with store.connection() as conn:
        rows = await conn.fetch("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                "WHERE i.inhparent = to_regclass($1)", f"{store.schema}.llmroute_requests")
        return {row[0] for row in rows}


async def _tables(store: PostgresStore) -> set[str]:
    async with store.connection() as conn:
        rows = await conn.fetch("SELECT relname FROM pg_class WHERE relnamespace = $1::regnamespace "
                                "AND relkind IN ('r', 'p')", store.schema)
        return {row[0] for row in rows}


async def _snapshot(store: Store, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    found = {}
    for by in ROLLUP_GROUP_KEYS:
        window = await store.rollups(by, since, until)
        found[by] = (window.aggregate(), window.total.latency)
    return found


# -- raw rows ----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_pruning_raw_rows_keeps_every_rollup(store: Store) -> None:
    rows = ledger()
    await store.write(rows)
    days, hours = await _snapshot(store, *WHOLE_DAYS), await _snapshot(store, *HOURS)
    gone = [e for e in rows if e.ts < RAW_CUTOFF]
    assert 0 < len(gone) < len(rows)

    counted = await store.prune(Cutoffs(raw=RAW_CUTOFF), dry_run=True)
    assert (counted.raw_rows, counted.dry_run) == (len(gone), True)
    assert await store.count() == len(rows)  # a dry run deletes nothing

    pruned = await store.prune(Cutoffs(raw=RAW_CUTOFF))
    assert pruned == dataclasses.replace(counted, dry_run=False)
    assert await store.count() == len(rows) - len(gone)
    assert await store.query(until=RAW_CUTOFF) == []
    assert [e.request_id for e in await store.query()] == [e.request_id for e in rows if e.ts >= RAW_CUTOFF]
    # whole days and hours of the pruned months still answer, from the rollups
    assert await _snapshot(store, *WHOLE_DAYS) == days
    assert await _snapshot(store, *HOURS) == hours
    assert await store.get(gone[0].request_id) is None
    assert (await store.prune(Cutoffs(raw=RAW_CUTOFF))).raw_rows == 0


@pytest.mark.asyncio
async def test_postgres_drops_whole_months_and_deletes_the_partial_one(stores: StoreFactory) -> None:
    if stores.backend != "postgres":
        pytest.skip("partitions are PostgreSQL's")
    store = stores.new()
    await store.migrate()
    assert isinstance(store, PostgresStore)
    rows = ledger()
    await store.write(rows)
    months = {f"llmroute_requests_2025_{m:02d}" for m in (1, 2, 3, 4, 5)}
    assert await _partitions(store) == months | {"llmroute_requests_default"}
    counted = await store.prune(Cutoffs(raw=RAW_CUTOFF), dry_run=True)
    assert counted.partitions == ("llmroute_requests_2025_01", "llmroute_requests_2025_02")
    pruned = await store.prune(Cutoffs(raw=RAW_CUTOFF))
    assert pruned.partitions == counted.partitions
    assert pruned.raw_rows == len([e for e in rows if e.ts < RAW_CUTOFF])
    left = await _partitions(store)
    assert left == {"llmroute_requests_2025_03", "llmroute_requests_2025_04",
                    "llmroute_requests_2025_05", "llmroute_requests_default"}
    assert not {"llmroute_requests_2025_01", "llmroute_requests_2025_02"} & await _tables(store)
    march = await _fetch(store, "SELECT min(ts), count(*) FROM llmroute_requests_2025_03")
    assert march[0][0] >= RAW_CUTOFF
    assert march[0][1] == len([e for e in rows if month_start(e.ts).month == 3 and e.ts >= RAW_CUTOFF])
    # a late entry for a dropped month gets its partition again
    late = make_entry(9000, ts=datetime(2025, 1, 20, tzinfo=UTC))
    await store.write([late])
    assert "llmroute_requests_2025_01" in await _partitions(store)
    assert await store.get(late.request_id) == late


@pytest.mark.asyncio
async def test_sqlite_prunes_in_chunks(store: Store, backend: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if backend != "sqlite":
        pytest.skip("chunks are SQLite's")
    monkeypatch.setattr(prune_sqlite_module, "CHUNK_ROWS", 7)
    tied = START + timedelta(days=3)
    rows = ledger(100, timedelta(hours=1)) + [  # 20 rows at one instant: more than a chunk
        make_entry(500 + i, ts=tied, prompt_text="tied") for i in range(20)]
    await store.write(rows)
    text_cutoff = START + timedelta(days=3, hours=12)
    raw_cutoff = START + timedelta(days=1, minutes=30)
    expected_text = [e for e in rows if raw_cutoff <= e.ts < text_cutoff
                     and (e.prompt_text is not None or e.response_text is not None)]
    counted = await store.prune(Cutoffs(raw=raw_cutoff, text=text_cutoff), dry_run=True)
    pruned = await store.prune(Cutoffs(raw=raw_cutoff, text=text_cutoff))
    assert (pruned.raw_rows, pruned.text_rows) == (counted.raw_rows, counted.text_rows) == \
        (len([e for e in rows if e.ts < raw_cutoff]), len(expected_text))
    kept = await store.query()
    assert all(e.prompt_text is None and e.response_text is None for e in kept if e.ts < text_cutoff)
    assert [e.prompt_text for e in kept if e.ts >= text_cutoff] == \
        [e.prompt_text for e in rows if e.ts >= text_cutoff]


# -- text --------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_text_is_cleared_only_before_its_cutoff(store: Store) -> None:
    rows = ledger(120)
    await store.write(rows)
    cutoff = START + timedelta(days=11, hours=3)
    with_text = [e for e in rows if e.ts < cutoff and (e.prompt_text or e.response_text)]
    before = await store.rollups("model")
    pruned = await store.prune(Cutoffs(text=cutoff))
    assert (pruned.text_rows, pruned.raw_rows) == (len(with_text), 0)
    assert await store.count() == len(rows)
    for old, new in zip(rows, await store.query(), strict=True):
        if old.ts < cutoff:
            assert (new.prompt_text, new.response_text) == (None, None)
            assert dataclasses.replace(new, prompt_text=old.prompt_text,
                                       response_text=old.response_text) == old
        else:
            assert new == old
    assert (await store.rollups("model")).aggregate() == before.aggregate()
    assert (await store.prune(Cutoffs(text=cutoff))).text_rows == 0
    later = cutoff + timedelta(days=2)
    assert (await store.prune(Cutoffs(text=later))).text_rows == \
        len([e for e in rows if cutoff <= e.ts < later and (e.prompt_text or e.response_text)])


# -- rollups -----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_rollups_are_pruned_per_grain(store: Store) -> None:
    rows = ledger(200)
    await store.write(rows)
    hour_cutoff = datetime(2025, 2, 1, tzinfo=UTC)
    day_cutoff = datetime(2025, 1, 20, tzinfo=UTC)
    partial_day = (datetime(2025, 1, 25, 3, tzinfo=UTC), datetime(2025, 1, 25, 20, tzinfo=UTC))
    whole_days = (datetime(2025, 1, 21, tzinfo=UTC), datetime(2025, 1, 31, tzinfo=UTC))
    in_partial = len([e for e in rows if partial_day[0] <= e.ts < partial_day[1]])
    assert in_partial > 0
    days_before = await _snapshot(store, *whole_days)

    counted = await store.prune(Cutoffs(hour_rollups=hour_cutoff), dry_run=True)
    pruned = await store.prune(Cutoffs(hour_rollups=hour_cutoff))
    assert pruned == dataclasses.replace(counted, dry_run=False)
    assert pruned.hour_rollups > 0 and pruned.latency_bins > 0 and pruned.day_rollups == 0
    assert (pruned.raw_rows, pruned.text_rows) == (0, 0)
    # hours of January are gone (the raw rows are still there), its days are not
    assert (await store.rollups("model", *partial_day)).total.tally.requests == 0
    assert await _snapshot(store, *whole_days) == days_before
    hour_starts = await _fetch(store, "SELECT min(start) FROM llmroute_rollups WHERE grain = 'hour'")
    assert str(hour_starts[0][0]) >= "2025-02-01"

    pruned = await store.prune(Cutoffs(hour_rollups=hour_cutoff, day_rollups=day_cutoff))
    assert (pruned.hour_rollups, pruned.day_rollups > 0) == (0, True)
    early = await store.rollups("model", datetime(2025, 1, 1, tzinfo=UTC), day_cutoff)
    assert early.total.tally.requests == 0
    assert await _snapshot(store, *whole_days) == days_before
    assert await store.count() == len(rows)


# -- PostgreSQL partitions on write ------------------------------------------------------------
@pytest.mark.asyncio
async def test_new_months_get_partitions_and_rows_in_default_move(stores: StoreFactory) -> None:
    if stores.backend != "postgres":
        pytest.skip("partitions are PostgreSQL's")
    first, second = stores.new(), stores.new()
    assert isinstance(first, PostgresStore) and isinstance(second, PostgresStore)
    await first.migrate()
    december = datetime(2026, 12, 5, tzinfo=UTC)
    await first.write([make_entry(1, ts=december)])
    assert {"llmroute_requests_2026_12", "llmroute_requests_2027_01"} <= await _partitions(first)
    # a replica whose cache says February exists (another replica dropped it, say): its row goes
    # to the DEFAULT partition instead of failing
    february = datetime(2027, 2, 10, tzinfo=UTC)
    second._months = {month_start(february), next_month(month_start(february))}
    await second.write([make_entry(2, ts=february)])
    placed = await _fetch(second, "SELECT tableoid::regclass::text FROM llmroute_requests "
                                  "WHERE request_id = 'req-000002'")
    assert placed == [("llmroute_requests_default",)]
    # the next writer to need February creates it and moves the row in
    await first.write([make_entry(3, ts=february + timedelta(days=1))])
    placed = await _fetch(first, "SELECT tableoid::regclass::text, count(*) FROM llmroute_requests "
                                 "WHERE ts >= '2027-02-01' GROUP BY 1")
    assert placed == [("llmroute_requests_2027_02", 2)]
    assert (await first.rollups("model")).total.tally.requests == 3 == await first.count()
    # pruning gives rows left in DEFAULT their month too, so that they can go with it
    september = datetime(2027, 9, 3, tzinfo=UTC)
    second._months |= {month_start(september), next_month(month_start(september))}
    await second.write([make_entry(4, ts=september)])
    assert await _fetch(first, "SELECT count(*) FROM llmroute_requests_default") == [(1,)]
    await first.prune(Cutoffs(raw=datetime(2000, 1, 1, tzinfo=UTC)))
    assert await _fetch(first, "SELECT count(*) FROM llmroute_requests_2027_09") == [(1,)]
    assert await _fetch(first, "SELECT count(*) FROM llmroute_requests_default") == [(0,)]


@pytest.mark.asyncio
async def test_replicas_creating_the_same_month_at_once(stores: StoreFactory) -> None:
    if stores.backend != "postgres":
        pytest.skip("partitions are PostgreSQL's")
    replicas = [stores.new() for _ in range(6)]
    await replicas[0].migrate()
    june = datetime(2027, 6, 15, tzinfo=UTC)
    await asyncio.gather(*(replica.write([make_entry(i, ts=june + timedelta(minutes=i))])
                           for i, replica in enumerate(replicas)))
    assert await replicas[0].count() == 6
    assert isinstance(replicas[0], PostgresStore)
    assert "llmroute_requests_2027_06" in await _partitions(replicas[0])
    assert await _fetch(replicas[0], "SELECT count(*) FROM llmroute_requests_default") == [(0,)]


# -- the partitions migration ------------------------------------------------------------------
async def _back_before_partitions(store: PostgresStore) -> None:
    """The schema as migrations 0001-0004 left it (the table built by their own SQL), the rows
    kept, 0005 to 0009 unrecorded."""
    async with store.connection() as conn, conn.transaction():
        await conn.execute("CREATE TABLE kept AS SELECT * FROM llmroute_requests")
        await conn.execute("DROP TABLE llmroute_requests")
        for migration in MIGRATIONS[:2]:
            await conn.execute(migration.postgres_sql)
        await conn.execute("ALTER TABLE kept DROP COLUMN explored, DROP COLUMN latent, "
                           "DROP COLUMN routing_cost_usd, DROP COLUMN cache_write_tokens, "
                           "DROP COLUMN prompt_cache_saved_usd, DROP COLUMN cache, "
                           "DROP COLUMN cache_saved_usd, DROP COLUMN cached_from, "
                           "DROP COLUMN cache_similarity, DROP COLUMN unpriced, "
                           "DROP COLUMN fallback")  # 0006's to 0009's
        await conn.execute("ALTER TABLE llmroute_rollups DROP COLUMN routing_cost_usd, "  # 0007's
                           + ", ".join(f"DROP COLUMN {name}"  # and 0008's and 0009's
                                       for name in (*(c for c, _, _ in CACHE_ROLLUP_COLUMNS),
                                                    *COUNTS_ROLLUP_COLUMNS)))
        await conn.execute("INSERT INTO llmroute_requests SELECT * FROM kept")
        await conn.execute("DROP TABLE kept")
        await conn.execute("DELETE FROM llmroute_migrations WHERE name IN "
                           f"('0005_partitions', '{ONLINE_MIGRATION}', "
                           f"'{ROUTING_COST_MIGRATION}', '{CACHE_MIGRATION}', "
                           f"'{COUNTS_MIGRATION}')")


@pytest.mark.asyncio
async def test_a_ledger_from_before_partitions_migrates_intact(stores: StoreFactory) -> None:
    if stores.backend != "postgres":
        pytest.skip("partitions are PostgreSQL's")
    store = stores.new()
    assert isinstance(store, PostgresStore)
    await store.migrate()
    rows = ledger(300)
    await store.write(rows)
    await store.feedback(rows[3].request_id, rating=4, success=True)
    entries, snapshot = await store.query(), await _snapshot(store, None, None)
    await _back_before_partitions(store)  # the rows as they were (0006-0007 columns at defaults)
    assert await _partitions(store) == set()

    fresh = stores.new()
    assert isinstance(fresh, PostgresStore)
    assert await fresh.migrate() == ["0005_partitions", ONLINE_MIGRATION, ROUTING_COST_MIGRATION,
                                     CACHE_MIGRATION, COUNTS_MIGRATION]
    assert await fresh.query() == entries
    assert await _snapshot(fresh, None, None) == snapshot
    months = {f"llmroute_requests_2025_{month:02d}" for month in {e.ts.month for e in rows}}
    assert await _partitions(fresh) == months | {"llmroute_requests_default"}
    assert await _fetch(fresh, "SELECT count(*) FROM llmroute_requests_default") == [(0,)]
    key = await _fetch(fresh, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                              f"conrelid = '{fresh.schema}.llmroute_requests'::regclass AND contype = 'p'")
    assert key == [("PRIMARY KEY (request_id, ts)",)]
    # it goes on working: get, feedback, writes of a new month, pruning
    assert await fresh.get(rows[7].request_id) == rows[7]
    assert await fresh.feedback(rows[7].request_id, rating=2)
    await fresh.write([make_entry(5000, ts=datetime(2025, 8, 1, tzinfo=UTC))])
    assert (await fresh.prune(Cutoffs(raw=datetime(2025, 2, 1, tzinfo=UTC)))).partitions == \
        ("llmroute_requests_2025_01",)


@pytest.mark.asyncio
async def test_a_replayed_batch_is_counted_once(store: Store) -> None:
    rows = ledger(50)
    await store.write(rows[:30])
    await store.write(rows[10:])  # twenty already stored
    await store.write([rows[5], rows[5]])
    twice = make_entry(99, ts=datetime(2025, 6, 1, tzinfo=UTC))
    await store.write([twice, dataclasses.replace(twice, prompt_text="second")])  # the first wins
    assert (await store.get(twice.request_id)) == twice
    window = await store.rollups("model")
    assert window.total.tally.requests == 51 == await store.count()


# -- settings, the background task, the CLI ----------------------------------------------------
def test_retention_settings_default_to_keeping_everything() -> None:
    retention = RetentionConfig()
    assert not retention.configured and retention.interval_s == 3600
    assert prune_cutoffs_are_empty(retention)
    assert RetentionConfig(raw_days=90, text_days=7, hour_rollup_days=90, day_rollup_days=730).configured
    assert RetentionConfig(text_days=30).configured  # text only: raw rows forever


def prune_cutoffs_are_empty(retention: RetentionConfig) -> bool:
    from llmroute.ledger.pruner import cutoffs_of

    return cutoffs_of(retention).empty


@pytest.mark.parametrize(("values", "message"), [
    ({"raw_days": 0}, "greater than 0"),
    ({"text_days": 40, "raw_days": 30}, "text_days (40 days) must not exceed raw_days (30 days)"),
    ({"raw_days": 30, "hour_rollup_days": 10}, "raw_days (30 days) must not exceed hour_rollup_days"),
    ({"hour_rollup_days": 10}, "raw_days (forever) must not exceed hour_rollup_days (10 days)"),
    ({"raw_days": 5, "hour_rollup_days": 10, "day_rollup_days": 7},
     "hour_rollup_days (10 days) must not exceed day_rollup_days (7 days)"),
    ({"interval_s": 0}, "greater than 0"),
    ({"raw_days": 30, "keep": 1}, "Extra inputs are not permitted"),
])
def test_retention_settings_are_checked(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RetentionConfig(**values)


def test_a_bad_retention_is_reported_with_its_path(tmp_path: Path) -> None:
    config = tmp_path / "llmroute.yaml"
    config.write_text("ledger:\n  retention: {raw_days: 30, text_days: 60}\n")
    checked = check(config, environ={})
    assert checked.settings is None
    assert any("ledger.retention" in p.path and "text_days" in p.message for p in checked.errors)


@pytest.mark.asyncio
async def test_a_failing_prune_is_logged_not_raised(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyStore(store)
    broken = FlakyStore(store)

    async def fail(cutoffs: Cutoffs, *, dry_run: bool = False) -> Pruned:
        raise RuntimeError("injected: prune failed")

    broken.prune = fail  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="llmroute.ledger"):
        await prune_logged(broken, RetentionConfig(raw_days=1))
        await prune_logged(flaky, RetentionConfig(raw_days=1))
    assert "pruning failed" in caplog.text and "ledger pruned: deleted 0 raw row(s)" in caplog.text
    assert await prune_once(store, RetentionConfig()) == Pruned()


@pytest.mark.asyncio
async def test_the_gateway_prunes_in_the_background(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    now = datetime.now(UTC)
    old, new = make_entry(1, ts=now - timedelta(days=40)), make_entry(2, ts=now - timedelta(hours=1))
    seed = open_store(f"sqlite:///{db}")
    await seed.migrate()
    await seed.write([old, new])
    await seed.close()
    config = tmp_path / "llmroute.yaml"
    config.write_text(f"ledger:\n  url: 'sqlite:///{db}'\n  spool_path: '{tmp_path / 'spool.jsonl'}'\n"
                      "  retention: {raw_days: 30, interval_s: 0.05}\n")
    runtime = build_runtime(load(config, environ={}), metrics=False)
    await runtime.start()
    try:
        assert runtime.ledger is not None
        await _until_count(runtime.ledger.store, 1)
    finally:
        await runtime.aclose()
    check_store = open_store(f"sqlite:///{db}")
    assert [e.request_id for e in await check_store.query()] == [new.request_id]
    await check_store.close()


async def _until_count(store: Store, expected: int, timeout_s: float = 5.0) -> None:
    """Poll the store until it holds `expected` entries; fail the test after `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (found := await store.count()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{found} entries, not {expected}"
        await asyncio.sleep(0.02)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    return subprocess.run([sys.executable, "-m", "llmroute", *args], capture_output=True, text=True,
                          env=base, timeout=60)


def test_db_prune_on_a_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    now = datetime.now(UTC)
    rows = [make_entry(1, ts=now - timedelta(days=50), prompt_text="old"),
            make_entry(2, ts=now - timedelta(days=20), prompt_text="older than a week"),
            make_entry(3, ts=now - timedelta(days=1), prompt_text="recent")]

    async def seed() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.migrate()
        await store.write(rows)
        await store.close()

    asyncio.run(seed())
    config = tmp_path / "llmroute.yaml"
    config.write_text(f"ledger:\n  url: 'sqlite:///{db}'\n")
    nothing = _cli("db", "prune", "-c", str(config))
    assert nothing.returncode == 0 and "nothing is ever deleted" in nothing.stdout
    config.write_text(f"ledger:\n  url: 'sqlite:///{db}'\n"
                      "  retention: {raw_days: 30, text_days: 7, hour_rollup_days: 400}\n")
    dry = _cli("db", "prune", "--dry-run", "-c", str(config))
    assert dry.returncode == 0, dry.stderr
    assert "would delete 1 raw row(s), 1 text(s), 0 hour and 0 day rollup(s)" in dry.stdout
    assert "day rollups   kept forever" in dry.stdout
    done = _cli("db", "prune", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert "deleted 1 raw row(s), 1 text(s)" in done.stdout

    async def left() -> list[LedgerEntry]:
        store = open_store(f"sqlite:///{db}")
        try:
            return await store.query()
        finally:
            await store.close()

    kept = asyncio.run(left())
    assert [(e.request_id, e.prompt_text) for e in kept] == [("req-000002", None), ("req-000003", "recent")]

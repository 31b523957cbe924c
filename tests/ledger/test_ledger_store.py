"""The store contract, run against SQLite and PostgreSQL alike: migrations, writes, reads, feedback."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from conftest import StoreFactory
from ledger_factories import BASE_TS, full_entry, make_entry

from llmroute.ledger import (
    MIGRATIONS,
    AttemptRecord,
    SQLiteStore,
    Store,
    StoreError,
    StoreRejectedError,
    open_store,
)
from llmroute.ledger.postgres import PostgresStore

ALL_MIGRATIONS = [m.name for m in MIGRATIONS]


# -- migrations --------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_migrate_applies_each_migration_once_and_reports_status(stores: StoreFactory) -> None:
    store = stores.new()
    before = await store.migration_status()
    assert [(s.name, s.applied_at) for s in before] == [(name, None) for name in ALL_MIGRATIONS]

    assert await store.migrate() == ALL_MIGRATIONS
    assert await store.migrate() == []
    after = await store.migration_status()
    assert [s.name for s in after] == ALL_MIGRATIONS
    for status in after:
        assert status.applied and status.applied_at is not None
        assert status.applied_at.tzinfo is not None
        assert abs(status.applied_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert await store.count() == 0


@pytest.mark.asyncio
async def test_concurrent_migrations_apply_each_migration_once(stores: StoreFactory) -> None:
    first, second, third = stores.new(), stores.new(), stores.new()
    results = await asyncio.gather(first.migrate(), second.migrate(), third.migrate())
    assert sorted(name for applied in results for name in applied) == sorted(ALL_MIGRATIONS)
    for store in (first, second, third):
        assert all(status.applied for status in await store.migration_status())


# -- writing and reading -----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_round_trip_keeps_every_field(store: Store) -> None:
    entry = full_entry()
    plain = make_entry(2)
    await store.write([entry, plain])
    assert await store.get(entry.request_id) == entry
    assert await store.get(plain.request_id) == plain
    assert await store.get("no-such-id") is None
    assert await store.count() == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("cost", ["0.0000001234", "0.00000001875", "123456789.123456789012345678", "0",
                                  "0E-10", "1E+2"])
async def test_money_stays_exact(store: Store, cost: str) -> None:
    entry = make_entry(1, cost_usd=Decimal(cost), baseline_cost_usd=Decimal(cost) * 3)
    await store.write([entry])
    got = await store.get(entry.request_id)
    assert got is not None
    assert isinstance(got.cost_usd, Decimal)
    assert got.cost_usd == Decimal(cost)
    assert got.baseline_cost_usd == Decimal(cost) * 3


@pytest.mark.asyncio
async def test_unpriced_is_none_and_free_is_zero(store: Store) -> None:
    unpriced = make_entry(1, cost_usd=None, baseline_cost_usd=None, input_tokens=None)
    free = make_entry(2, cost_usd=Decimal(0), baseline_cost_usd=Decimal("0.00"), input_tokens=0)
    await store.write([unpriced, free])
    got_unpriced, got_free = await store.get(unpriced.request_id), await store.get(free.request_id)
    assert got_unpriced is not None and got_free is not None
    assert got_unpriced.cost_usd is None and got_unpriced.baseline_cost_usd is None
    assert got_unpriced.input_tokens is None
    assert got_free.cost_usd == 0 and got_free.cost_usd is not None
    assert got_free.baseline_cost_usd == 0 and got_free.input_tokens == 0


@pytest.mark.asyncio
async def test_a_replayed_request_id_never_creates_a_duplicate(store: Store) -> None:
    original = make_entry(1)
    await store.write([original])
    replayed = dataclasses.replace(original, model="other/model", cost_usd=Decimal(9))
    await store.write([replayed, make_entry(2), replayed])
    assert await store.count() == 2
    assert await store.get(original.request_id) == original  # the first write wins


@pytest.mark.asyncio
async def test_a_batch_is_one_transaction(store: Store) -> None:
    bad = make_entry(3)
    object.__setattr__(bad, "status", "bogus")  # violates the table's CHECK constraint
    with pytest.raises(StoreRejectedError):
        await store.write([make_entry(1), make_entry(2), bad])
    assert await store.count() == 0
    await store.write([make_entry(1)])  # the store is still usable
    assert await store.count() == 1


@pytest.mark.asyncio
async def test_values_the_database_cannot_hold_are_rejected(store: Store) -> None:
    with pytest.raises(StoreRejectedError):
        await store.write([make_entry(1, input_tokens=2**70)])
    await store.write([make_entry(2, input_tokens=2**40)])  # large, but a real column holds it
    got = await store.get("req-000002")
    assert got is not None and got.input_tokens == 2**40


@pytest.mark.asyncio
async def test_nul_characters_do_not_break_a_write(store: Store, backend: str) -> None:
    text = "before\x00after"
    attempt = AttemptRecord("a/m", "bad_request", "upstream said \x00")  # jsonb cannot hold NUL
    await store.write([make_entry(1, prompt_text=text, attempts=(attempt,))])
    got = await store.get("req-000001")
    assert got is not None
    stored = text if backend == "sqlite" else "before\ufffdafter"  # PostgreSQL text cannot hold NUL
    assert got.prompt_text == stored
    assert got.attempts[0].message == stored.replace("before", "upstream said ").replace("after", "")


@pytest.mark.asyncio
async def test_an_empty_write_is_a_no_op(store: Store) -> None:
    await store.write([])
    assert await store.count() == 0


@pytest.mark.asyncio
async def test_query_orders_by_time_and_filters(store: Store) -> None:
    entries = [make_entry(n) for n in (5, 1, 4, 2, 3)]
    tie = make_entry(99, request_id="req-000003-b", ts=BASE_TS + timedelta(seconds=3))
    await store.write([*entries, tie])

    ids = [e.request_id for e in await store.query()]
    assert ids == ["req-000001", "req-000002", "req-000003", "req-000003-b", "req-000004", "req-000005"]
    window = await store.query(since=BASE_TS + timedelta(seconds=2), until=BASE_TS + timedelta(seconds=4))
    assert [e.request_id for e in window] == ["req-000002", "req-000003", "req-000003-b"]
    assert [e.request_id for e in await store.query(limit=2)] == ["req-000001", "req-000002"]
    assert await store.query(limit=0) == []

    paris = timezone(timedelta(hours=1))  # the same instant as BASE_TS + 4s, written in another zone
    later = await store.query(since=(BASE_TS + timedelta(seconds=4)).astimezone(paris))
    assert [e.request_id for e in later] == ["req-000004", "req-000005"]
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.query(since=datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        await store.query(limit=-1)


# -- feedback ----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_feedback_sets_only_given_fields_and_is_idempotent(store: Store) -> None:
    await store.write([make_entry(1)])
    rid = "req-000001"
    t1, t2, t3 = (BASE_TS + timedelta(hours=h) for h in (1, 2, 3))

    assert await store.feedback("unknown-id", rating=5, at=t1) is False
    assert await store.feedback(rid, rating=5, at=t1) is True
    got = await store.get(rid)
    assert got is not None
    assert (got.user_rating, got.task_success, got.feedback_comment, got.feedback_ts) == (5, None, None, t1)

    assert await store.feedback(rid, success=False, at=t2) is True  # partial: the rating stays
    got = await store.get(rid)
    assert got is not None
    assert (got.user_rating, got.task_success, got.feedback_ts) == (5, False, t2)

    assert await store.feedback(rid, rating=5, success=False, at=t3) is True  # nothing new
    assert await store.feedback(rid, at=t3) is True
    got = await store.get(rid)
    assert got is not None
    assert got.feedback_ts == t2

    assert await store.feedback(rid, comment="great", rating=2, at=t3) is True
    got = await store.get(rid)
    assert got is not None
    assert (got.user_rating, got.task_success, got.feedback_comment, got.feedback_ts) == \
        (2, False, "great", t3)
    assert got.model == "openai/gpt-4o-mini"  # the rest of the entry is untouched


@pytest.mark.asyncio
async def test_feedback_with_an_owner_touches_only_that_keys_requests(store: Store) -> None:
    await store.write([make_entry(1), make_entry(2, key_name=None)])  # team-a's, and an open one
    assert await store.feedback("req-000001", rating=1, owner="team-b") is False
    assert await store.feedback("req-000002", rating=1, owner="team-a") is False
    got = await store.get("req-000001")
    assert got is not None and got.user_rating is None and got.feedback_ts is None
    assert await store.feedback("req-000001", rating=4, owner="team-a") is True
    assert await store.feedback("req-000002", rating=3) is True  # no owner: any entry
    ratings = [(e.request_id, e.user_rating) for e in await store.query()]
    assert ratings == [("req-000001", 4), ("req-000002", 3)]


@pytest.mark.asyncio
@pytest.mark.parametrize("rating", [0, 6, True])
async def test_feedback_refuses_ratings_outside_one_to_five(store: Store, rating: int) -> None:
    await store.write([make_entry(1)])
    with pytest.raises(ValueError, match="1 to 5"):
        await store.feedback("req-000001", rating=rating)


# -- health ------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_ping_answers_until_closed(store: Store) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()


@pytest.mark.asyncio
async def test_an_unreachable_postgres_raises_store_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout_s=2)
    with pytest.raises(StoreError):
        await store.ping()
    with pytest.raises(StoreError):
        await store.write([make_entry(1)])
    await store.close()


@pytest.mark.asyncio
async def test_sqlite_memory_store_keeps_its_data() -> None:
    store = open_store("sqlite:///:memory:")
    await store.migrate()
    await store.write([make_entry(1)])
    assert await store.count() == 1
    await store.close()


# -- URLs --------------------------------------------------------------------------------------
def test_open_store_reads_urls() -> None:
    memory = open_store("sqlite:///:memory:")
    assert isinstance(memory, SQLiteStore) and memory.path == ":memory:"
    relative = open_store("sqlite:///data/ledger.db")
    assert isinstance(relative, SQLiteStore) and relative.path == "data/ledger.db"
    absolute = open_store("sqlite:////var/lib/llmroute/ledger.db")
    assert isinstance(absolute, SQLiteStore) and absolute.path == "/var/lib/llmroute/ledger.db"

    pg = open_store("postgresql://u:secret@db:5432/app?schema=ledger&sslmode=require")
    assert isinstance(pg, PostgresStore)
    assert pg.schema == "ledger" and pg.dsn == "postgresql://u:secret@db:5432/app?sslmode=require"
    assert "secret" not in repr(pg)
    legacy = open_store("postgres://u@db/app")
    assert isinstance(legacy, PostgresStore) and legacy.schema == "public"


@pytest.mark.parametrize("url", ["mysql://u:hunter2@db/app", "ledger.db", "sqlite://", "sqlite:///"])
def test_open_store_refuses_other_urls_clearly(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_store(url)
    assert "sqlite:///" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_postgres_schema_must_be_a_plain_identifier() -> None:
    with pytest.raises(ValueError, match="schema"):
        PostgresStore("postgresql://localhost/db", schema='x"; DROP TABLE y; --')

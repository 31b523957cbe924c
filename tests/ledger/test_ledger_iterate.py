"""`Store.iterate` against `Store.query`, on SQLite and PostgreSQL: the same entries in the same order,
in bounded batches, across batch boundaries inside runs of equal timestamps, over empty windows,
with entries written between batches."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from ledger_factories import BASE_TS, full_entry, make_entry

from llmroute.ledger import LedgerEntry, Store
from llmroute.ledger.paging import Pager
from llmroute.ledger.sqlite import _SELECT, _SQL

#: Ids that sort differently by byte and by a language collation (PostgreSQL's default may be one):
#: iterate and query must agree whatever the database's order is.
ODD_IDS = ["B", "a", "a-", "a_", "A", "é", "e", "Z9", "z10", "a a", "ａ", "10", "9"]


async def batches_of(store: Store, batch_size: int, **window: Any) -> list[list[LedgerEntry]]:
    return [batch async for batch in store.iterate(batch_size=batch_size, **window)]


async def assert_same_as_query(store: Store, batch_size: int, **window: Any) -> list[list[LedgerEntry]]:
    """iterate's batches hold exactly query's entries in query's order; every batch but the last is
    full, none is empty."""
    found = await batches_of(store, batch_size, **window)
    assert [e for batch in found for e in batch] == await store.query(**window)
    assert all(len(batch) == batch_size for batch in found[:-1])
    assert all(0 < len(batch) <= batch_size for batch in found)
    return found


def random_ledger(seed: int, n: int) -> list[LedgerEntry]:
    """Entries on few distinct timestamps (long runs of ties), ids in no particular order (odd ones
    included), some with an experiment arm, money of many scales."""
    rng = random.Random(seed)
    moments = [BASE_TS + timedelta(seconds=rng.randrange(0, 600), microseconds=rng.choice([0, 1, 999999]))
               for _ in range(max(1, n // 6))]
    ids = rng.sample(range(10 * n), n)
    rows: list[LedgerEntry] = []
    for i, number in enumerate(ids):
        request_id = ODD_IDS[i] if i < len(ODD_IDS) else f"{rng.choice('abcXYZ-_')}{number:x}"
        scaled = Decimal(f"{rng.randrange(10**9)}E-{rng.randint(0, 23)}")
        cost = rng.choice([None, Decimal("0.00000001875"), scaled])
        rows.append(make_entry(i, request_id=request_id, ts=rng.choice(moments), cost_usd=cost,
                               experiment_arm=rng.choice([None, "exp:a", "exp:b", "other:a"]),
                               user_rating=rng.choice([None, 1, 5])))
    return rows


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(3))
async def test_random_ledgers_in_batches_equal_query(store: Store, seed: int) -> None:
    rows = random_ledger(seed, 300)
    await store.write(rows)
    rng = random.Random(100 + seed)
    for batch_size in (1, 2, 7, 64, 299, 300, 301, 5000):
        await assert_same_as_query(store, batch_size)
    for _ in range(6):
        start = BASE_TS + timedelta(seconds=rng.randrange(0, 600))
        end = start + timedelta(seconds=rng.randrange(1, 300))
        size = rng.choice([1, 3, 10, 100])
        await assert_same_as_query(store, size, since=start, until=end)
        await assert_same_as_query(store, size, since=start)
        await assert_same_as_query(store, size, until=end)
        await assert_same_as_query(store, size, since=start, experiments=["exp"])
    assert sum(map(len, await batches_of(store, 13))) == len(rows)


@pytest.mark.asyncio
async def test_ties_on_ts_across_batch_boundaries(store: Store) -> None:
    same = BASE_TS + timedelta(seconds=5)
    tied = [make_entry(i, request_id=f"tie-{i:02d}", ts=same) for i in range(10)]
    await store.write([make_entry(1), *reversed(tied), make_entry(9)])
    for size in (1, 2, 3, 4, 5, 10, 11):
        found = await assert_same_as_query(store, size)
        ids = [e.request_id for batch in found for e in batch]
        assert ids == ["req-000001", *(f"tie-{i:02d}" for i in range(10)), "req-000009"]
    inside = await assert_same_as_query(store, 3, since=same, until=same + timedelta(microseconds=1))
    assert [len(batch) for batch in inside] == [3, 3, 3, 1]


@pytest.mark.asyncio
async def test_empty_windows_give_no_batch(store: Store) -> None:
    assert await batches_of(store, 10) == []
    await store.write([make_entry(n) for n in range(5)])
    assert await batches_of(store, 10, since=BASE_TS + timedelta(hours=1)) == []
    assert await batches_of(store, 10, until=BASE_TS) == []
    assert await batches_of(store, 10, since=BASE_TS, until=BASE_TS) == []
    assert await batches_of(store, 10, experiments=[]) == []
    assert await batches_of(store, 10, experiments=["nope"]) == []
    assert [len(b) for b in await batches_of(store, 5)] == [5]  # a full last batch, then nothing


@pytest.mark.asyncio
async def test_every_field_survives(store: Store) -> None:
    entries = [full_entry(1), make_entry(2), full_entry(3)]
    await store.write(entries)
    assert await batches_of(store, 2) == [entries[:2], entries[2:]]


@pytest.mark.asyncio
async def test_entries_written_between_batches(store: Store) -> None:
    await store.write([make_entry(n) for n in range(0, 20, 2)])
    seen: list[str] = []
    async for batch in store.iterate(batch_size=3):
        seen += [e.request_id for e in batch]
        if len(seen) == 3:  # position: entry 4; one entry behind it, one ahead
            await store.write([make_entry(3), make_entry(11)])
    assert seen == [f"req-{n:06d}" for n in (0, 2, 4, 6, 8, 10, 11, 12, 14, 16, 18)]


@pytest.mark.asyncio
async def test_bad_arguments_are_refused_at_the_call(store: Store) -> None:
    for size in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            store.iterate(batch_size=size)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        store.iterate(since=datetime(2025, 1, 1))


def test_later_pages_start_at_the_position_reached() -> None:
    since, until = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    pager = Pager.build(_SQL, _SELECT, since, until, ["exp"], 100)
    first_sql, first = pager.page(None)
    assert first == ["2025-01-01T00:00:00.000000Z", "2025-02-01T00:00:00.000000Z", "exp:"]
    assert first_sql.endswith(" ORDER BY ts, request_id LIMIT 100") and "OFFSET" not in first_sql
    sql, params = pager.page(make_entry(7))
    assert params == ["2025-01-01T12:00:07.000000Z", "2025-02-01T00:00:00.000000Z", "exp:",
                      "2025-01-01T12:00:07.000000Z", "req-000007"]
    assert "ts >= ? AND ts < ?" in sql and "AND (ts > ? OR request_id > ?)" in sql

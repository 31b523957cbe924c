"""The ledger's part in learning online (issue 13), on SQLite and PostgreSQL: the exploration mark
and the prompt latent round-trip, migration 0006_online, and the learner's poll of new feedback
(`Store.rated`) in feedback order after a cursor."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ledger_factories import BASE_TS, make_entry

from llmroute.ledger.migrations import ONLINE_MIGRATION
from llmroute.ledger.store import Store
from llmroute.reports.aggregate import aggregate_entries


@pytest.mark.asyncio
async def test_the_mark_and_the_latent_round_trip(store: Store) -> None:
    marked = make_entry(1, explored=True, latent="AAA8")
    plain = make_entry(2)
    await store.write([marked, plain])
    assert await store.get(marked.request_id) == marked
    got = await store.get(plain.request_id)
    assert got is not None and (got.explored, got.latent) == (False, None)
    assert ONLINE_MIGRATION in [s.name for s in await store.migration_status() if s.applied]


@pytest.mark.asyncio
async def test_rated_reads_feedback_in_order_after_a_cursor(store: Store) -> None:
    entries = [make_entry(i, latent=f"z{i}", user=f"u{i % 2}") for i in range(6)]
    entries.append(make_entry(9))  # no latent: never read
    await store.write(entries)
    at = BASE_TS + timedelta(hours=1)
    for k, i in enumerate((4, 1, 3, 9)):  # feedback order differs from request order
        await store.feedback(f"req-{i:06d}", rating=5 - k, at=at + timedelta(seconds=k))
    await store.feedback("req-000000", success=True, at=at + timedelta(seconds=10))

    first = await store.rated(at + timedelta(seconds=5), limit=2)
    assert [r.request_id for r in first] == ["req-000004", "req-000001"]
    assert (first[0].user_rating, first[0].latent, first[0].user, first[0].model) == (
        5, "z4", "u0", entries[4].model)
    rest = await store.rated(at + timedelta(seconds=5), first[-1].cursor)
    assert [r.request_id for r in rest] == ["req-000003"]
    later = await store.rated(at + timedelta(minutes=1), rest[-1].cursor)
    assert [(r.request_id, r.task_success, r.user_rating) for r in later] == [
        ("req-000000", True, None)]
    assert await store.rated(at + timedelta(minutes=1), later[-1].cursor) == []


@pytest.mark.asyncio
async def test_reports_group_by_exploration(store: Store) -> None:
    rows = [make_entry(i, explored=i % 4 == 0) for i in range(12)]
    await store.write(rows)
    got = await store.aggregate("explored")
    assert got == aggregate_entries(rows, "explored")
    assert {g.label: g.tally.requests for g in got.groups} == {"explored": 3, "routed": 9}

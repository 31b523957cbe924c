"""Issue 16's exact counts, on SQLite and PostgreSQL: `unpriced` (cost unknown although a paid call
was made; a failure that made none is not counted) and `fallbacks` (answered by another model than
the first one tried), the same from the raw rows (`Store.aggregate`), the rollups (`Store.rollups`,
written incrementally and rebuilt) and the reference over entries; and migration 0009 on a ledger
written before it (its columns backfilled from the stored rows, the rollups rebuilt)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from ledger_factories import BASE_TS, forget_counts_statements, make_entry, run_statements

from llmroute.ledger import LedgerEntry, SQLiteStore, Store
from llmroute.ledger.entry import AttemptRecord
from llmroute.ledger.migrations import COUNTS_MIGRATION
from llmroute.ledger.postgres import PostgresStore
from llmroute.reports.aggregate import aggregate_entries, report_from

D = Decimal
A, B = "m/a", "m/b"


def _tried(*steps: tuple[str, str | None], router: bool = False) -> tuple[AttemptRecord, ...]:
    """Attempts: (model, error kind or None); `router`: an answered LLM-router call first."""
    found = [AttemptRecord(model, kind, status=None if kind is None else 503, latency_s=0.1)
             for model, kind in steps]
    return (*((AttemptRecord("m/router", None, router=True),) if router else ()), *found)


def mixed() -> list[tuple[LedgerEntry, bool, bool]]:
    """(entry, unpriced, fallback) worked by hand: priced answers, unpriced answers, costless
    failures, failures that made a paid call of unknown cost, fallbacks, retries and router calls."""
    no_usage: dict[str, Any] = {"input_tokens": None, "output_tokens": None, "cached_tokens": None}
    failed: dict[str, Any] = {"status": "error", "http_status": 502, "model": None, "cost_usd": None,
                              **no_usage}
    cases: list[tuple[dict[str, Any], bool, bool]] = [
        ({"cost_usd": D("0.0001")}, False, False),  # priced answer
        ({"cost_usd": D("0")}, False, False),  # free, priced: $0 is a known cost
        ({"cost_usd": None}, True, False),  # unpriced answer
        ({"cost_usd": None, **no_usage}, True, False),  # answered, no usage, cost unknown
        ({**failed, "attempts": _tried((A, "overloaded"), (B, "overloaded"))}, False, False),
        ({**failed, "attempts": ()}, False, False),  # refused before any call
        ({**failed, "input_tokens": 12}, True, False),  # upstream reported usage: a paid call
        ({**failed, "attempts": _tried((A, "timeout"), router=True)}, True, False),  # router answered
        ({**failed, "cost_usd": D("0.00002"), "routing_cost_usd": D("0.00002"),
          "attempts": _tried((A, "timeout"), router=True)}, False, False),  # router priced
        ({"model": B, "attempts": _tried((A, "overloaded"), (B, None))}, False, True),  # fallback
        ({"model": B, "cost_usd": None, "attempts": _tried((A, "timeout"), (B, None))}, True, True),
        ({"model": A, "attempts": _tried((A, "overloaded"), (A, None))}, False, False),  # a retry
        ({"model": A, "attempts": _tried((A, None), router=True)}, False, False),  # router + answer
        ({"model": B, "attempts": (AttemptRecord(A, "cooldown", skipped=True),
                                   AttemptRecord(B, None))}, False, False),  # skipped: not tried
        ({"model": "m/c", "attempts": (AttemptRecord(A, "cooldown", skipped=True),
                                       AttemptRecord(B, "timeout"), AttemptRecord("m/c", None))},
         False, True),  # tried B first, answered by m/c
    ]
    return [(make_entry(i * 600, **changes), unpriced, fallback)  # ten minutes apart: 2+ hours
            for i, (changes, unpriced, fallback) in enumerate(cases)]


def test_the_entry_marks_match_the_hand_worked_cases() -> None:
    for entry, unpriced, fallback in mixed():
        assert (entry.unpriced, entry.fallback) == (unpriced, fallback), entry.request_id


async def _assert_counts(store: Store, entries: list[LedgerEntry], unpriced: int, fallbacks: int) -> None:
    reference = aggregate_entries(entries, "model")
    raw = await store.aggregate("model")
    assert (raw.total.tally.unpriced, raw.total.tally.fallbacks) == (unpriced, fallbacks)
    assert raw == reference
    inside = BASE_TS + timedelta(minutes=25), BASE_TS + timedelta(minutes=125)  # raw edges, an hour
    for since, until in ((None, None), inside):
        window = await store.rollups("model", since, until)
        kept = [e for e in entries if (since is None or e.ts >= since) and (until is None or e.ts < until)]
        expected = aggregate_entries(kept, "model")
        assert window.total.tally == expected.total.tally
        assert [g.tally for g in window.groups] == [g.tally for g in expected.groups]
    total = report_from(raw).total
    assert (total.unpriced, total.fallbacks) == (unpriced, fallbacks)


@pytest.mark.asyncio
async def test_unpriced_and_fallbacks_are_exact_on_every_path(store: Store) -> None:
    cases = mixed()
    entries = [e for e, _, _ in cases]
    await store.write(entries)
    unpriced, fallbacks = sum(u for _, u, _ in cases), sum(f for _, _, f in cases)
    assert (unpriced, fallbacks) == (5, 3)
    await _assert_counts(store, entries, unpriced, fallbacks)
    await store.rebuild_rollups()
    await _assert_counts(store, entries, unpriced, fallbacks)
    # feedback moves the rollups by the stored facts: the marks stay with their entry
    assert await store.feedback(entries[10].request_id, rating=4, success=True, comment=None)
    rated = [dataclasses.replace(e, user_rating=4, task_success=True) if i == 10 else e
             for i, e in enumerate(entries)]
    await _assert_counts(store, rated, unpriced, fallbacks)




async def _marks(store: Store) -> dict[str, tuple[bool, bool]]:
    sql = "SELECT request_id, unpriced, fallback FROM llmroute_requests"
    if isinstance(store, SQLiteStore):
        rows = await store.run(lambda conn: conn.execute(sql).fetchall())
    else:
        assert isinstance(store, PostgresStore)
        async with store.connection() as conn:
            rows = await conn.fetch(sql)
    return {str(r[0]): (bool(r[1]), bool(r[2])) for r in rows}


@pytest.mark.asyncio
async def test_the_migration_backfills_a_ledger_written_before_it(stores: Any) -> None:
    store = stores.new()
    await store.migrate()
    cases = mixed()
    entries = [e for e, _, _ in cases]
    await store.write(entries)
    await run_statements(store, forget_counts_statements(rollups=True))  # the 0008 schema, with its data
    assert await store.migrate() == [COUNTS_MIGRATION]
    assert await _marks(store) == {e.request_id: (u, f) for e, u, f in cases}
    await _assert_counts(store, entries, 5, 3)  # the rollups were rebuilt with the new counts
    reopened = stores.new()
    assert await reopened.migrate() == []

"""LedgerService: feedback for an entry recorded but not written yet waits for the writer; an unknown
id is answered at once; the service keeps no per-request state once entries are written."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from ledger_factories import make_entry, wait_until

from llmroute.ledger.service import LedgerService
from llmroute.settings import LedgerConfig


def service(tmp_path: Path, flush_interval_s: float) -> LedgerService:
    return LedgerService(LedgerConfig(url=f"sqlite:///{tmp_path / 'l.db'}", batch_size=1000,
                                      flush_interval_s=flush_interval_s,
                                      spool_path=str(tmp_path / "spool.jsonl")))


@pytest.mark.asyncio
async def test_feedback_waits_for_an_entry_not_yet_written(tmp_path: Path) -> None:
    ledger = service(tmp_path, flush_interval_s=0.4)
    await ledger.start()
    try:
        ledger.record(make_entry(1))
        assert ledger.writer.holds("req-000001")
        assert await ledger.store.get("req-000001") is None  # not written yet
        started = time.monotonic()
        assert await ledger.feedback("req-000001", rating=5)
        assert time.monotonic() - started < 2.0
        assert not ledger.writer.holds("req-000001")
        stored = await ledger.store.get("req-000001")
        assert stored is not None and stored.user_rating == 5
    finally:
        await ledger.aclose()


@pytest.mark.asyncio
async def test_unknown_ids_are_answered_at_once_and_nothing_is_kept(tmp_path: Path) -> None:
    ledger = service(tmp_path, flush_interval_s=0.01)
    await ledger.start()
    try:
        for n in range(50):
            ledger.record(make_entry(n))
        await wait_until(lambda: ledger.stats().written == 50, what="all written")
        assert not any(ledger.writer.holds(f"req-{n:06d}") for n in range(50))
        started = time.monotonic()
        assert not await ledger.feedback("req-unknown", rating=3)
        assert time.monotonic() - started < 0.5  # no waiting for an id the writer never saw
        assert await ledger.feedback("req-000049", success=True)
    finally:
        await ledger.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize("sliced", [True, False])
async def test_a_batch_is_converted_in_slices_that_let_requests_run_or_in_one_go(sliced: bool) -> None:
    import asyncio

    from llmroute.ledger.rows import ROWS_PER_SLICE, SQLITE, to_row, to_rows

    entries = [make_entry(n) for n in range(5 * ROWS_PER_SLICE + 3)]
    ticks = 0

    async def request_in_flight() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(request_in_flight())
    await asyncio.sleep(0)
    started = ticks
    rows = await to_rows(entries, SQLITE, sliced=sliced)
    other.cancel()
    assert rows == [to_row(entry, SQLITE) for entry in entries]
    if sliced:
        assert ticks - started >= 5  # the loop ran other work between the slices
    else:
        assert ticks == started  # a writer that is behind: nothing else ran meanwhile

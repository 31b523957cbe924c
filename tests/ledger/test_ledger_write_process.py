"""`ledger.writes: process` (issue 17's prototype): the writer's batches are written by a child
process on a store of its own; the gateway's store writes nothing; feedback on an entry not written
yet, rollups and a store refusal behave as inline; the child going away fails one write (spooled,
then replayed by a new child); an in-memory ledger writes inline."""

from __future__ import annotations

import os
import signal
from collections.abc import Sequence
from pathlib import Path

import pytest
from ledger_factories import make_entry, wait_until

from llmroute.ledger.entry import LedgerEntry
from llmroute.ledger.service import LedgerService
from llmroute.settings import LedgerConfig


def service(tmp_path: Path, *, flush_interval_s: float = 0.01) -> LedgerService:
    ledger = LedgerService(LedgerConfig(url=f"sqlite:///{tmp_path / 'l.db'}", batch_size=1000,
                                        flush_interval_s=flush_interval_s, writes="process",
                                        spool_path=str(tmp_path / "spool.jsonl")))

    async def not_here(entries: Sequence[LedgerEntry]) -> None:
        raise AssertionError("the gateway's own store wrote a batch")

    ledger.store.write = not_here  # type: ignore[method-assign]
    return ledger


@pytest.mark.asyncio
async def test_batches_are_written_by_the_child(tmp_path: Path) -> None:
    ledger = service(tmp_path)
    await ledger.start()
    try:
        for n in range(40):
            ledger.record(make_entry(n))
        await wait_until(lambda: ledger.stats().written == 40, what="all written")
        assert ledger.writes is not None and ledger.writes.pid not in (None, os.getpid())
        stored = await ledger.store.get("req-000039")
        assert stored is not None and stored.model == make_entry(39).model
        assert await ledger.store.count() == 40
        assert await ledger.feedback("req-000007", rating=4)  # the gateway's store reads them
    finally:
        stats = await ledger.aclose()
    assert stats.written == 40 and stats.spooled == 0 and stats.write_errors == 0


@pytest.mark.asyncio
async def test_feedback_waits_for_an_entry_the_child_has_not_written(tmp_path: Path) -> None:
    ledger = service(tmp_path, flush_interval_s=0.4)
    await ledger.start()
    try:
        ledger.record(make_entry(1))
        assert ledger.writer.holds("req-000001")
        assert await ledger.feedback("req-000001", rating=5)
        stored = await ledger.store.get("req-000001")
        assert stored is not None and stored.user_rating == 5
    finally:
        await ledger.aclose()


@pytest.mark.asyncio
async def test_a_dead_child_fails_one_write_and_the_spool_lands_once(tmp_path: Path) -> None:
    ledger = service(tmp_path)
    await ledger.start()
    try:
        ledger.record(make_entry(1))
        await wait_until(lambda: ledger.stats().written == 1, what="first written")
        assert ledger.writes is not None and ledger.writes.pid is not None
        os.kill(ledger.writes.pid, signal.SIGKILL)
        for n in range(2, 30):
            ledger.record(make_entry(n))
        await wait_until(lambda: ledger.stats().written + ledger.stats().replayed == 29,
                         what="everything in the store", timeout_s=20)
        assert await ledger.store.count() == 29
    finally:
        await ledger.aclose()


def test_an_in_memory_ledger_writes_inline() -> None:
    ledger = LedgerService(LedgerConfig(url="sqlite:///:memory:", writes="process"))
    assert ledger.writes is None

"""`ledger.writes: process` (issue 17's prototype): the writer's batches are written by a child
process on a store of its own; the gateway's store writes nothing; feedback on an entry not written
yet, rollups and a store refusal behave as inline; the child going away fails one write (spooled,
then replayed by a new child); an in-memory ledger writes inline."""

from __future__ import annotations

import dataclasses
import os
import signal
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import StoreFactory
from ledger_factories import FlakyStore, full_entry, make_entry, wait_until

from llmroute.ledger.entry import AttemptRecord, LedgerEntry
from llmroute.ledger.service import LedgerService
from llmroute.ledger.store import StoreRejectedError
from llmroute.ledger.wal import WalPolicy, encode
from llmroute.ledger.write_process import ProcessWrites, decode_lines
from llmroute.ledger.writer import LedgerWriter
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


def unusual_entries() -> list[LedgerEntry]:
    """Entries whose values need converting: every field set, NULs, exact tiny money, big ints."""
    return [full_entry(1), make_entry(2),
            make_entry(3, prompt_text="a\x00b", cost_usd=Decimal("1E-9"), confidence=None,
                       attempts=(AttemptRecord("m", "bad_request", "said \x00", 400, 0.5),)),
            make_entry(4, input_tokens=2**40, cost_usd=Decimal("123456789.123456789012345678"),
                       stream=True, explored=True, latent="QUJD", cache="miss")]


@pytest.mark.asyncio
async def test_the_child_stores_what_an_inline_write_stores(stores: StoreFactory) -> None:
    """The batch travels as log lines and is decoded in the child: on both backends each entry
    reads back exactly as the same entry written inline does."""
    inline = stores.new()
    await inline.migrate()
    writes = ProcessWrites(stores.url)
    try:
        await writes.write_lines([encode(entry) for entry in unusual_entries()])
    finally:
        await writes.aclose()
    await inline.write([dataclasses.replace(e, request_id=e.request_id + "-inline")
                        for e in unusual_entries()])
    for entry in unusual_entries():
        child, here = await inline.get(entry.request_id), await inline.get(entry.request_id + "-inline")
        assert child is not None and here is not None
        assert child == dataclasses.replace(here, request_id=entry.request_id)
    assert await inline.count() == 2 * len(unusual_entries())


@pytest.mark.asyncio
async def test_an_entry_the_store_refuses_in_the_child_is_set_aside(stores: StoreFactory,
                                                                   tmp_path: Path) -> None:
    """An integer beyond 64 bits: its line is `to_json`'s, the child reads it, the store refuses
    it; the writer finds it and sets it aside, the others are written (SQLite and PostgreSQL)."""
    first = stores.new()
    await first.migrate()
    ledger = LedgerService(LedgerConfig(url=stores.url, batch_size=1000, flush_interval_s=0.01,
                                        writes="process", spool_path=str(tmp_path / "spool.jsonl")))
    await ledger.start()
    try:
        for n in range(5):
            ledger.record(make_entry(n, input_tokens=2**70) if n == 3 else make_entry(n))
        await wait_until(lambda: ledger.stats().written == 4 and ledger.stats().rejected == 1,
                         what="four written, one set aside", timeout_s=10)
    finally:
        await ledger.aclose()
    assert await first.count() == 4 and await first.get("req-000003") is None


def test_a_line_that_does_not_read_back_is_a_refusal() -> None:
    assert decode_lines(encode(make_entry(1)) + b"\n" + encode(make_entry(2))) == [make_entry(1),
                                                                                  make_entry(2)]
    with pytest.raises(StoreRejectedError):
        decode_lines(encode(make_entry(1)) + b"{not json\n")
    with pytest.raises(StoreRejectedError):
        decode_lines(b"\xff\xfe\n")


@pytest.mark.asyncio
async def test_the_writer_hands_over_the_lines_it_logged(flaky: FlakyStore, tmp_path: Path) -> None:
    """With `write_lines`, each batch is its entries' log lines in queue order: the very bytes the
    write-ahead log holds; a batch from the spool (after an outage) is encoded then."""
    batches: list[list[bytes]] = []

    async def write_lines(lines: Sequence[bytes]) -> None:
        batches.append(list(lines))
        await flaky.write(decode_lines(b"".join(lines)))

    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=10,
                          flush_interval_s=0.01, backoff_base_s=0.01, backoff_max_s=0.05,
                          wal=WalPolicy(fsync="never"), write_lines=write_lines)
    await writer.start()
    flaky.down = True
    for n in range(10):
        writer.record(make_entry(n))
    assert writer.wal is not None
    logged = b"".join(path.read_bytes().rstrip(b"\0") for path in writer.wal.segments)
    assert logged == b"".join(encode(make_entry(n)) for n in range(10))
    await wait_until(lambda: writer.stats().spooled == 10, what="the batch spooled")
    flaky.down = False
    for n in range(10, 25):
        writer.record(make_entry(n))
    await wait_until(lambda: writer.stats().written + writer.stats().replayed == 25,
                     what="everything written")
    stats = await writer.aclose()
    assert stats.dropped == 0 and stats.rejected == 0
    assert sorted(line for batch in batches for line in batch) == sorted(
        [encode(make_entry(n)) for n in range(25)] + [encode(make_entry(n)) for n in range(10)])
    assert sorted(e.request_id for e in await flaky.query()) == [f"req-{n:06d}" for n in range(25)]

"""LedgerWriter: batching, the spool when the store fails, overflow, closing, replay at start."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import StoreFactory
from ledger_factories import POSTGRES_DSN, FlakyStore, TcpProxy, make_entry, wait_until

from llmroute.ledger import LedgerWriter, Store
from llmroute.ledger.postgres import PostgresStore

FAST: dict[str, Any] = {"flush_interval_s": 0.01, "backoff_base_s": 0.01, "backoff_max_s": 0.05}


def spool_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def stored_ids(store: Store) -> list[str]:
    return [e.request_id for e in await store.query()]


# -- batching ----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_entries_are_written_in_batches(flaky: FlakyStore, tmp_path: Path) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=10, flush_interval_s=60)
    for n in range(25):
        writer.record(make_entry(n))
    await writer.start()
    await wait_until(lambda: len(flaky.acknowledged) == 2, what="two full batches")
    assert [len(ids) for ids in flaky.acknowledged] == [10, 10]  # the last 5 wait for more
    stats = await writer.aclose()
    assert [len(ids) for ids in flaky.acknowledged] == [10, 10, 5]
    assert await flaky.count() == 25
    assert (stats.recorded, stats.written, stats.spooled, stats.queue_depth) == (25, 25, 0, 0)


@pytest.mark.asyncio
async def test_a_partial_batch_is_written_after_the_flush_interval(flaky: FlakyStore, tmp_path: Path) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=100, flush_interval_s=0.05)
    await writer.start()
    for n in range(3):
        writer.record(make_entry(n))
    started = time.monotonic()
    await wait_until(lambda: writer.stats().written == 3, what="the partial batch")
    assert time.monotonic() - started < 1.0
    await writer.aclose()


# -- a failing store ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_down_store_spools_then_replays_exactly_once(flaky: FlakyStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    writer = LedgerWriter(flaky, spool_path=spool, batch_size=10, **FAST)
    await writer.start()
    flaky.down = True
    for n in range(30):
        writer.record(make_entry(n))
    await wait_until(lambda: writer.stats().spooled == 30, what="30 spooled entries")
    assert await flaky.count() == 0
    assert len(spool_lines(writer.spool_file)) == 30
    assert not writer.stats().store_up

    flaky.down = False
    await wait_until(lambda: writer.stats().replayed == 30, what="the replay")
    assert sorted(await stored_ids(flaky)) == [f"req-{n:06d}" for n in range(30)]
    acknowledged = [rid for ids in flaky.acknowledged for rid in ids]
    assert sorted(acknowledged) == sorted(set(acknowledged)) and len(acknowledged) == 30
    replay_file = writer.spool_file.with_name(spool.name + ".replay")
    await wait_until(lambda: not writer.spool_file.exists() and not replay_file.exists(),
                     what="the spool files to be removed")

    writer.record(make_entry(100))  # back to normal writes
    stats = await writer.aclose()
    assert stats.store_up and stats.written == 1 and stats.write_errors >= 1 and stats.dropped == 0
    assert await flaky.count() == 31


@pytest.mark.asyncio
async def test_an_outage_and_the_recovery_are_ledger_outage_log_events(
        flaky: FlakyStore, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=10, **FAST)
    with caplog.at_level(logging.INFO, logger="llmroute"):
        await writer.start()
        flaky.down = True
        writer.record(make_entry(1))
        await wait_until(lambda: writer.stats().spooled == 1, what="the spooled entry")
        flaky.down = False
        await wait_until(lambda: writer.stats().replayed == 1, what="the replay")
        await writer.aclose()
    outages = [r for r in caplog.records if getattr(r, "event", None) == "ledger_outage"]
    assert [(r.up, r.levelname) for r in outages] == [(False, "WARNING"), (True, "INFO")]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_a_lost_acknowledgement_does_not_duplicate(flaky: FlakyStore, tmp_path: Path) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=5, **FAST)
    await writer.start()
    flaky.lose_acks = 1  # the first batch commits, but the writer hears an error and spools it
    for n in range(5):
        writer.record(make_entry(n))
    await wait_until(lambda: writer.stats().replayed == 5, what="the replay")
    stats = await writer.aclose()
    assert stats.spooled == 5 and stats.write_errors == 1
    assert await flaky.count() == 5


@pytest.mark.asyncio
async def test_replay_resumes_after_failing_halfway(flaky: FlakyStore, tmp_path: Path) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=4, **FAST)
    for n in range(12):
        writer.record(make_entry(n))
    flaky.down = True
    await writer.start()
    await wait_until(lambda: writer.stats().spooled == 12, what="12 spooled")
    flaky.down = False
    flaky.lose_acks = 0
    # the replay's second batch fails: the first stays replayed, the rest waits for the next probe
    original_write = flaky.inner.write
    calls = 0

    async def second_write_fails(entries: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("injected: connection reset")
        await original_write(entries)

    flaky.inner.write = second_write_fails  # type: ignore[method-assign]
    await wait_until(lambda: writer.stats().replayed == 12, what="the whole replay")
    stats = await writer.aclose()
    assert await flaky.count() == 12
    assert stats.replayed == 12 and calls == 4  # 4 + 4 + 4 entries, one retried batch


# -- refused entries ---------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_an_entry_the_store_refuses_is_set_aside(stores: StoreFactory, tmp_path: Path) -> None:
    store = stores.new()
    await store.migrate()
    spool = tmp_path / "spool.jsonl"
    spool.write_text(make_entry(10, input_tokens=2**70).to_json() + "\n" + make_entry(11).to_json() + "\n")
    writer = LedgerWriter(store, spool_path=spool, batch_size=10, **FAST)
    bad = make_entry(3)
    object.__setattr__(bad, "status", "bogus")  # violates the table's CHECK constraint
    for entry in (make_entry(1), make_entry(2), bad, make_entry(4)):
        writer.record(entry)
    await writer.start()
    stats = await writer.aclose()

    assert sorted(await stored_ids(store)) == ["req-000001", "req-000002", "req-000004", "req-000011"]
    assert (stats.written, stats.replayed, stats.rejected, stats.write_errors) == (3, 1, 2, 0)
    assert stats.store_up
    rejected = (tmp_path / "spool.jsonl.rejected").read_text().splitlines()
    assert sorted(json.loads(line)["request_id"] for line in rejected) == ["req-000003", "req-000010"]


@pytest.mark.asyncio
async def test_an_unexpected_error_does_not_stop_the_writer(
        flaky: FlakyStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=5, **FAST)
    await writer.start()
    flaky.down = True
    spool = writer._claimed()
    original = spool.append
    calls = 0

    def append_fails_once(*args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected: a bug")
        original(*args, **kwargs)

    monkeypatch.setattr(spool, "append", append_fails_once)
    for n in range(10):
        writer.record(make_entry(n))
    await wait_until(lambda: writer.stats().spooled == 10, what="the batches spooled")
    flaky.down = False
    stats = await writer.aclose()
    assert await flaky.count() == 10 and stats.dropped == 0


# -- overflow ----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_full_queue_overflows_to_the_spool(flaky: FlakyStore, tmp_path: Path) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", max_queue=5, batch_size=5, **FAST)
    for n in range(12):  # not started: nothing drains the queue
        writer.record(make_entry(n))
    stats = writer.stats()
    assert (stats.recorded, stats.queue_depth, stats.spooled_overflow) == (12, 5, 7)
    assert len(spool_lines(writer.spool_file)) == 7
    await writer.start()
    await writer.aclose()
    assert sorted(await stored_ids(flaky)) == [f"req-{n:06d}" for n in range(12)]


# -- closing -----------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_aclose_flushes_without_waiting_for_the_interval(flaky: FlakyStore, tmp_path: Path) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=1000, flush_interval_s=60)
    await writer.start()
    for n in range(50):
        writer.record(make_entry(n))
    started = time.monotonic()
    stats = await writer.aclose()
    assert time.monotonic() - started < 2.0
    assert stats.written == 50 and await flaky.count() == 50


@pytest.mark.asyncio
async def test_aclose_with_the_store_down_spools_and_the_next_start_replays(
        flaky: FlakyStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    writer = LedgerWriter(flaky, spool_path=spool, batch_size=8, **FAST)
    await writer.start()
    flaky.down = True
    for n in range(20):
        writer.record(make_entry(n))
    stats = await writer.aclose(timeout_s=1.0)
    assert stats.spooled + stats.spooled_overflow == 20 and stats.dropped == 0
    assert await flaky.count() == 0 and len(spool_lines(spool)) == 20

    writer.record(make_entry(20))  # after close: straight to the spool, not lost
    assert len(spool_lines(spool)) == 21

    flaky.down = False
    successor = LedgerWriter(flaky, spool_path=spool, batch_size=8, **FAST)
    await successor.start()
    await wait_until(lambda: successor.stats().replayed == 21, what="the replay at start")
    await successor.aclose()
    assert sorted(await stored_ids(flaky)) == [f"req-{n:06d}" for n in range(21)]


@pytest.mark.asyncio
async def test_aclose_gives_up_on_a_hanging_store_within_the_timeout(
        flaky: FlakyStore, tmp_path: Path) -> None:
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=10, **FAST)
    await writer.start()
    flaky.hang = True
    for n in range(25):
        writer.record(make_entry(n))
    started = time.monotonic()
    stats = await writer.aclose(timeout_s=0.3)
    assert time.monotonic() - started < 2.0
    assert stats.spooled == 25 and stats.dropped == 0
    assert len(spool_lines(writer.spool_file)) == 25


@pytest.mark.asyncio
async def test_a_spool_left_on_disk_is_replayed_at_start(flaky: FlakyStore, tmp_path: Path) -> None:
    spool = tmp_path / "spool.jsonl"
    leftover = tmp_path / "spool.jsonl.replay"  # a replay cut short by a crash: it goes first
    leftover.write_text("".join(make_entry(n).to_json() + "\n" for n in range(3)))
    lines = [make_entry(n).to_json() for n in range(3, 6)]
    spool.write_text(lines[0] + "\n{not json\n" + lines[1] + "\n" + lines[2] + "\n" + '{"torn": ')

    writer = LedgerWriter(flaky, spool_path=spool, batch_size=2, **FAST)
    await writer.start()
    await wait_until(lambda: writer.stats().replayed == 6, what="the replay at start")
    stats = await writer.aclose()
    assert sorted(await stored_ids(flaky)) == [f"req-{n:06d}" for n in range(6)]
    assert [e.request_id for e in await flaky.query()][:3] == ["req-000000", "req-000001", "req-000002"]
    assert stats.corrupt == 2
    assert (tmp_path / "spool.jsonl.corrupt").read_text().splitlines() == ["{not json", '{"torn": ']
    assert not spool.exists() and not leftover.exists()


@pytest.mark.asyncio
async def test_writers_sharing_a_path_claim_separate_spools(flaky: FlakyStore, tmp_path: Path) -> None:
    first = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl")
    second = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl")
    await first.start()
    await second.start()
    assert first.spool_file != second.spool_file
    await first.aclose()
    await second.aclose()


# -- concurrency -------------------------------------------------------------------------------
@pytest.mark.asyncio
@pytest.mark.parametrize("fault", ["down", "lost_ack"])
async def test_concurrent_records_with_a_fault_land_exactly_once(
        stores: StoreFactory, tmp_path: Path, fault: str) -> None:
    inner = stores.new()
    await inner.migrate()
    flaky = FlakyStore(inner)
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", max_queue=200, batch_size=16,
                          flush_interval_s=0.005, backoff_base_s=0.01, backoff_max_s=0.05)
    await writer.start()

    async def client(task: int) -> None:
        for n in range(20):
            writer.record(make_entry(task * 20 + n))
            await asyncio.sleep(0.001)

    async def inject() -> None:
        await wait_until(lambda: writer.stats().recorded >= 500, what="half of the entries")
        if fault == "down":
            flaky.down = True
            await wait_until(lambda: writer.stats().write_errors >= 1, what="a failed write")
            await asyncio.sleep(0.02)
            flaky.down = False
        else:
            flaky.lose_acks = 3
            await wait_until(lambda: flaky.lose_acks == 0, what="the lost acknowledgements")

    await asyncio.gather(inject(), *(client(task) for task in range(50)))
    stats = await writer.aclose()

    ids = await stored_ids(flaky)
    files = sorted((p.name, p.stat().st_size) for p in tmp_path.iterdir())
    assert len(ids) == len(set(ids)) == 1000 == await flaky.count(), (stats, files)
    assert stats.recorded == 1000 and stats.dropped == 0 and stats.write_errors >= 1
    assert stats.written + stats.replayed >= 1000
    assert stats.replayed == stats.spooled + stats.spooled_overflow
    assert spool_lines(writer.spool_file) == []


@pytest.mark.asyncio
async def test_a_real_postgres_outage_is_spooled_and_replayed(
        pg_prefix: str, postgres_unreachable: str | None, tmp_path: Path) -> None:
    if postgres_unreachable is not None:
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_DSN}: {postgres_unreachable}")
    target = urlsplit(POSTGRES_DSN)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    port = await proxy.start()
    netloc = target.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{port}" if "@" in target.netloc \
        else f"127.0.0.1:{port}"
    store = PostgresStore(target._replace(netloc=netloc).geturl(), schema=f"{pg_prefix}_outage",
                          connect_timeout_s=1, command_timeout_s=2)
    await store.migrate()
    writer = LedgerWriter(store, spool_path=tmp_path / "spool.jsonl", batch_size=10, **FAST)
    await writer.start()
    try:
        for n in range(20):
            writer.record(make_entry(n))
        await wait_until(lambda: writer.stats().written == 20, what="writes before the outage")

        proxy.cut()
        for n in range(20, 50):
            writer.record(make_entry(n))
        await wait_until(lambda: writer.stats().spooled == 30, what="spooling during the outage")
        assert not writer.stats().store_up

        proxy.restore()
        await wait_until(lambda: writer.stats().replayed == 30, what="the replay after the outage")
        for n in range(50, 60):
            writer.record(make_entry(n))
        stats = await writer.aclose()
        assert stats.dropped == 0 and stats.written == 30
        assert sorted(await stored_ids(store)) == [f"req-{n:06d}" for n in range(60)]
    finally:
        await writer.aclose()
        await store.close()
        await proxy.aclose()

"""Batches written with the CPU the requests leave spare (`ledger/idle.py`, issue 17's 1-client tail):
the low-priority thread, the spare-CPU test, the writer's choice between them and the service's wiring."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from ledger_factories import make_entry, wait_until

from llmroute.ledger import LedgerEntry, LedgerWriter, SQLiteStore
from llmroute.ledger.idle import IDLE_NICE, SpareCpu, Starved, lower_this_thread
from llmroute.ledger.postgres import PostgresStore
from llmroute.ledger.service import LedgerService
from llmroute.ledger.store import IdleWrites
from llmroute.settings import LedgerConfig

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")


def _nice(native_id: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, native_id)


class Clocks:
    """A thread's CPU clock and a wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.cpu, self.wall = 0.0, 64.0  # sums of powers of two stay exact

    def advance(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


# -- SpareCpu ----------------------------------------------------------------------------------
def test_spare_cpu_says_yes_only_below_its_share_of_the_interval_since_it_last_asked() -> None:
    clocks = Clocks()
    spare = SpareCpu(0.5, cpu=lambda: clocks.cpu, clock=lambda: clocks.wall)
    assert spare.spare() is False  # nothing to look at yet: normal priority
    clocks.advance(wall=0.25, cpu=0.0625)
    assert spare.spare() is True  # 25% of the interval
    clocks.advance(wall=0.25, cpu=0.1875)
    assert spare.spare() is False  # 75%
    clocks.advance(wall=0.25, cpu=0.125)
    assert spare.spare() is False  # exactly the limit is not below it
    clocks.advance(wall=0.5, cpu=0.125)
    assert spare.spare() is True  # each answer covers only the interval since the previous one
    assert spare.spare() is False  # no time passed


@pytest.mark.parametrize("below", [0.0, -0.1, 1.5])
def test_spare_cpu_refuses_a_share_outside_zero_to_one(below: float) -> None:
    with pytest.raises(ValueError, match="below"):
        SpareCpu(below)


def test_spare_cpu_measures_the_calling_thread() -> None:
    spare = SpareCpu(0.5)
    spare.spare()
    end = threading.Event()
    end.wait(0.05)  # asleep: no CPU
    assert spare.spare() is True
    busy_until = time.monotonic() + 0.05
    while time.monotonic() < busy_until:
        pass  # busy: a whole CPU
    assert spare.spare() is False


# -- Starved ----------------------------------------------------------------------------------
def test_an_idle_write_that_mostly_waited_sends_the_writes_back_for_the_pause() -> None:
    clocks = Clocks()
    starved = Starved(4.0, 0.005, 10.0, cpu=lambda: clocks.cpu, clock=lambda: clocks.wall)

    def write(wall: float, cpu: float) -> str:
        clocks.advance(wall=wall, cpu=cpu)
        return "written"

    assert starved.lately() is False
    assert starved.timed(lambda _: write(0.015625, 0.00390625))(None) == "written"
    assert starved.lately() is False  # 16 ms of wall for 4 ms of CPU (limit 4 × 4 + 5 ms)
    starved.timed(lambda _: write(0.125, 0.015625))(None)  # 125 ms for 16 ms: starved
    assert starved.lately() is True
    clocks.advance(wall=9.5, cpu=0)
    assert starved.lately() is True
    clocks.advance(wall=0.5, cpu=0)
    assert starved.lately() is False  # the pause is over


def test_a_failed_idle_write_is_timed_too_and_its_error_raised() -> None:
    clocks = Clocks()
    starved = Starved(cpu=lambda: clocks.cpu, clock=lambda: clocks.wall)

    def fails(_: None) -> None:
        clocks.advance(wall=1.0, cpu=0.0)
        raise RuntimeError("disk I/O error")

    with pytest.raises(RuntimeError, match="disk"):
        starved.timed(fails)(None)
    assert starved.lately() is True


@pytest.mark.asyncio
async def test_while_starved_write_idle_writes_by_the_normal_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    monkeypatch.setattr(Starved, "lately", lambda self: True)
    try:
        await store.write_idle([make_entry(1)])
        assert await store.count() == 1
        assert store._idle is None  # no idle thread was needed
    finally:
        await store.close()


# -- the thread's priority ---------------------------------------------------------------------
@linux_only
def test_lower_this_thread_lowers_only_the_calling_thread() -> None:
    seen: list[int] = []

    def lowered() -> None:
        lower_this_thread()
        seen.append(_nice(threading.get_native_id()))

    before = _nice(threading.get_native_id())
    thread = threading.Thread(target=lowered)
    thread.start()
    thread.join()
    assert seen == [max(before, IDLE_NICE)]
    assert _nice(threading.get_native_id()) == before  # this thread (and the process) unchanged


@linux_only
@pytest.mark.asyncio
async def test_write_idle_writes_by_a_thread_at_the_lowest_priority(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    try:
        await store.write([make_entry(1)])
        await store.write_idle([make_entry(2), make_entry(3)])
        assert await store.count() == 3
        for n in (1, 2, 3):
            assert await store.get(make_entry(n).request_id) is not None
        threads = {t.name.rsplit("_", 1)[0]: t for t in threading.enumerate()
                   if t.name.startswith("llmroute-sqlite")}
        idle, plain = threads["llmroute-sqlite-idle"], threads["llmroute-sqlite"]
        assert idle.native_id is not None and plain.native_id is not None
        own = _nice(threading.get_native_id())
        assert _nice(idle.native_id) == max(own, IDLE_NICE)
        assert _nice(plain.native_id) == own  # every other call keeps the process's priority
        await store.write_idle([make_entry(2)])  # a repeat is ignored, as with write
        assert await store.count() == 3
    finally:
        await store.close()


# -- the writer's choice -----------------------------------------------------------------------
class Calls:
    def __init__(self, store: SQLiteStore) -> None:
        self.store, self.plain, self.idle = store, 0, 0

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        self.plain += 1
        await self.store.write(entries)

    async def write_idle(self, entries: Sequence[LedgerEntry]) -> None:
        self.idle += 1
        await self.store.write_idle(entries)


@pytest.mark.asyncio
@pytest.mark.parametrize("spare", [True, False])
async def test_the_writer_sends_a_batch_to_the_idle_thread_only_while_the_cpu_is_spare(
        tmp_path: Path, spare: bool) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    calls = Calls(store)
    writer = LedgerWriter(store, spool_path=tmp_path / "spool.jsonl", batch_size=4, flush_interval_s=60,
                          write=calls.write, write_idle=calls.write_idle, spare=lambda: spare)
    await writer.start()
    for n in range(8):
        writer.record(make_entry(n))
    await wait_until(lambda: writer.stats().written == 8, what="two batches")
    await writer.aclose()
    await store.close()
    assert (calls.idle, calls.plain) == ((2, 0) if spare else (0, 2))


# -- wiring ------------------------------------------------------------------------------------
def test_only_the_sqlite_store_writes_idle() -> None:
    assert isinstance(SQLiteStore(":memory:"), IdleWrites)
    assert not isinstance(PostgresStore("postgresql://u@127.0.0.1:1/x"), IdleWrites)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_service_wires_idle_writes_as_configured(tmp_path: Path, enabled: bool) -> None:
    config = LedgerConfig(url=f"sqlite:///{tmp_path}/ledger.db", spool_path=str(tmp_path / "spool"),
                          idle_writes=enabled)
    service = LedgerService(config)
    assert (service.writer._write_idle is not None) is enabled

"""Batches written with the CPU the requests leave spare (`ledger/idle.py`, issue 17's 1-client tail):
the low-priority thread, the writer's choice between it and the normal one, the service's wiring."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import StoreFactory
from ledger_factories import make_entry, wait_until

from llmroute.ledger import LedgerEntry, LedgerWriter, SQLiteStore
from llmroute.ledger.idle import IDLE_NICE, Starved, lower_this_thread
from llmroute.ledger.postgres import PostgresStore
from llmroute.ledger.rows import Dialect
from llmroute.ledger.service import LedgerService
from llmroute.ledger.store import PacedWrites
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


# -- Starved ----------------------------------------------------------------------------------
def test_an_idle_write_that_mostly_waited_keeps_the_batches_at_normal_priority_for_the_pause() -> None:
    clocks = Clocks()
    starved = Starved(20.0, 0.0078125, 10.0, cpu=lambda: clocks.cpu, clock=lambda: clocks.wall)

    def write(wall: float, cpu: float) -> str:
        clocks.advance(wall=wall, cpu=cpu)
        return "written"

    def starve() -> None:
        starved.timed(lambda _: write(0.5, 0.0078125))(None)  # 64x its CPU: starved (full load)

    def paused_for() -> float:
        """How long `lately()` stays true from now (the clock moved in steps of 1/8 s)."""
        waited = 0.0
        while starved.lately():
            clocks.advance(wall=0.125, cpu=0)
            waited += 0.125
        return waited

    assert starved.lately() is False
    assert starved.timed(lambda _: write(0.03125, 0.0078125))(None) == "written"
    assert starved.lately() is False  # 4x its CPU: it ran while the loop waited (1 client)
    # the pause starts at half a second and doubles with each starved batch in a row, up to 10 s
    pauses = []
    for _ in range(7):
        starve()
        pauses.append(paused_for())
    assert pauses == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    # a batch that is not starved (the load has passed) starts it again
    starved.timed(lambda _: write(0.03125, 0.0078125))(None)
    starve()
    assert paused_for() == 0.5


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
async def test_while_starved_write_idle_writes_as_write_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    behind: list[int] = []
    original = SQLiteStore.write_behind

    async def counted(self: SQLiteStore, entries: Sequence[LedgerEntry]) -> None:
        behind.append(len(entries))
        await original(self, entries)

    monkeypatch.setattr(SQLiteStore, "write_behind", counted)
    try:
        await store.write_idle([make_entry(1)])
        assert behind == []  # not starved: the idle thread wrote it
        monkeypatch.setattr(Starved, "lately", lambda self: True)
        await store.write_idle([make_entry(2), make_entry(3)])
        assert behind == [2]
        assert await store.count() == 3
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
        await store.write_behind([make_entry(3), make_entry(4)])
        assert await store.count() == 4
    finally:
        await store.close()


# -- the writer's choice -----------------------------------------------------------------------
class Calls:
    """A `PacedWrites` that counts which way each batch went."""

    def __init__(self, store: SQLiteStore, catch_up: int = 1) -> None:
        self.store, self.behind, self.idle = store, 0, 0
        self.catch_up = catch_up
        self.sizes: list[int] = []

    async def write_behind(self, entries: Sequence[LedgerEntry]) -> None:
        self.behind += 1
        self.sizes.append(len(entries))
        await self.store.write_behind(entries)

    async def write_idle(self, entries: Sequence[LedgerEntry]) -> None:
        self.idle += 1
        self.sizes.append(len(entries))
        await self.store.write_idle(entries)


@pytest.mark.asyncio
async def test_the_writer_paces_a_batch_by_the_entries_queued_behind_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    calls = Calls(store)
    writer = LedgerWriter(store, spool_path=tmp_path / "spool.jsonl", batch_size=4, flush_interval_s=60,
                          paced=calls)
    for n in range(12):  # three batches queued before the writer starts: it is behind
        writer.record(make_entry(n))
    await writer.start()
    await wait_until(lambda: writer.stats().written == 12, what="three batches")
    assert (calls.behind, calls.idle) == (2, 1)  # 8 and 4 left behind the first two; none behind the last
    for n in range(12, 16):  # one batch, nothing behind it
        writer.record(make_entry(n))
    await wait_until(lambda: writer.stats().written == 16, what="the fourth batch")
    assert (calls.behind, calls.idle) == (2, 2)
    await writer.aclose()
    await store.close()
    assert await _count(tmp_path) == 16


@pytest.mark.asyncio
async def test_a_writer_behind_takes_up_to_catch_up_batches_per_write(tmp_path: Path) -> None:
    """With `catch_up` 3 and 30 entries queued (batch 4): 12, 12 (more than two batches behind
    each), then 4 and 2 one batch at a time; a write of more than a batch always goes behind."""
    store = SQLiteStore(tmp_path / "ledger.db")
    await store.migrate()
    calls = Calls(store, catch_up=3)
    writer = LedgerWriter(store, spool_path=tmp_path / "spool.jsonl", batch_size=4,
                          flush_interval_s=0.05, paced=calls)
    for n in range(30):
        writer.record(make_entry(n))
    await writer.start()
    await wait_until(lambda: writer.stats().written == 30, what="all 30")
    assert calls.sizes == [12, 12, 4, 2]
    assert (calls.behind, calls.idle) == (2, 2)  # 6 left after the second: the 4 go idle
    await writer.aclose()
    await store.close()
    assert await _count(tmp_path) == 30


async def _count(tmp_path: Path) -> int:
    store = SQLiteStore(tmp_path / "ledger.db")
    try:
        return await store.count()
    finally:
        await store.close()


# -- wiring ------------------------------------------------------------------------------------
def test_both_stores_pace_their_writes_postgres_catching_up_by_eight() -> None:
    sqlite, postgres = SQLiteStore(":memory:"), PostgresStore("postgresql://u@127.0.0.1:1/x")
    assert isinstance(sqlite, PacedWrites) and isinstance(postgres, PacedWrites)
    assert (sqlite.catch_up, postgres.catch_up) == (1, 8)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_service_wires_idle_writes_as_configured(tmp_path: Path, enabled: bool) -> None:
    config = LedgerConfig(url=f"sqlite:///{tmp_path}/ledger.db", spool_path=str(tmp_path / "spool"),
                          idle_writes=enabled)
    service = LedgerService(config)
    assert (service.writer._paced is service.store) is enabled


@pytest.mark.asyncio
async def test_postgres_writes_a_batch_behind_in_one_go_and_idle_in_slices(
        stores: StoreFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Either way the entries land once (a repeat is ignored); `write_behind` builds its rows in
    one go, `write_idle` (and `write`) in slices."""
    if stores.backend != "postgres":
        pytest.skip("the PostgreSQL store's own pacing")
    from llmroute.ledger import postgres

    seen: list[bool] = []
    real = postgres.to_rows

    async def recorded(entries: Sequence[LedgerEntry], dialect: Dialect, *, sliced: bool = True
                       ) -> list[tuple[object, ...]]:
        seen.append(sliced)
        return await real(entries, dialect, sliced=sliced)

    monkeypatch.setattr(postgres, "to_rows", recorded)
    store = stores.new()
    assert isinstance(store, PostgresStore)
    await store.migrate()
    await store.write_behind([make_entry(n) for n in range(300)])
    await store.write_idle([make_entry(n) for n in range(300, 310)])
    await store.write_behind([make_entry(5)])  # a repeat
    assert seen == [False, True, False]
    assert await store.count() == 310

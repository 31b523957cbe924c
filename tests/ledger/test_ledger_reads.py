"""Where the gateway's heavy ledger reads run (`ledger.reads`): in a child process at the lowest CPU
priority they answer exactly what they answer inline, on SQLite and PostgreSQL, see what the parent
writes, survive the child dying, a caller giving up and stray output, keep the URL off the child's
command line, and stop with the gateway."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from conftest import StoreFactory
from test_ledger_aggregate import BASE, random_ledger

from llmroute.config import load
from llmroute.control.alert_tallies import arm_window, feedback_slice, slice_tallies, spend_slice
from llmroute.ledger import SQLiteStore, Store, StoreError
from llmroute.ledger.explore import latest
from llmroute.ledger.explore_sql import Filters
from llmroute.ledger.reads import NICENESS, InlineReads, ProcessReads, open_reads
from llmroute.ledger.series import dashboard_series
from llmroute.ledger.service import LedgerService
from llmroute.ledger.views import key_numbers, numbers_with
from llmroute.runtime import build_runtime
from llmroute.settings import LedgerConfig


async def whoami(store: Store) -> tuple[int, int, int]:
    """The reader's pid and niceness, and how many entries its store sees."""
    return os.getpid(), os.nice(0), await store.count()


async def die(store: Store) -> None:
    os._exit(3)  # as an out-of-memory kill would end it


async def refuse(store: Store, message: str) -> None:
    raise StoreError(message)


async def slow(store: Store, value: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return value


async def chatty(store: Store) -> str:
    print("a stray line on stdout")
    sys.stdout.flush()
    return "still fine"


@dataclasses.dataclass
class Reader:
    """A migrated SQLite ledger and a reader process on it."""

    store: SQLiteStore
    url: str
    reads: ProcessReads


@pytest_asyncio.fixture
async def reader(tmp_path: Path) -> AsyncIterator[Reader]:
    store = SQLiteStore(tmp_path / "l.db")
    await store.migrate()
    url = f"sqlite:///{tmp_path / 'l.db'}"
    made = Reader(store, url, ProcessReads(url))
    try:
        yield made
    finally:
        await made.reads.aclose()
        await store.close()


@pytest.mark.asyncio
async def test_process_reads_answer_exactly_what_inline_reads_do(stores: StoreFactory,
                                                                 store: Store) -> None:
    entries = random_ledger(31, 900)
    await store.write(entries)
    reads = ProcessReads(stores.url)
    try:
        for since, until in ((None, None), (BASE + timedelta(hours=5, minutes=17), BASE + timedelta(days=2)),
                             (BASE + timedelta(minutes=50), None)):
            here = await InlineReads(store).call(numbers_with, "model", since, until, ("arm",))
            there = await reads.call(numbers_with, "model", since, until, ("arm",))
            assert there == here
            assert there[0].aggregate.total.tally.requests == sum(
                1 for e in entries if (since is None or e.ts >= since) and (until is None or e.ts < until))
        # a later write is seen by the next read (a new read transaction each time)
        _, _, before = await reads.call(whoami)
        await store.write([dataclasses.replace(e, request_id=f"late-{i}")
                           for i, e in enumerate(entries[:7])])
        _, _, after = await reads.call(whoami)
        assert (before, after) == (900, 907)
    finally:
        await reads.aclose()


@pytest.mark.asyncio
async def test_the_reader_imports_the_ledger_not_the_gateway(reader: Reader) -> None:
    """The reads the gateway sends leave the gateway's heavy libraries unloaded in the reader
    (their compiled modules are not mapped), so it costs tens of MiB, not a second gateway."""
    await reader.store.write(random_ledger(5, 50))
    reads = reader.reads
    await reads.call(numbers_with, "model", None, None, ("arm",))
    await reads.call(slice_tallies, BASE, BASE + timedelta(days=3), "model")
    await reads.call(spend_slice, BASE, BASE + timedelta(days=3), "key")
    await reads.call(feedback_slice, BASE, BASE + timedelta(days=3))
    await reads.call(arm_window, BASE, BASE + timedelta(days=3))
    assert reads.pid is not None
    maps = Path(f"/proc/{reads.pid}/maps").read_text()
    for heavy in ("numpy", "pydantic_core", "aiohttp", "sklearn", "uvloop", "httptools"):
        assert heavy not in maps, heavy


@pytest.mark.asyncio
async def test_a_sqlite_reader_goes_without_tls_until_a_read_needs_it(reader: Reader) -> None:
    """Issue 6's idle RSS: the reader of a SQLite ledger never speaks TLS, so OpenSSL (which
    asyncio would import, ~4 MiB) is not loaded by the reads the gateway sends, its dashboard's
    included; a read whose module does import ssl (this test module, through the gateway's
    config) still runs, after TLS is let back in."""
    await reader.store.write(random_ledger(5, 50))
    reads = reader.reads
    since, until = BASE, BASE + timedelta(days=3)
    await reads.call(numbers_with, "model", None, None, ("arm",))
    await reads.call(key_numbers, "k", since, until)
    series = await reads.call(dashboard_series, since, until, None, {})
    page = await reads.call(latest, since, until, Filters(), 10)
    await reads.call(slice_tallies, since, until, "model")
    await reads.call(arm_window, since, until)
    assert series is not None and page is not None
    assert reads.pid is not None
    maps = Path(f"/proc/{reads.pid}/maps").read_text()
    assert "_ssl" not in maps and "libssl" not in maps
    pid, _, count = await reads.call(whoami)
    assert (pid, count) == (reads.pid, 50)
    assert "_ssl" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.asyncio
async def test_the_reader_is_another_process_at_the_lowest_priority(reader: Reader) -> None:
    reads = reader.reads
    reads.warm()
    pid, niceness, count = await reads.call(whoami)
    assert pid == reads.pid and pid != os.getpid() and count == 0
    assert niceness == max(NICENESS, os.nice(0))
    assert reader.url not in Path(f"/proc/{pid}/cmdline").read_text()  # `ps` never shows the URL
    # reads queue for the one child: all answered, in order, by the same process
    answers = await asyncio.gather(*(reads.call(slow, str(i), 0.01) for i in range(6)))
    assert answers == [str(i) for i in range(6)] and reads.pid == pid
    assert await reads.call(chatty) == "still fine"
    await reads.aclose()
    assert reads.pid is None
    with pytest.raises(ProcessLookupError):  # stopped with its owner
        os.kill(pid, 0)


@pytest.mark.asyncio
async def test_a_caller_that_gives_up_does_not_get_the_next_answer_wrong(reader: Reader) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.reads.call(slow, "first", 0.4), 0.05)
    assert await reader.reads.call(slow, "second", 0.0) == "second"


@pytest.mark.asyncio
async def test_a_dead_reader_fails_its_read_and_the_next_read_starts_another(reader: Reader) -> None:
    reads = reader.reads
    first, _, _ = await reads.call(whoami)
    with pytest.raises(StoreError, match="reader process died"):
        await reads.call(die)
    second, _, _ = await reads.call(whoami)
    assert second not in (first, os.getpid())
    # a child killed while idle (an out-of-memory kill between reads): the next read is
    # answered by a new one
    os.kill(second, signal.SIGKILL)
    await asyncio.sleep(0.2)
    third, _, _ = await reads.call(whoami)
    assert third not in (second, os.getpid())
    # the store's errors come back as themselves
    with pytest.raises(StoreError, match=r"^no ledger today$"):
        await reads.call(refuse, "no ledger today")
    assert (await reads.call(whoami))[0] == third


@pytest.mark.asyncio
async def test_where_reads_run(tmp_path: Path) -> None:
    memory = SQLiteStore(":memory:")
    assert isinstance(open_reads("sqlite:///:memory:", "process", memory), InlineReads)
    assert isinstance(open_reads(f"sqlite:///{tmp_path / 'a.db'}", "inline", memory), InlineReads)
    assert isinstance(open_reads(f"sqlite:///{tmp_path / 'a.db'}", "process", memory), ProcessReads)
    config = LedgerConfig(url=f"sqlite:///{tmp_path / 'b.db'}", spool_path=str(tmp_path / "s"))
    assert config.reads == "process"
    service = LedgerService(config)
    assert isinstance(service.reads, ProcessReads)
    await service.start()
    assert service.reads.pid is None  # started by the server's runtime, or at the first read
    service.reads.warm()
    try:
        for _ in range(100):
            if service.reads.pid is not None:
                break
            await asyncio.sleep(0.05)
        assert service.reads.pid is not None
    finally:
        await service.aclose()
    assert service.reads.pid is None
    # a store handed in is read where it is (its URL is not known to be the config's)
    assert isinstance(LedgerService(config, store=memory).reads, InlineReads)
    with pytest.raises(ValueError):
        LedgerConfig(reads="thread")


@pytest.mark.asyncio
@pytest.mark.parametrize("background", [True, False])
async def test_a_server_starts_its_reader_and_an_in_process_client_none(tmp_path: Path,
                                                                        background: bool) -> None:
    """The server's runtime (background work: alerts, dashboard) starts the reader with itself;
    the in-process client's (no background work) never starts one."""
    config = tmp_path / "llmroute.yaml"
    config.write_text(f"ledger:\n  url: 'sqlite:///{tmp_path / 'ledger.db'}'\n"
                      f"  spool_path: '{tmp_path / 'spool.jsonl'}'\nalerts:\n  enabled: false\n")
    runtime = build_runtime(load(config, environ={}), metrics=False, background=background)
    await runtime.start()
    try:
        assert runtime.ledger is not None and isinstance(runtime.ledger.reads, ProcessReads)
        for _ in range(100 if background else 4):
            if runtime.ledger.reads.pid is not None:
                break
            await asyncio.sleep(0.05)
        assert (runtime.ledger.reads.pid is not None) is background
        pid = runtime.ledger.reads.pid
    finally:
        await runtime.aclose()
    if pid is not None:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

"""The ledger's write-ahead log (`ledger/wal.py`) and the writer over it: lines, segments and their
deletion, a torn last line, fsync modes with group commit, and a real process killed with entries
queued: the next start finds them, and the store holds each exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ledger_factories import FlakyStore, full_entry, make_entry, wait_until

from llmroute.ledger import LedgerEntry, LedgerWriter, SQLiteStore
from llmroute.ledger.service import LedgerService
from llmroute.ledger.spool import Spool
from llmroute.ledger.wal import Wal, WalPolicy, discard, encode, leftover, segments_of
from llmroute.settings import LedgerConfig

HERE = Path(__file__).resolve().parent
NEVER = WalPolicy("never")


def lines_of(path: Path) -> list[LedgerEntry]:
    return [LedgerEntry.from_json(line) for line in path.read_text().rstrip("\0").splitlines()]


# -- lines ---------------------------------------------------------------------------------------
def test_a_line_reads_back_as_the_same_entry() -> None:
    for entry in (make_entry(1), full_entry(2), make_entry(3, cost_usd=None, prompt_text="é\n\"x\"")):
        line = encode(entry)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert LedgerEntry.from_json(line.decode()) == entry


def test_an_entry_orjson_cannot_encode_falls_back_to_to_json() -> None:
    entry = make_entry(1, input_tokens=2**70)  # beyond 64 bits: the store refuses it, the log keeps it
    assert encode(entry) == (entry.to_json() + "\n").encode()


# -- segments ------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_segments_rotate_and_go_once_their_entries_are_done(tmp_path: Path) -> None:
    slot = tmp_path / "spool.jsonl"
    size = len(encode(make_entry(0)))
    wal = Wal.open(slot, WalPolicy("never", segment_bytes=3 * size))  # three entries a segment
    for n in range(8):
        wal.append(make_entry(n))
    assert [p.name for p in segments_of(slot)] == [f"spool.jsonl.wal.{i:08d}" for i in (1, 2, 3)]
    assert [e.request_id for e in lines_of(segments_of(slot)[0])] == [f"req-{n:06d}" for n in range(3)]
    wal.done(2)
    assert len(segments_of(slot)) == 3  # the first still has an entry not done
    wal.done(2)
    assert len(segments_of(slot)) == 2
    wal.done(4)  # all done: the current segment stays open, the sealed one goes
    assert [p.name for p in segments_of(slot)] == ["spool.jsonl.wal.00000003"]
    wal.append(make_entry(8))
    await wal.aclose()  # an entry not done: the segment stays for the next start, whole (the
    # store ignores the ids it already holds, so its done entries replay harmlessly)
    assert [e.request_id for e in leftover(slot).entries] == ["req-000006", "req-000007", "req-000008"]


@pytest.mark.asyncio
async def test_aclose_deletes_the_segments_whose_entries_are_done(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path / "spool.jsonl", NEVER)
    for n in range(3):
        wal.append(make_entry(n))
    wal.done(3)
    await wal.aclose()
    assert segments_of(tmp_path / "spool.jsonl") == []


def test_leftover_reads_segments_in_order_and_sets_torn_lines_aside(tmp_path: Path) -> None:
    slot = tmp_path / "spool.jsonl"
    tenth, second = slot.with_name("spool.jsonl.wal.00000010"), slot.with_name("spool.jsonl.wal.00000002")
    unused = b"\0" * 64  # a segment's space not written yet
    second.write_bytes(encode(make_entry(1)) + b"{not json\n" + encode(make_entry(2)) + unused)
    whole = encode(make_entry(3))
    tenth.write_bytes(whole + whole[:40] + unused)  # the process died mid-copy (or the machine)
    slot.with_name("spool.jsonl.1.wal.00000001").write_bytes(encode(make_entry(9)))  # another slot
    found = leftover(slot)
    assert [e.request_id for e in found.entries] == ["req-000001", "req-000002", "req-000003"]
    assert found.corrupt == (b"{not json", whole[:40])
    assert found.segments == (second, tenth)
    discard(found.segments)
    assert segments_of(slot) == []
    assert Wal.open(slot, NEVER).segments == [slot.with_name("spool.jsonl.wal.00000001")]


# -- fsync ---------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_always_group_commits_and_each_answer_waits_for_its_fsync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wal = Wal.open(tmp_path / "spool.jsonl", WalPolicy("always"))
    covered: list[int] = []
    real_sync = wal.sync

    def slow_sync() -> int:  # a slow disk: 5 ms an fsync
        time.sleep(0.005)
        covered.append(real_sync())
        return covered[-1]

    monkeypatch.setattr(wal, "sync", slow_sync)
    wal.start()

    async def request(n: int) -> None:
        await asyncio.sleep(n * 0.0005)
        wal.append(make_entry(n))
        mine = wal.appended
        await wal.durable()
        assert covered and max(covered) >= mine  # an fsync covering this entry has finished

    await asyncio.gather(*(request(n) for n in range(60)))
    assert 2 <= len(covered) < 30, covered  # far fewer fsyncs than answers
    await wal.aclose()


@pytest.mark.asyncio
async def test_interval_fsyncs_in_the_background(tmp_path: Path) -> None:
    wal = Wal.open(tmp_path / "spool.jsonl", WalPolicy("interval", interval_s=0.05))
    wal.start()
    wal.append(make_entry(1))
    assert wal.synced < wal.appended
    await wait_until(lambda: wal.synced == wal.appended, timeout_s=2, what="the interval's fsync")
    wal.append(make_entry(2))
    await wal.durable()  # asked for: an fsync now, not at the next interval
    assert wal.synced == wal.appended
    await wal.aclose()


# -- the writer over it -------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_the_writer_deletes_segments_as_entries_reach_the_store(
        flaky: FlakyStore, tmp_path: Path) -> None:
    policy = WalPolicy("never", segment_bytes=4 * len(encode(make_entry(0))))
    writer = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", batch_size=8,
                          flush_interval_s=0.01, wal=policy)
    writer.record(make_entry(0))  # before start: queued, not logged, still waited for
    await writer.start()
    for n in range(1, 40):
        writer.record(make_entry(n))
    await wait_until(lambda: writer.stats().written == 40, what="the entries written")
    assert len(segments_of(writer.spool_file)) == 1  # only the current one
    flaky.down = True  # the store goes down: spooled entries are done too
    for n in range(40, 50):
        writer.record(make_entry(n))
    await wait_until(lambda: writer.stats().spooled == 10, what="the entries spooled")
    assert len(segments_of(writer.spool_file)) == 1
    stats = await writer.aclose()
    assert segments_of(writer.spool_file) == [] and stats.dropped == 0 and stats.recovered == 0


CHILD = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, {here!r})
    from ledger_factories import make_entry
    from llmroute.ledger import LedgerWriter, SQLiteStore
    from llmroute.ledger.wal import WalPolicy

    async def main() -> None:
        store = SQLiteStore({db!r})
        await store.migrate()
        writer = LedgerWriter(store, spool_path={spool!r}, batch_size=5, flush_interval_s=3600,
                              wal=WalPolicy("never"))
        await writer.start()
        for n in range(23):  # four full batches are written at once; three entries stay queued
            writer.record(make_entry(n))
        while writer.stats().written < 20:
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


@pytest.mark.asyncio
async def test_a_killed_process_loses_nothing_and_the_restart_stores_each_entry_once(
        tmp_path: Path) -> None:
    db, spool = tmp_path / "ledger.db", tmp_path / "spool.jsonl"
    code = CHILD.format(here=str(HERE), db=str(db), spool=str(spool))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    store = SQLiteStore(str(db))
    assert await store.count() == 20  # three answered entries were only in the dead queue
    assert len(leftover(spool).entries) == 23  # one segment: the stored ones are replayed too

    writer = LedgerWriter(store, spool_path=spool, batch_size=8, flush_interval_s=0.01,
                          wal=NEVER)
    await writer.start()  # claims the dead process's slot (its flock died with it)
    assert writer.spool_file == spool and writer.stats().recovered == 23
    await wait_until(lambda: writer.stats().replayed == 23, what="the recovered entries replayed")
    await writer.aclose()
    ids = [e.request_id for e in await store.query()]
    assert sorted(ids) == [f"req-{n:06d}" for n in range(23)]  # each exactly once
    assert segments_of(spool) == [] and not spool.exists()
    await store.close()


@pytest.mark.asyncio
async def test_each_writer_logs_in_its_own_slot(flaky: FlakyStore, tmp_path: Path) -> None:
    first = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", wal=NEVER)
    second = LedgerWriter(flaky, spool_path=tmp_path / "spool.jsonl", wal=NEVER)
    await first.start()
    await second.start()
    assert first.wal is not None and second.wal is not None
    assert first.wal.segments[0].name == "spool.jsonl.wal.00000001"
    assert second.wal.segments[0].name == "spool.jsonl.1.wal.00000001"
    await first.aclose()
    await second.aclose()


@pytest.mark.asyncio
async def test_an_entry_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    slot = tmp_path / "spool.jsonl"
    wal = Wal.open(slot, WalPolicy("never", segment_bytes=4096))
    big = make_entry(1, prompt_text="x" * 10_000)
    for entry in (make_entry(0), big, make_entry(2)):
        wal.append(entry)
    assert [e.request_id for e in leftover(slot).entries] == ["req-000000", "req-000001", "req-000002"]
    assert [p.stat().st_size for p in segments_of(slot)] == [4096, len(encode(big)), 4096]
    await wal.aclose()


@pytest.mark.asyncio
async def test_a_slot_no_live_process_holds_is_adopted(flaky: FlakyStore, tmp_path: Path) -> None:
    base = tmp_path / "spool.jsonl"
    idle = tmp_path / "spool.jsonl.2"  # a third worker's, and today there are two
    idle.with_name("spool.jsonl.2.lock").touch()
    idle.with_name("spool.jsonl.2.wal.00000001").write_bytes(
        encode(make_entry(1)) + encode(make_entry(2)) + b"\0" * 100)
    idle.write_text(make_entry(3).to_json() + "\n")
    idle.with_name("spool.jsonl.2.replay").write_text(make_entry(4).to_json() + "\n")
    live = Spool.claim(base)  # slot 0: a live worker's, left alone
    live.append([make_entry(5)])
    writer = LedgerWriter(flaky, spool_path=base, flush_interval_s=0.01, wal=NEVER)
    await writer.start()
    assert writer.spool_file == tmp_path / "spool.jsonl.1"
    assert writer.stats().recovered == 4
    await wait_until(lambda: writer.stats().replayed == 4, what="the adopted entries replayed")
    await writer.aclose()
    live.release()
    assert sorted(e.request_id for e in await flaky.query()) == [f"req-{n:06d}" for n in range(1, 5)]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("spool.jsonl.2")) == [
        "spool.jsonl.2.lock"]
    assert len(base.read_text().splitlines()) == 1  # the live worker's spool is its own business


@pytest.mark.asyncio
@pytest.mark.parametrize(("url", "wal", "logged", "waits"), [
    ("file", {}, True, False),  # the default: interval
    ("file", {"fsync": "always", "fsync_interval_ms": 5}, True, True),
    ("file", {"enabled": False}, False, False),
    ("memory", {"fsync": "always"}, False, False),  # dies with the process anyway
])
async def test_the_service_builds_the_log_from_the_config(
        tmp_path: Path, url: str, wal: dict[str, object], logged: bool, waits: bool) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}" if url == "file" else "sqlite:///:memory:"
    config = LedgerConfig.model_validate({"url": db, "spool_path": str(tmp_path / "spool.jsonl"),
                                          "reads": "inline", "wal": wal})
    ledger = LedgerService(config)
    await ledger.start()
    try:
        assert (ledger.writer.wal is not None) is logged
        assert (ledger.durable is not None) is waits
        if ledger.writer.wal is not None:
            assert ledger.writer.wal.policy.interval_s == config.wal.fsync_interval_ms / 1000
            ledger.record(make_entry(1))
            assert len(leftover(ledger.writer.spool_file).entries) == 1
    finally:
        await ledger.aclose()
    assert segments_of(tmp_path / "spool.jsonl") == []

"""`LedgerWriter`: takes ledger entries off the request path and writes them to the store in batches.

`record(entry)` never awaits: it appends to a bounded in-memory queue, or — when the queue is full —
appends the entry straight to the spool (one small write, fsync'd by the background task). The
background task takes batches of up to `batch_size` entries (or what arrived within
`flush_interval_s`) and writes each in one store transaction. When a write fails, the batch goes to
the spool (fsync'd) and the store is probed with `ping()` under exponential backoff; once it answers,
the spool is replayed in order. Because the store ignores request_ids it already holds, a batch
that is both written and spooled (its acknowledgement lost) still lands once. `aclose()` drains the
queue within a timeout, spooling what the store cannot take in time. An entry that neither the
store nor the spool could take is counted in `dropped` and logged as an error, never lost silently.
An entry the store refuses as invalid (`StoreRejectedError`) is set aside in `<spool>.rejected` and
counted in `rejected`, so it cannot hold up the others.

With a `WalPolicy`, every queued entry is also appended to a write-ahead log (`wal.py`) in the
spool's slot before `record` returns, so a crash of the process (SIGKILL, OOM) loses no entry the
queue held: the log's segments are deleted as their entries reach the store or the spool, and
`start` first moves whatever a previous process left in the slot's segments (and in slots no live
process holds, `recovery.py`) to the spool (fsync'd), which the usual replay then writes.
`durable()` waits for the log's fsync (`fsync: always`).

Call `record` from the event loop's thread. The writer does not own the store: close it yourself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Literal

from .entry import LedgerEntry
from .recovery import recover
from .spool import Spool
from .store import PacedWrites, Store, StoreRejectedError
from .wal import Wal, WalPolicy, encode

log = logging.getLogger("llmroute.ledger")
State = Literal["new", "running", "closing", "closed"]
#: Extra seconds `aclose` waits for the task beyond its timeout before cancelling it.
CLOSE_GRACE_S = 5.0
#: Seconds the background task pauses after an unexpected error before going on.
ERROR_PAUSE_S = 0.1


@dataclass(frozen=True)
class WriterStats:
    """Counters since the writer was built (entries, except `write_errors`: failed store calls)."""

    recorded: int = 0
    written: int = 0
    spooled: int = 0
    spooled_overflow: int = 0
    replayed: int = 0
    write_errors: int = 0
    queue_depth: int = 0
    corrupt: int = 0
    rejected: int = 0
    dropped: int = 0
    store_up: bool = True
    recovered: int = 0  # entries dead processes left (their logs, idle slots), found at start


@dataclass
class _Counters:
    recorded: int = 0
    written: int = 0
    spooled: int = 0
    spooled_overflow: int = 0
    replayed: int = 0
    write_errors: int = 0
    corrupt: int = 0
    rejected: int = 0
    dropped: int = 0
    recovered: int = 0


class LedgerWriter:
    """Batches ledger entries into a `Store`, with a local spool for when the store is down."""

    def __init__(self, store: Store, *, spool_path: Path, max_queue: int = 10_000, batch_size: int = 256,
                 flush_interval_s: float = 0.5, write_timeout_s: float = 10.0,
                 backoff_base_s: float = 0.5, backoff_max_s: float = 30.0,
                 wal: WalPolicy | None = None, clock: Callable[[], float] = time.monotonic,
                 write: Callable[[Sequence[LedgerEntry]], Awaitable[None]] | None = None,
                 write_lines: Callable[[Sequence[bytes]], Awaitable[None]] | None = None,
                 paced: PacedWrites | None = None) -> None:
        if max_queue < 1 or batch_size < 1:
            raise ValueError("max_queue and batch_size must be at least 1")
        if min(flush_interval_s, backoff_base_s) < 0 or write_timeout_s <= 0 or backoff_max_s <= 0:
            raise ValueError("intervals must not be negative; timeouts and backoff_max_s must be positive")
        self._store = store
        #: How a batch reaches the store: `store.write` here, or a child process's
        #: (`write_process.ProcessWrites.write`).
        self._store_write = write or store.write
        #: Or paced by the backlog (`PacedWrites`, see `idle.py`): at the lowest priority while
        #: fewer than a batch of entries wait behind this one, in one go while more do.
        self._paced = paced
        #: Or as the entries' log lines (`wal.encode`: a child process decodes them, see
        #: `write_process`), encoded once in `record` for the log and the batch alike.
        self._write_lines = write_lines
        self._lines: deque[bytes] | None = deque() if write_lines is not None else None
        self._spool_path = Path(spool_path)
        self._max_queue, self._batch_size, self._flush_interval_s = max_queue, batch_size, flush_interval_s
        self._write_timeout_s = write_timeout_s
        self._backoff_base_s, self._backoff_max_s = backoff_base_s, backoff_max_s
        self._clock = clock
        self._queue: deque[LedgerEntry] = deque()
        self._inflight: Sequence[LedgerEntry] = ()
        self._counts = _Counters()
        self._wake = asyncio.Event()  # the queue is not empty, or closing
        self._full = asyncio.Event()  # a whole batch is queued, or closing
        self._spool: Spool | None = None
        self._wal_policy = wal
        self._wal: Wal | None = None
        self._task: asyncio.Task[None] | None = None
        self._state: State = "new"
        self._store_up = True
        self._spool_pending = True  # a previous run may have left a spool
        self._unsynced = False
        self._backoff_s = backoff_base_s
        self._next_probe = 0.0
        self._deadline: float | None = None

    # -- the request path --------------------------------------------------------------------
    def record(self, entry: LedgerEntry) -> None:
        """Hand an entry over; returns at once. Never blocks on the store."""
        self._counts.recorded += 1
        if self._state == "closed" or len(self._queue) >= self._max_queue:
            self._spool_overflow(entry)
            return
        self._queue.append(entry)
        if self._lines is not None:  # one line for the log and the batch; queue and lines in step
            line = encode(entry)
            self._lines.append(line)
            if self._wal is not None:
                self._wal.append_line(line)
        elif self._wal is not None:
            self._wal.append_line(encode(entry))  # `Wal.append`, one call fewer
        self._wake.set()
        if len(self._queue) >= self._batch_size:
            self._full.set()

    def holds(self, request_id: str) -> bool:
        """Whether the entry of `request_id` is recorded but not stored yet (queued or being written).
        A scan: meant for the rare feedback call, not for the request path."""
        return any(entry.request_id == request_id for entry in chain(self._inflight, self._queue))

    def stats(self) -> WriterStats:
        """A snapshot of the counters."""
        counts = {f.name: getattr(self._counts, f.name) for f in fields(_Counters)}
        return WriterStats(**counts, queue_depth=len(self._queue), store_up=self._store_up)

    async def durable(self) -> None:
        """Return once the log's fsync covers every entry recorded so far (at once without a
        log, or before `start`)."""
        if self._wal is not None:
            await self._wal.durable()

    @property
    def wal(self) -> Wal | None:
        """The write-ahead log, once started with one."""
        return self._wal

    @property
    def spool_file(self) -> Path:
        """The spool file this writer uses (its claimed slot once started)."""
        return self._spool.path if self._spool else self._spool_path

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Claim a spool slot and start the background task, which first replays any spool left
        by an earlier run. Returns without waiting for that replay."""
        if self._state != "new":
            raise RuntimeError(f"the writer is {self._state}; start it once")
        if self._spool is None:
            self._spool = await asyncio.to_thread(Spool.claim, self._spool_path)
        found = await asyncio.to_thread(recover, self._spool, self._spool_path, self._wal_policy)
        self._counts.recovered += found.entries
        self._counts.corrupt += found.corrupt
        if found.wal is not None:
            found.wal.count_unlogged(len(self._queue))  # no await since: nothing queued meanwhile
            self._wal = found.wal
            found.wal.start()
        self._state = "running"
        self._task = asyncio.create_task(self._run(), name="llmroute-ledger-writer")

    async def aclose(self, timeout_s: float = 10.0) -> WriterStats:
        """Stop: write what is queued (retrying a down store once, and replaying the spool if it
        answers) within `timeout_s`; what the store cannot take in time goes to the spool."""
        if self._state == "new":
            await self.start()
        if self._state == "running":
            self._state = "closing"
            self._deadline = self._clock() + timeout_s
            self._next_probe = self._clock()  # one more chance for a store that is down
            self._wake.set()
            self._full.set()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait({task}, timeout=timeout_s + CLOSE_GRACE_S)
            if not done:
                log.error("ledger writer did not stop in %.1fs; cancelling it", timeout_s + CLOSE_GRACE_S)
                task.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._state = "closed"
        self._spool_taken(self._take_queue())  # anything recorded while the task was finishing
        if self._wal is not None:
            await self._wal.aclose()
        if self._spool is not None:
            self._spool.release()
        return self.stats()

    # -- the background task -----------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while True:
                try:
                    if not await self._step():
                        break
                except Exception:  # a bug, not a store failure: keep the entries, carry on
                    log.exception("ledger writer: unexpected error; spooling the batch in hand")
                    self._spool_taken(self._take_inflight())
                    await asyncio.sleep(ERROR_PAUSE_S)
            await self._finish()
        except asyncio.CancelledError:
            self._spool_taken([*self._take_inflight(), *self._take_queue()])
            raise
        except Exception:
            log.exception("ledger writer: unexpected error while finishing")

    async def _step(self) -> bool:
        """One round: upkeep, then one batch. False once closing with nothing left to write."""
        await self._maintain()
        if self._state == "closing" and not self._queue:
            return False
        batch = await self._collect()
        if batch:
            await self._flush(batch, self._take_lines(len(batch)))
        return True

    async def _finish(self) -> None:
        """Closing: one last chance for a store that failed meanwhile, then fsync the spool."""
        if not self._store_up:
            self._next_probe = self._clock()
        await self._maintain()
        await self._sync_spool()

    async def _collect(self) -> list[LedgerEntry]:
        """The next batch: wait for a first entry, then up to `flush_interval_s` for a full batch."""
        if not self._queue and self._state != "closing":
            self._wake.clear()
            await _wait(self._wake, self._idle_timeout())
        if not self._queue:
            return []
        if len(self._queue) < self._batch_size and self._state != "closing":
            self._full.clear()
            await _wait(self._full, self._flush_interval_s)
        return [self._queue.popleft() for _ in range(min(self._take(), len(self._queue)))]

    def _take(self) -> int:
        """How many entries the next write takes: a batch, or while behind (more than a batch
        queued beyond this one) up to `catch_up` batches where the paced store asks for it (not
        when the batches go to a `writes: process` child as lines)."""
        if self._paced is None or self._write_lines is not None or len(self._queue) < 2 * self._batch_size:
            return self._batch_size
        return self._batch_size * max(1, self._paced.catch_up)

    def _idle_timeout(self) -> float | None:
        """How long to wait for entries: until the next probe when the store is down."""
        return None if self._store_up else max(0.0, self._next_probe - self._clock())

    def _take_lines(self, count: int) -> list[bytes] | None:
        """The lines of the `count` entries `_collect` just took (None: not kept)."""
        if self._lines is None:
            return None
        return [self._lines.popleft() for _ in range(count)]

    async def _flush(self, batch: list[LedgerEntry], lines: Sequence[bytes] | None = None) -> None:
        self._inflight = batch
        rejected = await self._write(batch, lines) if self._store_up else None
        if rejected is None:
            await self._spool_batch(batch)
        else:
            self._counts.written += len(batch) - rejected
        self._inflight = ()
        if self._wal is not None:
            self._wal.done(len(batch))

    async def _maintain(self) -> None:
        """Between batches: fsync overflow appends; probe a down store when due; replay the spool."""
        await self._sync_spool()
        if not self._store_up and self._clock() >= self._next_probe:
            try:
                await self._store_call(self._store.ping)
            except Exception as exc:
                self._mark_down(exc)
                return
            log.info("ledger store answers again; replaying the spool",
                     extra={"event": "ledger_outage", "up": True})
            self._store_up, self._backoff_s = True, self._backoff_base_s
        if self._store_up and self._spool_pending:
            await self._replay()

    # -- the store ---------------------------------------------------------------------------
    async def _store_call(self, call: Callable[[], Awaitable[None]]) -> None:
        """One store call under the write timeout (and the close deadline)."""
        timeout = self._write_timeout_s
        if self._deadline is not None:
            timeout = min(timeout, self._deadline - self._clock())
        if timeout <= 0:
            raise TimeoutError("the close deadline has passed")
        async with asyncio.timeout(timeout):
            await call()

    def _send(self, entries: Sequence[LedgerEntry], lines: Sequence[bytes] | None) -> Awaitable[None]:
        """One batch to the store: as entries, or as their lines (encoded now when not kept)."""
        if self._write_lines is None:
            if self._paced is None:
                return self._store_write(entries)
            if len(self._queue) < self._batch_size and len(entries) <= self._batch_size:
                return self._paced.write_idle(entries)
            return self._paced.write_behind(entries)
        return self._write_lines(lines if lines is not None else [encode(entry) for entry in entries])

    async def _write(self, entries: Sequence[LedgerEntry], lines: Sequence[bytes] | None = None
                     ) -> int | None:
        """Write entries: how many the store refused as invalid (they are set aside, so one bad
        entry cannot hold up the rest forever), or None when the store failed (marked down)."""
        try:
            await self._store_call(partial(self._send, entries, lines))
            return 0
        except StoreRejectedError as exc:
            if len(entries) == 1:
                await self._reject(entries, exc)
                return 1
        except Exception as exc:
            self._counts.write_errors += 1
            self._mark_down(exc)
            return None
        rejected = 0
        for entry in entries:  # find the refused entries one by one; the store ignores repeats
            one = await self._write([entry])
            if one is None:
                return None
            rejected += one
        return rejected

    def _mark_down(self, exc: BaseException) -> None:
        if self._store_up:
            log.warning("ledger store failed (%s: %s); spooling to %s until it answers",
                        type(exc).__name__, exc, self.spool_file,
                        extra={"event": "ledger_outage", "up": False})
        self._store_up = False
        self._next_probe = self._clock() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self._backoff_max_s)

    async def _replay(self) -> None:
        """Write the spool to the store in order, batch by batch, dropping what was written."""
        spool = self._claimed()
        self._spool_pending = False
        for _ in range(2):  # an unfinished replay file, then the spool as it is now
            if not await asyncio.to_thread(spool.rotate):
                return
            offset = 0
            while True:
                chunk = await asyncio.to_thread(spool.read, offset, self._batch_size)
                self._counts.corrupt += chunk.corrupt
                if chunk.entries:
                    rejected = await self._write(chunk.entries)
                    if rejected is None:
                        await asyncio.to_thread(spool.keep_from, offset)
                        self._spool_pending = True
                        return
                    self._counts.replayed += len(chunk.entries) - rejected
                if chunk.next_offset == offset:
                    break
                offset = chunk.next_offset
            await asyncio.to_thread(spool.keep_from, offset)

    # -- the spool ---------------------------------------------------------------------------
    def _claimed(self) -> Spool:
        if self._spool is None:
            self._spool = Spool.claim(self._spool_path)
        return self._spool

    async def _spool_batch(self, batch: Sequence[LedgerEntry]) -> None:
        try:
            await asyncio.to_thread(self._claimed().append, batch)
        except OSError as exc:
            self._drop(batch, exc)
            return
        self._counts.spooled += len(batch)
        self._spool_pending = True

    def _spool_overflow(self, entry: LedgerEntry) -> None:
        """The queue is full (or the writer closed): append to the spool now, on this thread."""
        closed = self._state == "closed"
        try:
            self._claimed().append([entry], sync=closed)
        except OSError as exc:
            self._drop([entry], exc)
            return
        self._counts.spooled_overflow += 1
        self._unsynced = not closed
        self._spool_pending = True

    def _spool_taken(self, entries: Sequence[LedgerEntry]) -> None:
        """Spool queued entries taken out of the writer for good, then tell the log."""
        self._spool_sync(entries)
        if self._wal is not None:
            self._wal.done(len(entries))

    def _take_inflight(self) -> list[LedgerEntry]:
        entries, self._inflight = list(self._inflight), ()
        return entries

    def _take_queue(self) -> list[LedgerEntry]:
        entries = list(self._queue)
        self._queue.clear()
        if self._lines is not None:
            self._lines.clear()
        return entries

    def _spool_sync(self, entries: Sequence[LedgerEntry]) -> None:
        """Spool on this thread (cancelled, closed or after a bug: there is no later)."""
        if not entries:
            return
        try:
            self._claimed().append(entries)
        except OSError as exc:
            self._drop(entries, exc)
            return
        self._counts.spooled += len(entries)

    async def _sync_spool(self) -> None:
        if self._unsynced:
            self._unsynced = False
            try:
                await asyncio.to_thread(self._claimed().sync)
            except OSError as exc:
                log.error("ledger spool fsync failed: %s", exc)

    async def _reject(self, entries: Sequence[LedgerEntry], exc: BaseException) -> None:
        log.error("ledger store refused %d entries (%s); kept in %s", len(entries), exc,
                  self._claimed().rejected_path)
        try:
            await asyncio.to_thread(self._claimed().reject, entries)
        except OSError as err:
            self._drop(entries, err)
            return
        self._counts.rejected += len(entries)

    def _drop(self, entries: Sequence[LedgerEntry], exc: BaseException) -> None:
        self._counts.dropped += len(entries)
        log.error("ledger: %d entries lost: neither the store nor the spool %s could take them (%s)",
                  len(entries), self.spool_file, exc)


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    """Wait for `event`, at most `timeout` seconds (None: no limit)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()

"""The ledger writer's write-ahead log: a queued entry is on disk before its answer completes.

`append(entry)` copies the entry's JSON line into this process's current segment (`<slot>.wal.<seq>`,
next to the writer's spool slot, so the spool's `flock` claims both), a file of `segment_bytes`
allocated up front (`posix_fallocate`: no SIGBUS on a full disk) and mapped shared: a memory copy,
no system call, and the GIL is never released on the request path (an `os.write` would release it,
handing the event loop's thread to the SQLite writer's for up to a switch interval). The page
cache keeps the line through a crash of the process; `fsync` says when it also survives a crash of
the machine: `never` (the kernel's own writeback), `interval` (a background fsync every
`interval_s`: a machine crash loses at most that much) or `always` (`durable()` waits until an
fsync covers everything appended so far; one fsync, off the event loop's thread, serves every
request waiting meanwhile: group commit).

The checkpoint is the set of segments on disk. The writer calls `done(n)` as the oldest `n` queued
entries leave its memory for good (written to the store, or to the fsync'd spool); a segment is
deleted once all its entries are done, and a new one is started every `segment_bytes`. So after a
crash, `leftover(slot)` finds at most the queue's worth of entries plus one segment, some of them
already stored: the store ignores request ids it holds, so replaying them lands each once. A
segment's unused tail is zeros (JSON lines never hold a NUL byte): they end its entries.

Lines are `orjson` dumps of the entry (dataclass, times as RFC 3339, money as exact decimal text),
which `LedgerEntry.from_json` reads back, about 15x cheaper than `to_json`; an entry orjson cannot
encode (an integer beyond 64 bits) falls back to `to_json`. Only the event loop's thread appends;
the fsync runs in a worker thread. Blocking helpers (`open`, `leftover`, `discard`) are meant for
`asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

import orjson

from .entry import LedgerEntry, money_text

log = logging.getLogger("llmroute.ledger")
FsyncMode = Literal["never", "interval", "always"]
SEGMENT_BYTES = 1 << 20
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class WalPolicy:
    """How the log reaches the disk: see the module's docstring."""

    fsync: FsyncMode = "interval"
    interval_s: float = 1.0
    segment_bytes: int = SEGMENT_BYTES

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.segment_bytes < 1:
            raise ValueError("interval_s and segment_bytes must be positive")


@dataclass(frozen=True)
class Leftover:
    """What a previous process left in a slot's segments: entries, lines that did not parse (a
    line torn by a machine crash), and the segment files."""

    entries: tuple[LedgerEntry, ...]
    corrupt: tuple[bytes, ...]
    segments: tuple[Path, ...]


@dataclass
class _Segment:
    path: Path
    entries: int = 0  # queued entries counted against this segment
    done: int = 0


def encode(entry: LedgerEntry) -> bytes:
    """The entry's WAL line (newline included)."""
    try:
        return orjson.dumps(entry, default=_default, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # e.g. an int beyond 64 bits: the store will refuse it, the spool keeps it
        return (entry.to_json() + "\n").encode()


def _default(value: object) -> object:
    if value.__class__ is Decimal:  # the money fields: `money_text`, inline (issue 17)
        text = str(value)
        return format(value, "f") if "E" in text else text
    if isinstance(value, Decimal):
        return money_text(value)
    if hasattr(value, "__index__"):
        return int(value.__index__())
    if hasattr(value, "__float__"):
        return float(value)
    return str(value)


def segments_of(slot: Path) -> list[Path]:
    """The slot's segment files, oldest first."""
    prefix = slot.name + ".wal."
    found = [p for p in slot.parent.glob(prefix + "*") if p.name[len(prefix):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(prefix):]))


def leftover(slot: Path) -> Leftover:
    """Read back every segment a previous process left in `slot` (blocking)."""
    entries: list[LedgerEntry] = []
    corrupt: list[bytes] = []
    paths = segments_of(slot)
    for path in paths:
        *lines, tail = path.read_bytes().split(b"\n")
        for line in lines:  # a line never holds a NUL: zeros are unused space (or a hole a
            line = line.strip(b"\0")  # machine crash left), never part of an entry
            if not line.strip():
                continue
            try:
                entries.append(LedgerEntry.from_json(line.decode("utf-8")))
            except ValueError:  # UnicodeDecodeError is a ValueError
                corrupt.append(line)
        if tail.strip(b"\0").strip():
            corrupt.append(tail.strip(b"\0"))  # torn: no newline at its end
    return Leftover(tuple(entries), tuple(corrupt), tuple(paths))


def discard(paths: Sequence[Path]) -> None:
    """Delete segments whose entries are safe elsewhere (blocking)."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if paths:
        sync_dir(paths[0].parent)


def sync_dir(directory: Path) -> None:
    """Make a create, rename or delete in `directory` durable."""
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class Wal:
    """One process's log in its claimed slot; build it with `Wal.open`, then `start()` it."""

    def __init__(self, slot: Path, policy: WalPolicy, seq: int, fd: int, view: mmap.mmap) -> None:
        self.slot = slot
        self.policy = policy
        self.errors = 0  # appends that failed (the entry is still queued, just not logged)
        self._seq = seq
        self._fd, self._view, self._used = fd, view, 0
        self._size = len(view)  # the current segment's (its view's) length
        self._segments: deque[_Segment] = deque([_Segment(self._path(seq))])
        self._written = 0  # bytes appended since open, over all segments
        self._synced = 0
        self._unsynced_fds: list[int] = []  # sealed segments not fsync'd yet (closed once they are)
        self._dir_dirty = True
        self._lock = threading.Lock()  # the fsync thread vs appends and rotation
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @classmethod
    def open(cls, slot: Path, policy: WalPolicy) -> Wal:
        """A log in `slot` with a first, empty segment after any left there (blocking). Read and
        discard what a previous process left first (`leftover`, `discard`)."""
        existing = segments_of(slot)
        seq = int(existing[-1].name.rsplit(".", 1)[1]) + 1 if existing else 1
        return cls(slot, policy, seq, *_new_segment(cls._segment_path(slot, seq),
                                                    policy.segment_bytes))

    @staticmethod
    def _segment_path(slot: Path, seq: int) -> Path:
        return slot.with_name(f"{slot.name}.wal.{seq:08d}")

    def _path(self, seq: int) -> Path:
        return self._segment_path(self.slot, seq)

    @property
    def segments(self) -> list[Path]:
        """The segments this log still holds (the current one last)."""
        return [segment.path for segment in self._segments]

    @property
    def appended(self) -> int:
        """Bytes appended since the log opened."""
        return self._written

    @property
    def synced(self) -> int:
        """Bytes the last fsync covered."""
        return self._synced

    # -- the request path ---------------------------------------------------------------------
    def append(self, entry: LedgerEntry) -> None:
        """Log one queued entry (a copy into the mapped segment); never raises: a failure is
        counted and logged, and the entry stays queued in memory."""
        self.append_line(encode(entry))

    def append_line(self, line: bytes) -> None:
        """`append` for an entry already encoded (`encode(entry)`)."""
        size = len(line)
        with self._lock:
            end = self._used + size
            if end > self._size and not self._closed and self._rotate(size):
                end = size
            self._segments[-1].entries += 1  # counted even when not logged: it is queued
            if self._closed or end > self._size:
                return
            self._view[self._used:end] = line
            self._used = end
            self._written += size

    def count_unlogged(self, entries: int) -> None:
        """`entries` were queued before the log opened: the current segment waits for them too."""
        self._segments[-1].entries += entries

    def done(self, entries: int) -> None:
        """The oldest `entries` queued entries are in the store or the spool: delete every
        segment all of whose entries are done, except the current one."""
        while entries > 0 and self._segments:
            head = self._segments[0]
            taken = min(entries, head.entries - head.done)
            head.done += taken
            entries -= taken
            if head.done < head.entries or len(self._segments) == 1:
                break
            self._segments.popleft()
            with contextlib.suppress(FileNotFoundError):
                head.path.unlink()

    def _rotate(self, need: int) -> bool:
        """Start the next segment, with room for `need` bytes (called under the lock). On
        failure (a full disk) the current one stays: False, counted and logged."""
        seq = self._seq + 1
        try:
            fd, view = _new_segment(self._path(seq), max(self.policy.segment_bytes, need))
        except OSError as exc:
            self._failed(exc)
            return False
        self._view.close()  # its pages stay in the page cache, dirty until written back
        if self.policy.fsync == "never":
            os.close(self._fd)
        else:
            self._unsynced_fds.append(self._fd)
        self._seq, self._fd, self._view, self._used = seq, fd, view, 0
        self._size = len(view)
        self._segments.append(_Segment(self._path(seq)))
        self._dir_dirty = True
        return True

    def _failed(self, exc: OSError) -> None:
        self.errors += 1
        if self.errors == 1 or self.errors % 10_000 == 0:
            log.error("ledger WAL %s: write failed (%s); %d entries not logged so far (they stay "
                      "queued)", self.slot, exc, self.errors)

    # -- fsync ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background fsync (none with `fsync: never`)."""
        if self.policy.fsync != "never" and self._task is None:
            self._task = asyncio.create_task(self._sync_loop(), name="llmroute-ledger-wal")

    async def durable(self) -> None:
        """Return once an fsync covers every entry appended so far (`fsync: always`)."""
        target = self._written
        if self._synced >= target or self._task is None or self._task.done():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._wanted.set()
        await future

    async def _sync_loop(self) -> None:
        """fsync when asked (`always`) or every `interval_s`, until `aclose`. Never cancelled
        mid-fsync: the thread would still use the file descriptors `aclose` closes."""
        timeout = None if self.policy.fsync == "always" else self.policy.interval_s
        try:
            while not self._closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wanted.wait()
                self._wanted.clear()
                await self._sync()
        except Exception:  # a bug: keep serving (the log still takes appends), say so
            log.exception("ledger WAL %s: the fsync task failed", self.slot)
        finally:
            self._wake(everyone=True)

    async def _sync(self) -> None:
        if self._synced < self._written or self._unsynced_fds or self._dir_dirty:
            self._synced = max(self._synced, await asyncio.to_thread(self.sync))
        self._wake()

    def _wake(self, *, everyone: bool = False) -> None:
        while self._waiters and (everyone or self._waiters[0][0] <= self._synced):
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)

    def sync(self) -> int:
        """fsync what was appended (blocking; one caller at a time): returns the byte count it
        covers. A failed fsync is logged; the entries are still in the page cache and the queue."""
        with self._lock:
            sealed, self._unsynced_fds = self._unsynced_fds, []
            fd, target, dirty = self._fd, self._written, self._dir_dirty
            self._dir_dirty = False
        try:
            for old in sealed:
                os.fsync(old)
            os.fsync(fd)
        except OSError as exc:
            log.error("ledger WAL %s: fsync failed: %s", self.slot, exc)
        finally:
            for old in sealed:
                os.close(old)
        if dirty:
            sync_dir(self.slot.parent)
        return target

    async def aclose(self) -> None:
        """Stop the fsync task, fsync a last time (unless `never`), close the files and delete
        the segments whose entries are all done (the rest stay for the next start)."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            self._wanted.set()
            await task  # it does not raise
            self._synced = await asyncio.to_thread(self.sync)  # no other fsync runs now
        self._wake(everyone=True)
        self._view.close()
        for fd in (*self._unsynced_fds, self._fd):
            os.close(fd)
        self._unsynced_fds = []
        finished = [s.path for s in self._segments if s.done >= s.entries]
        self._segments = deque(s for s in self._segments if s.done < s.entries)
        await asyncio.to_thread(discard, finished)


def _new_segment(path: Path, size: int) -> tuple[int, mmap.mmap]:
    """A new segment file of `size` bytes, its blocks allocated, mapped shared (blocking)."""
    fd = os.open(path, _OPEN_FLAGS, 0o600)
    try:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fd, 0, size)  # a full disk fails here, not as a SIGBUS later
        else:  # pragma: no cover - macOS
            os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise

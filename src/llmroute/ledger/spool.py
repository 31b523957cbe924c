"""The ledger writer's local spool: entries the store could not take, kept on disk until it can.

The spool is a JSON Lines file (one `LedgerEntry.to_json()` per line), only ever appended to. To
replay it, the file is first renamed to `<spool>.replay` (atomic; new entries go to a fresh spool
meanwhile), read back in batches, and the replayed prefix is dropped (the file is deleted, or its
unreplayed rest atomically replaces it) — so an entry is replayed once, and one left half-way by a
crash is replayed at the next start. Lines that cannot be parsed (a torn write) are moved to
`<spool>.corrupt`, and entries the store refuses to `<spool>.rejected`: never silently dropped.

Each process claims its own spool: the first of `<spool>`, `<spool>.1`, ... whose `.lock` file it
can `flock`, so several workers configured with the same path never share a file. Methods block
on the disk: the writer calls them through `asyncio.to_thread`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .entry import LedgerEntry
from .wal import sync_dir

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: spools are not locked
    fcntl = None  # type: ignore[assignment]

MAX_SLOTS = 64


class SpoolBusyError(RuntimeError):
    """Every spool slot is locked by another live process."""


@dataclass(frozen=True)
class SpoolChunk:
    """Entries read back from the replay file, and where reading stopped."""

    entries: tuple[LedgerEntry, ...]
    next_offset: int
    corrupt: int


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Spool:
    """One process's spool file; build it with `Spool.claim`."""

    def __init__(self, path: Path, lock_fd: int | None = None) -> None:
        self.path = path
        self.replay_path = path.with_name(path.name + ".replay")
        self.corrupt_path = path.with_name(path.name + ".corrupt")
        self.rejected_path = path.with_name(path.name + ".rejected")
        self._lock_fd = lock_fd
        self._lock = threading.Lock()  # appends vs rotation

    @classmethod
    def claim(cls, path: Path, max_slots: int = MAX_SLOTS) -> Spool:
        """The first slot (`path`, `path.1`, ...) no other live process holds, locked for this one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            return cls(path)
        for slot in range(max_slots):
            candidate = path if slot == 0 else path.with_name(f"{path.name}.{slot}")
            fd = os.open(candidate.with_name(candidate.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            return cls(candidate, fd)
        raise SpoolBusyError(f"all {max_slots} spool slots of {path} are held by other processes")

    @classmethod
    def idle_slots(cls, path: Path, max_slots: int = MAX_SLOTS) -> list[Spool]:
        """Slots of `path` some process used and none holds now (a dead worker's, or one beyond
        today's worker count), locked for this process: release each when done with it. Our own
        slot is held by our own lock, so it is never among them."""
        if fcntl is None:  # pragma: no cover
            return []
        idle: list[Spool] = []
        for slot in range(max_slots):
            candidate = path if slot == 0 else path.with_name(f"{path.name}.{slot}")
            try:
                fd = os.open(candidate.with_name(candidate.name + ".lock"), os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            idle.append(cls(candidate, fd))
        return idle

    def release(self) -> None:
        """Give the slot back (the files stay, for the next process to replay)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- writing -----------------------------------------------------------------------------
    def append(self, entries: Sequence[LedgerEntry], *, sync: bool = True) -> None:
        """Append entries as JSON lines; with `sync`, fsync before returning."""
        data = "".join(entry.to_json() + "\n" for entry in entries).encode()
        with self._lock:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                _write_all(fd, data)
            except BaseException:
                os.close(fd)
                raise
        try:
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if created and sync:
            sync_dir(self.path.parent)

    def sync(self) -> None:
        """fsync the spool (after appends made with `sync=False`)."""
        with contextlib.suppress(FileNotFoundError):
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        sync_dir(self.path.parent)

    def pending(self) -> bool:
        """Is anything waiting to be replayed?"""
        return any(p.exists() and p.stat().st_size > 0 for p in (self.replay_path, self.path))

    # -- replaying ---------------------------------------------------------------------------
    def rotate(self) -> bool:
        """Make the replay file ready: an unfinished one first, else the spool renamed to it.
        False when there is nothing to replay."""
        with self._lock:
            if self.replay_path.exists():
                return True
            if not self.path.exists():
                return False
            if self.path.stat().st_size == 0:
                self.path.unlink()
                return False
            os.replace(self.path, self.replay_path)
        sync_dir(self.path.parent)
        return True

    def read(self, offset: int, limit: int) -> SpoolChunk:
        """Up to `limit` entries of the replay file from byte `offset`; bad lines are quarantined."""
        entries: list[LedgerEntry] = []
        corrupt = 0
        with open(self.replay_path, "rb") as source:
            source.seek(offset)
            while len(entries) < limit:
                line = source.readline()
                if not line:
                    break
                offset += len(line)
                if not line.strip():
                    continue
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("torn line (no newline at the end)")
                    entries.append(LedgerEntry.from_json(line.decode("utf-8")))
                except ValueError:  # UnicodeDecodeError is a ValueError
                    self._quarantine(line)
                    corrupt += 1
        return SpoolChunk(tuple(entries), offset, corrupt)

    def keep_from(self, offset: int) -> None:
        """Drop the replay file's first `offset` bytes (they are in the store): delete the file
        when that is all of it, else atomically replace it with its rest."""
        if not self.replay_path.exists():
            return
        if offset >= self.replay_path.stat().st_size:
            self.replay_path.unlink()
        elif offset > 0:
            partial = self.replay_path.with_name(self.replay_path.name + ".tmp")
            with open(self.replay_path, "rb") as source, open(partial, "wb") as target:
                source.seek(offset)
                shutil.copyfileobj(source, target)
                target.flush()
                os.fsync(target.fileno())
            os.replace(partial, self.replay_path)
        else:
            return
        sync_dir(self.path.parent)

    def reject(self, entries: Sequence[LedgerEntry]) -> None:
        """Keep entries the store refused (a constraint, a value out of range) in `<spool>.rejected`,
        for a person to look at: replaying them would fail forever."""
        _append_synced(self.rejected_path, "".join(e.to_json() + "\n" for e in entries).encode())

    def quarantine(self, lines: Sequence[bytes]) -> None:
        """Keep lines that do not parse in `<spool>.corrupt` (fsync'd), for a person to look at."""
        if lines:
            _append_synced(self.corrupt_path, b"".join(
                line if line.endswith(b"\n") else line + b"\n" for line in lines))

    def _quarantine(self, line: bytes) -> None:
        self.quarantine([line])


def _append_synced(path: Path, data: bytes) -> None:
    with open(path, "ab") as target:
        target.write(data)
        target.flush()
        os.fsync(target.fileno())

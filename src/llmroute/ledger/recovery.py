"""What the ledger writer finds at start: entries a dead process left in write-ahead log segments
and in spool slots nobody holds any more, moved into this process's spool (fsync'd), which the
writer's replay then writes to the store.

Its own slot first: the log a crashed predecessor left there. Then every other slot some process
used and none holds now (`Spool.idle_slots`: a worker that died and was not restarted, or a slot
beyond today's `--workers`): its log and its spool (the replay file, then the spool) are adopted
the same way, so nothing waits for a worker count that may never come back. An adopted slot is
locked while it is emptied, so a process starting meanwhile claims another. Some of these entries
may already be stored: the store ignores request ids it holds, so each lands once. Blocking: the
writer calls `recover` through `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .spool import Spool
from .wal import Wal, WalPolicy, discard, leftover

log = logging.getLogger("llmroute.ledger")
#: Entries read from an adopted spool at a time.
CHUNK = 5_000


@dataclass(frozen=True)
class Recovery:
    """The new log, and what was moved to the spool: entries, unreadable lines, idle slots."""

    wal: Wal | None
    entries: int = 0
    corrupt: int = 0
    adopted: tuple[Path, ...] = ()


def recover(spool: Spool, base: Path, policy: WalPolicy | None) -> Recovery:
    """Move what dead processes left to `spool`, then open this process's log (with a policy)."""
    entries, corrupt = _take_log(spool.path, spool)
    adopted: list[Path] = []
    for idle in Spool.idle_slots(base):
        try:
            moved, torn = _take_log(idle.path, spool)
            moved += _take_spool(idle, spool)
        finally:
            idle.release()
        if moved or torn:
            adopted.append(idle.path)
        entries, corrupt = entries + moved, corrupt + torn
    if entries or corrupt:
        log.warning("ledger: recovered %d entries (%d torn lines set aside in %s) that a previous "
                    "process left in %s%s", entries, corrupt, spool.corrupt_path, spool.path,
                    f" and in idle slots {', '.join(map(str, adopted))}" if adopted else "")
    wal = Wal.open(spool.path, policy) if policy is not None else None
    return Recovery(wal, entries, corrupt, tuple(adopted))


def _take_log(slot: Path, into: Spool) -> tuple[int, int]:
    """A slot's log segments into `into`: (entries, torn lines)."""
    found = leftover(slot)
    if found.entries:
        into.append(found.entries)
    into.quarantine(found.corrupt)
    discard(found.segments)
    return len(found.entries), len(found.corrupt)


def _take_spool(idle: Spool, into: Spool) -> int:
    """An idle slot's spool (its replay file, then the spool itself) into `into`."""
    moved = 0
    for _ in range(2):
        if not idle.rotate():
            break
        offset = 0
        while True:
            chunk = idle.read(offset, CHUNK)  # unreadable lines stay in the idle slot's .corrupt
            if chunk.entries:
                into.append(chunk.entries)
                moved += len(chunk.entries)
            if chunk.next_offset == offset:
                break
            offset = chunk.next_offset
        idle.keep_from(offset)
    return moved

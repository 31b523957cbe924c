"""The ledger writer's store writes in a child process (`ledger.writes: process`, issue 17;
default `inline`).

The writer's batches are CPU work in Python as well as in the database: a row per entry, the
rollups' facts, SQLite's binding and B-tree. Done in the gateway's process it runs on the writer's
task and the store's thread and holds the GIL against the request path: that was most of the
p99 at 1 client (`docs/benchmarks.md`, issue 17). `ProcessWrites` hands each batch to a long-lived
child of its own (`reader_process`'s protocol, at normal priority: a starved writer would fill the
queue) that writes it on a store of its own for the same URL. A batch travels as the entries' log
lines (`wal.encode`), which the writer encodes once per entry for its write-ahead log anyway: the
serving process then pays one copy per batch, not a pickle of every entry (~44,000 instructions
an entry); the child reads them back as recovery does (`LedgerEntry.from_json`).

Nothing else changes: the queue, the write-ahead log, `done()` after the write returns, the
spool when it fails, `holds()` for feedback on entries not written yet all stay in the writer.
A batch the child wrote after the writer gave up on it (the write timeout) is spooled and
replayed: the store ignores request ids it holds, so each entry still lands once. A child that
dies mid-write fails that write (`StoreError`: the store is marked down, the batch spooled, and
the next write starts a new child).
"""

from __future__ import annotations

from collections.abc import Sequence

from .entry import LedgerEntry
from .reads import ProcessReads
from .store import Store, StoreRejectedError
from .wal import encode

#: The child's niceness: as the gateway's (a writer at the lowest priority falls behind at full load).
WRITER_NICENESS = 0


def decode_lines(blob: bytes) -> list[LedgerEntry]:
    """The entries of a batch's lines (`wal.encode`'s, joined); a line that does not read back is
    the store refusing the batch (`StoreRejectedError`: the writer then finds and sets it aside)."""
    try:
        return [LedgerEntry.from_json(line.decode("utf-8")) for line in blob.split(b"\n") if line]
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise StoreRejectedError(f"a ledger line did not read back: {exc}") from exc


async def write_lines(store: Store, blob: bytes) -> None:
    """What the child runs for one batch (module-level: named to the child by reference)."""
    await store.write(decode_lines(blob))


async def ping_store(store: Store) -> None:
    """What the child runs to say it is up and its store answers."""
    await store.ping()


class ProcessWrites:
    """Store writes in a child process, on a store of its own for `url` (a file or a server the
    child can open; not an in-memory SQLite)."""

    def __init__(self, url: str) -> None:
        self._child = ProcessReads(url, niceness=WRITER_NICENESS)

    async def write_lines(self, lines: Sequence[bytes]) -> None:
        """Write one batch, given as its entries' lines, in the child (raises what the store
        raised there)."""
        await self._child.call(write_lines, b"".join(lines))

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        """`write_lines` for entries not encoded yet."""
        await self.write_lines([encode(entry) for entry in entries])

    async def ready(self) -> None:
        """Start the child and wait until its store answers (the first batch then does not wait
        for the child's imports)."""
        await self._child.call(ping_store)

    async def aclose(self) -> None:
        """Stop the child (a write in progress finishes first)."""
        await self._child.aclose()

    @property
    def pid(self) -> int | None:
        """The child's process id (None when none runs)."""
        return self._child.pid

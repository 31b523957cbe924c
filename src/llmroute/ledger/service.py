"""The ledger as the server uses it: open and migrate the store, run the writer, record entries, and
apply feedback (waiting briefly for an entry that was recorded but not yet flushed)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from ..settings import LedgerConfig
from . import open_store
from .entry import LedgerEntry
from .reads import Reads, open_reads
from .sqlite import MEMORY
from .store import PacedWrites, Store
from .wal import WalPolicy
from .write_process import ProcessWrites
from .writer import LedgerWriter, WriterStats

log = logging.getLogger("llmroute.ledger")


class LedgerService:
    """Owns the store and the writer for one app; `record` never blocks."""

    def __init__(self, config: LedgerConfig, store: Store | None = None):
        self.config = config
        self.store = store or open_store(config.url)
        #: Where the heavy reads (the dashboard's windows, the alerts' slices) run; inline on a
        #: store given here (another process could not open it from the URL).
        self.reads: Reads = open_reads(config.url, "inline" if store else config.reads, self.store)
        #: Where the writer's batches are written (`ledger.writes`): None, in this process.
        self.writes = ProcessWrites(config.url) if config.writes == "process" and store is None \
            and not config.url.endswith(MEMORY) else None
        self.writer = LedgerWriter(
            self.store, spool_path=Path(config.spool_path), max_queue=config.max_queue,
            batch_size=config.batch_size, flush_interval_s=config.flush_interval_s,
            wal=wal_policy(config), write_lines=self.writes.write_lines if self.writes else None,
            paced=self.store if config.idle_writes and isinstance(self.store, PacedWrites) else None)

    async def start(self) -> None:
        """Apply migrations and start the writer (replaying any spool a previous run left). The
        reader process starts at its first read, or at `reads.warm()` (the server's runtime)."""
        await self.store.migrate()
        if self.writes is not None:  # up before the first batch (its imports take a moment)
            try:
                await self.writes.ready()
            except Exception as exc:  # the writer's first batches meet it: spooled, retried
                log.warning("the ledger's writer process is not ready: %s: %s",
                            type(exc).__name__, exc)
        await self.writer.start()

    def record(self, entry: LedgerEntry) -> None:
        """Queue an entry for writing (never awaits the store)."""
        self.writer.record(entry)

    async def feedback(self, request_id: str, *, rating: int | None = None,
                       success: bool | None = None, comment: str | None = None,
                       owner: str | None = None) -> bool:
        """Attach feedback; False when the request id is unknown (or, with `owner`, was made with
        another gateway key). For an entry recorded but not written yet, wait (briefly) for the writer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(2.0, 4 * self.config.flush_interval_s)
        pause = max(self.config.flush_interval_s / 4, 0.02)
        pending = self.writer.holds(request_id)  # asked before the store: a flush between is seen
        found = await self.store.feedback(request_id, rating, success, comment, owner=owner)
        while not found and pending and loop.time() < deadline:
            await asyncio.sleep(pause)
            pending = self.writer.holds(request_id)
            found = await self.store.feedback(request_id, rating, success, comment, owner=owner)
        return found

    @property
    def durable(self) -> Callable[[], Awaitable[None]] | None:
        """What an answer awaits after its entry is recorded, before it completes: the log's
        fsync with `wal.fsync: always`; None otherwise (the answer waits for nothing)."""
        wal = self.config.wal
        always = wal_policy(self.config) is not None and wal.fsync == "always"
        return self.writer.durable if always else None

    def stats(self) -> WriterStats:
        """The writer's counters."""
        return self.writer.stats()

    async def aclose(self) -> WriterStats:
        """Flush what is queued (to the store, or the spool), stop the reader and close the store."""
        stats = await self.writer.aclose(self.config.close_timeout_s)
        if self.writes is not None:
            await self.writes.aclose()
        await self.reads.aclose()
        await self.store.close()
        return stats


def wal_policy(config: LedgerConfig) -> WalPolicy | None:
    """The writer's write-ahead log policy from the config (None: no log; an in-memory ledger
    dies with the process anyway)."""
    wal = config.wal
    if not wal.enabled or config.url.endswith(MEMORY):
        return None
    return WalPolicy(wal.fsync, wal.fsync_interval_ms / 1000)

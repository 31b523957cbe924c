"""The `Store` protocol every ledger backend implements, and the small types it speaks.

Backends: `SQLiteStore` (embedded default) and `PostgresStore`. A store is built without I/O; it
connects on first use. Driver failures surface as `StoreError`, so callers catch one type; data the
database refuses surfaces as its subclass `StoreRejectedError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from .aggregates import WindowAggregate
from .entry import LedgerEntry
from .explore_sql import Cursor as PageCursor
from .explore_sql import Filters
from .paging import DEFAULT_BATCH_SIZE
from .rated import Cursor, Rated
from .retention import Cutoffs, Pruned
from .rollup_read import RollupWindow


class StoreError(Exception):
    """The store could not do what was asked: unreachable, closed, or failing. Worth retrying."""


class StoreRejectedError(StoreError):
    """The database refused the data itself (a constraint, a value out of range): retrying the
    same entries will fail again."""


@dataclass(frozen=True)
class MigrationStatus:
    """One named migration and when it was applied (None: pending)."""

    name: str
    applied_at: datetime | None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


@runtime_checkable
class Store(Protocol):
    """Where ledger entries live. Every method may raise `StoreError`."""

    async def migrate(self) -> list[str]:
        """Apply pending migrations in order and return their names; idempotent, and safe when
        several processes migrate the same database at once."""
        ...

    async def migration_status(self) -> list[MigrationStatus]:
        """Every known migration with its applied time (then any applied migration this version
        does not know, which means the database is newer than the code)."""
        ...

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert entries in one transaction. An entry whose request_id is already stored is
        ignored (the stored one is kept), so replaying a batch never creates a duplicate."""
        ...

    async def feedback(self, request_id: str, rating: int | None = None, success: bool | None = None,
                       comment: str | None = None, *, at: datetime | None = None,
                       owner: str | None = None) -> bool:
        """Set the given feedback fields (None leaves a field as it is); False if the id is unknown
        or, with `owner`, if the request was not made with the gateway key of that name.
        `feedback_ts` becomes `at` (default: now) only when a value actually changes, so repeating
        the same feedback is a no-op."""
        ...

    async def rated(self, until: datetime, after: Cursor | None = None,
                    limit: int = 500) -> list[Rated]:
        """Feedback on requests that kept a prompt latent (learning online), given before `until`
        and after the cursor `after` (feedback_ts, request_id), in that order, at most `limit`."""
        ...

    async def get(self, request_id: str) -> LedgerEntry | None:
        """The entry with this id, or None."""
        ...

    async def query(self, since: datetime | None = None, until: datetime | None = None,
                    limit: int | None = None, *,
                    experiments: Sequence[str] | None = None) -> list[LedgerEntry]:
        """Entries with since <= ts < until, oldest first (ties by request_id), at most `limit`;
        with `experiments`, only those labelled with an arm of one of them ("name:arm")."""
        ...

    def iterate(self, since: datetime | None = None, until: datetime | None = None, *,
                batch_size: int = DEFAULT_BATCH_SIZE,
                experiments: Sequence[str] | None = None,
                cache: Sequence[str] | None = None) -> AsyncIterator[list[LedgerEntry]]:
        """The entries `query` returns (with `cache`, only those in one of these response-cache
        states: `LedgerEntry.cache`), in the same order, as batches of at most `batch_size`
        (never an empty one), each read when the one before has been taken: memory does not grow
        with the window. Keyset pagination on (ts, request_id), see `paging`; ValueError or
        TypeError at the call for a bad batch size or a naive bound."""
        ...

    async def latest(self, since: datetime, until: datetime, filters: Filters, limit: int,
                     before: PageCursor | None = None) -> list[LedgerEntry]:
        """Up to `limit` entries with since <= ts < until passing `filters`, older than `before`
        ((ts, request_id)) when given, newest first (ties by request_id): the request explorer's
        page, filtered by the database (`explore_sql`)."""
        ...

    async def aggregate(self, by: str, since: datetime | None = None,
                        until: datetime | None = None, *, key: str | None = None
                        ) -> WindowAggregate:
        """The report numbers of the entries with since <= ts < until (with `key`, only those made
        with the gateway key of that name), per value of `by` (one of
        `GROUP_KEYS`, else ValueError) and in total, computed by the database: a few rows come
        back, never the entries. Equal to `reports.aggregate.aggregate_entries` over the same
        entries (exact money, the same nearest-rank percentiles)."""
        ...

    async def rollups(self, by: str, since: datetime | None = None,
                      until: datetime | None = None) -> RollupWindow:
        """The window's numbers per value of `by` (one of `rollup_sql.ROLLUP_GROUP_KEYS`, else
        ValueError) from the rollups (see `rollups`): hour and day rollups for the window's whole
        hours, raw rows for its partial hours at the edges. Tallies equal `aggregate`'s exactly;
        latency percentiles are within the sketch's 1 % (`sketch`)."""
        ...

    async def rollups_by(self, bys: Sequence[str], since: datetime | None = None,
                         until: datetime | None = None) -> dict[str, RollupWindow]:
        """`rollups` for several groupings at once (distinct, else ValueError), read in one
        transaction from the same rows: cheaper than one call per grouping."""
        ...

    async def rebuild_rollups(self) -> None:
        """Recompute every rollup from the raw rows (after a restore or a manual edit; writes wait
        meanwhile). The store does this itself once, when the rollup migration is applied."""
        ...

    async def prune(self, cutoffs: Cutoffs, *, dry_run: bool = False) -> Pruned:
        """Delete what is older than its cutoff (see `retention.Cutoffs`) and say how much went;
        with `dry_run`, only count it. Raw rows go first (SQLite: in transactions of at most
        `retention.CHUNK_ROWS` rows; PostgreSQL: whole monthly partitions dropped, the partial
        month deleted), then text, then rollups of each grain. Rollups are never decremented:
        deleting raw rows leaves every rollup as it was."""
        ...

    async def count(self) -> int:
        """How many entries are stored."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise `StoreError` when it does not."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


def check_limit(limit: int | None) -> None:
    """Raise ValueError for a negative query limit."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")


@runtime_checkable
class PacedWrites(Protocol):
    """A store that paces a batch by the writer's backlog (`SQLiteStore`, `PostgresStore`; see
    `idle.py`)."""

    #: How many batches' worth of entries one write may take while the writer is behind: more
    #: entries per write where each write waits for the event loop several times (PostgreSQL's
    #: round trips: 8), one batch where a write is one thread call (SQLite: 1).
    catch_up: int

    async def write_idle(self, entries: Sequence[LedgerEntry]) -> None:
        """`Store.write` while the writer keeps up: at the lowest CPU priority, the rows built in
        slices between yields to the event loop, so a request is never queued behind the batch."""
        ...

    async def write_behind(self, entries: Sequence[LedgerEntry]) -> None:
        """`Store.write` while the writer is behind (a batch or more queued after this one): at
        normal priority and the rows built in one go, so the ledger catches up under load."""
        ...

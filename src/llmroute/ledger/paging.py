"""Keyset pagination of the ledger (`Store.iterate`): a window's entries in (ts, request_id) order,
in batches of at most `batch_size`, for both backends.

Each batch is one query of its own that starts after the last entry of the batch before
(`ts >= t AND (ts > t OR request_id > id)`, then `ORDER BY ts, request_id LIMIT n`): no OFFSET (so a
batch costs the same deep into the window as at its start: the index on ts finds where to begin),
and nothing held between batches but that position, no cursor, transaction or pooled connection.
Entries are never skipped or repeated, ties on ts included: request_id is unique, so (ts,
request_id) orders the entries totally. Batches are separate reads, so an entry written meanwhile
shows up if it sorts after the position reached, and not if it sorts before; feedback set meanwhile
shows in the batches not yet read. (Many entries on one ts would be rescanned by each batch within
them: the index is on ts alone; microsecond timestamps make such ties a handful of entries.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .aggregate_sql import SqlDialect, where_clause
from .entry import LedgerEntry

#: Entries per batch unless asked otherwise: a few MB of entries without stored text.
DEFAULT_BATCH_SIZE = 5000

#: Runs one page's SQL with its parameters and returns the entries of its rows.
FetchPage = Callable[[str, Sequence[Any]], Awaitable[list[LedgerEntry]]]


def check_batch_size(batch_size: int) -> None:
    """Raise ValueError unless `batch_size` is a positive integer."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


@dataclass(frozen=True)
class Pager:
    """The pages of one window: its bounds, its experiments filter and the batch size."""

    dialect: SqlDialect
    select: str
    since: datetime | None
    until: datetime | None
    experiments: tuple[str, ...] | None
    batch_size: int
    #: Only the entries in one of these response-cache states (None: every entry).
    cache: tuple[str, ...] | None = None

    @classmethod
    def build(cls, dialect: SqlDialect, select: str, since: datetime | None, until: datetime | None,
              experiments: Sequence[str] | None, batch_size: int,
              cache: Sequence[str] | None = None) -> Pager:
        """A pager over since <= ts < until (and the experiments' arms, the cache states);
        ValueError or TypeError now, not at the first batch, for a bad batch size or a naive
        bound."""
        check_batch_size(batch_size)
        where_clause(dialect, since, until, [])  # checks the bounds
        arms = None if experiments is None else tuple(experiments)
        return cls(dialect, select, since, until, arms, batch_size,
                   None if cache is None else tuple(cache))

    def page(self, after: LedgerEntry | None) -> tuple[str, list[Any]]:
        """The SQL and parameters of the batch that starts after `after` (None: the first). Past
        the first batch, `after.ts` replaces `since` as the lower bound (it is no earlier), so the
        index on ts starts the scan at the position reached rather than at the window's start."""
        params: list[Any] = []
        start = self.since if after is None else after.ts
        where = where_clause(self.dialect, start, self.until, params, self.experiments,
                             cache=self.cache)
        if after is not None:
            params += [self.dialect.time_param(after.ts), after.request_id]
            past, tie = self.dialect.placeholder(len(params) - 1), self.dialect.placeholder(len(params))
            where += f" AND (ts > {past} OR request_id > {tie})"
        return f"{self.select}{where} ORDER BY ts, request_id LIMIT {self.batch_size}", params

    async def batches(self, fetch: FetchPage) -> AsyncIterator[list[LedgerEntry]]:
        """Every non-empty batch, oldest first, each fetched when the one before has been taken."""
        after: LedgerEntry | None = None
        while True:
            batch = await fetch(*self.page(after))
            if batch:
                yield batch
            if len(batch) < self.batch_size:
                return
            after = batch[-1]

"""The dashboard's request explorer: the latest requests of a window that pass some filters, newest
first, a page at a time (a reader-process read: `reads.Reads.call(latest, ...)`).

The store pages forwards (`Store.iterate`, keyset on (ts, request_id)); the explorer wants the newest
first, so it walks back from the page's end in slices, each twice as long as the one before (from
`FIRST_SLICE_S`), keeping only the newest matches of each: a page of recent traffic reads a few
minutes of rows, not the window. The cursor of the next page is the last row's (ts, request_id).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from .entry import LedgerEntry
from .store import Store

#: The first slice read back from the page's end.
FIRST_SLICE_S = 600.0
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Filters:
    """What a listed request must match (None: anything). `key`: the gateway key's name."""

    model: str | None = None
    policy: str | None = None
    status: str | None = None
    key: str | None = None
    cache: str | None = None

    def match(self, entry: LedgerEntry) -> bool:
        return all(want is None or want == have for want, have in (
            (self.model, entry.model), (self.policy, entry.policy), (self.status, entry.status),
            (self.key, entry.key_name), (self.cache, entry.cache)))


Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class Page:
    """A page of entries, newest first, and the cursor of the next one (None: the last page)."""

    entries: tuple[LedgerEntry, ...]
    next: Cursor | None


async def _slice(store: Store, low: datetime, high: datetime, filters: Filters,
                 before: Cursor | None, keep: int) -> list[LedgerEntry]:
    """The newest `keep` matches in [low, high) before the cursor, newest first."""
    newest: deque[LedgerEntry] = deque(maxlen=keep)
    cache = [filters.cache] if filters.cache else None
    async for batch in store.iterate(low, high, cache=cache):
        newest.extend(e for e in batch
                      if filters.match(e) and (before is None or (e.ts, e.request_id) < before))
    return list(reversed(newest))


async def latest(store: Store, since: datetime, until: datetime, filters: Filters, limit: int,
                 before: Cursor | None = None) -> Page:
    """Up to `limit` entries of [since, until) matching `filters`, newest first, older than
    `before` when given; see the module docstring."""
    high = min(until, before[0] + _TICK) if before else until
    span, found = timedelta(seconds=FIRST_SLICE_S), list[LedgerEntry]()
    while high > since and len(found) <= limit:
        low = max(since, high - span)
        found += await _slice(store, low, high, filters, before, limit + 1 - len(found))
        high, span = low, span * 2
    page = tuple(found[:limit])
    more = len(found) > limit
    return Page(page, (page[-1].ts, page[-1].request_id) if more and page else None)


async def one(store: Store, request_id: str, key: str | None) -> LedgerEntry | None:
    """The entry with this id; None also when `key` is given and it was made with another key."""
    entry = await store.get(request_id)
    if entry is None or (key is not None and entry.key_name != key):
        return None
    return entry

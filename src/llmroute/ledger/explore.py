"""The dashboard's request explorer: the latest requests of a window that pass some filters, newest
first, a page at a time (a reader-process read: `reads.Reads.call(latest, ...)`).

The store answers a page in one query (`Store.latest`, `explore_sql`): the filters in its WHERE
clause, keyset on (ts, request_id) newest first, so a page reads its own rows through an index, and
a filter that matches nothing answers at once instead of reading the window back. The cursor of the
next page is the last row's (ts, request_id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .entry import LedgerEntry
from .explore_sql import Cursor, Filters
from .store import Store

__all__ = ["Cursor", "Filters", "Page", "latest", "one"]


@dataclass(frozen=True)
class Page:
    """A page of entries, newest first, and the cursor of the next one (None: the last page)."""

    entries: tuple[LedgerEntry, ...]
    next: Cursor | None


async def latest(store: Store, since: datetime, until: datetime, filters: Filters, limit: int,
                 before: Cursor | None = None) -> Page:
    """Up to `limit` entries of [since, until) matching `filters`, newest first, older than
    `before` when given; see the module docstring."""
    found = await store.latest(since, until, filters, limit + 1, before)
    page = tuple(found[:limit])
    more = len(found) > limit
    return Page(page, (page[-1].ts, page[-1].request_id) if more and page else None)


async def one(store: Store, request_id: str, key: str | None) -> LedgerEntry | None:
    """The entry with this id; None also when `key` is given and it was made with another key."""
    entry = await store.get(request_id)
    if entry is None or (key is not None and entry.key_name != key):
        return None
    return entry

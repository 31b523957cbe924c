"""When the traffic of a report window really happened: its first and last request (the window is
the query's, e.g. the last 7 days; the traffic may be a few seconds of it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..ledger.store import Store

#: The last request is searched for down to this; then that slice's rows are read.
_STEP = timedelta(seconds=1)


@dataclass(frozen=True)
class Span:
    """The first and last request's times in a window."""

    first: datetime
    last: datetime

    def text(self) -> str:
        """`first 2026-12-06 03:37:01, last 03:37:05 UTC` (the date again when it differs)."""
        same_day = self.first.date() == self.last.date()
        last = f"{self.last:%H:%M:%S}" if same_day else f"{self.last:%Y-%m-%d %H:%M:%S}"
        return f"first {self.first:%Y-%m-%d %H:%M:%S}, last {last} UTC"


async def traffic_span(store: Store, start: datetime, end: datetime) -> Span | None:
    """The first and last request in [start, end) (None: none), in a few indexed one-row reads:
    the last is found by jumping to the first request after the middle of what is left."""
    head = await store.query(start, end, limit=1)
    if not head:
        return None
    low, high = head[0].ts, end
    while high - low > _STEP:
        middle = low + (high - low) / 2
        later = await store.query(middle, high, limit=1)
        if later:
            low = later[0].ts
        else:
            high = middle
    last = low
    async for batch in store.iterate(low, high):
        last = batch[-1].ts
    return Span(head[0].ts, last)

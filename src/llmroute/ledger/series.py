"""The dashboard's time series and spend tables, read from the rollups (a reader-process read:
`reads.Reads.call(dashboard_series, ...)`).

The window is cut into buckets that fit it: hours for a window of at most `HOURLY_UP_TO`, else UTC
days. Each bucket is one `Store.rollups("key", ...)` read: its whole hours come from the hour and
day rollups, only its partial hours at the window's edges from raw rows, so a long window never
scans its raw rows. The same grouping gives the spend per key, and merged by the keys' teams
(`rollup_read.regroup`) the spend per team. With `key`, only that key's numbers (an application
key's own), and no team table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from .aggregates import NONE_LABEL, Tally
from .entry import money_text
from .rollup_read import RollupWindow, regroup
from .rollups import floor_to
from .store import Store

#: Windows up to this long get hour buckets; longer ones day buckets.
HOURLY_UP_TO = timedelta(hours=48)
#: At most this many buckets (a longer window keeps its most recent ones).
MAX_BUCKETS = 400
_STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


@dataclass(frozen=True)
class SeriesPoint:
    """One bucket: its start (UTC, the bucket's own, not clipped to the window) and its numbers."""

    start: datetime
    requests: int
    errors: int
    cost_usd: str
    rated: int
    mean_rating: float | None
    #: Requests answered by a fallback model (`LedgerEntry.fallback`, issue 16).
    fallbacks: int = 0


@dataclass(frozen=True)
class Spend:
    """One key's or team's numbers over the window."""

    name: str
    requests: int
    errors: int
    cost_usd: str


@dataclass(frozen=True)
class DashboardSeries:
    """The window's buckets ("hour" or "day" each), and its spend per key and per team."""

    bucket: str
    points: tuple[SeriesPoint, ...]
    keys: tuple[Spend, ...]
    teams: tuple[Spend, ...]


def bucket_of(since: datetime, until: datetime) -> str:
    """The bucket that fits a window: "hour" up to `HOURLY_UP_TO`, else "day"."""
    return "hour" if until - since <= HOURLY_UP_TO else "day"


def buckets(since: datetime, until: datetime, grain: str) -> list[tuple[datetime, datetime, datetime]]:
    """(bucket start, read from, read until) of each bucket meeting [since, until), oldest first;
    the reads clipped to the window, at most `MAX_BUCKETS` (the most recent)."""
    step, start, found = _STEP[grain], floor_to(since, grain), []
    while start < until:
        found.append((start, max(start, since), min(start + step, until)))
        start += step
    return found[-MAX_BUCKETS:]


def _tally(window: RollupWindow, key: str | None) -> Tally:
    if key is None:
        return window.total.tally
    return next((g.tally for g in window.groups if g.label == key), Tally())


def _point(start: datetime, tally: Tally) -> SeriesPoint:
    mean = tally.rating_points / tally.rated if tally.rated else None
    return SeriesPoint(start, tally.requests, tally.errors, money_text(tally.cost_usd), tally.rated,
                       mean, tally.fallbacks)


def _spend(window: RollupWindow, key: str | None) -> tuple[Spend, ...]:
    return tuple(Spend(g.label, g.tally.requests, g.tally.errors, money_text(g.tally.cost_usd))
                 for g in window.groups if key is None or g.label == key)


async def dashboard_series(store: Store, since: datetime, until: datetime, key: str | None,
                           teams: Mapping[str, str | None]) -> DashboardSeries:
    """The window's series and spend tables (see the module docstring); `key`: only that gateway
    key's; `teams`: key name -> team."""
    grain = bucket_of(since, until)
    points = []
    for start, low, high in buckets(since, until, grain):
        points.append(_point(start, _tally(await store.rollups("key", low, high), key)))
    window = await store.rollups("key", since, until)
    by_team = () if key is not None else _spend(
        regroup(window, "team", lambda name: teams.get(name) or NONE_LABEL), None)
    return DashboardSeries(grain, tuple(points), _spend(window, key), by_team)

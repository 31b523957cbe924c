"""How a window [since, until) splits between day rollups, hour rollups and raw rows (`cover`),
so that each part is read from the fewest rows, and exactly."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .entry import as_utc
from .rollups import DAY, EARLIEST, HOUR, LATEST, ceil_to, floor_to

#: The resolution of a row's time: a row at `newest` is inside [newest, newest + RESOLUTION).
RESOLUTION = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cover:
    """A window split by what answers it ([start, end) spans): raw rows to add, hour rollups, day
    rollups, and raw rows to take away (an edge hour read whole from its rollup, less the part
    outside the window: rollups are exact sums, so the difference is exact)."""

    raw: tuple[tuple[datetime, datetime], ...]
    hours: tuple[tuple[datetime, datetime], ...]
    days: tuple[tuple[datetime, datetime], ...]
    minus: tuple[tuple[datetime, datetime], ...] = ()
    #: Hour rollups to take away (a partial day read whole from its day rollup).
    hours_minus: tuple[tuple[datetime, datetime], ...] = ()


def _spans(*spans: tuple[datetime, datetime]) -> tuple[tuple[datetime, datetime], ...]:
    return tuple((start, end) for start, end in spans if start < end)


def check_window(since: datetime | None, until: datetime | None
                 ) -> tuple[datetime | None, datetime | None]:
    """The bounds, each None or timezone-aware (ValueError for a naive one, TypeError for another
    type)."""
    return (None if since is None else as_utc(since, "since"),
            None if until is None else as_utc(until, "until"))


def cover(since: datetime | None, until: datetime | None, *, raw_from: datetime | None = None,
          hours_from: datetime | None = None, newest: datetime | None = None) -> Cover:
    """How [since, until) splits, so that each part is read from the fewest rows. A partial hour
    at an edge is read from raw rows when that is fewer rows than the rest of the hour, else from
    its hour rollup less the raw rows outside the window (at most half an hour of raw rows per
    edge). Nothing is stored after the `newest` raw row's time, so the current hour of a window
    ending now is its rollup less nothing. Likewise a partial day: from hour rollups, or from its
    day rollup less the hours outside. Whole days from day rollups. Rollups are exact sums, so a
    difference is exact. Open edges are `EARLIEST` and `LATEST`.

    A difference needs the finer rows it takes away to be all there: raw rows from `raw_from`
    (the oldest raw row's time) and hour rollups from `hours_from` (the oldest hour rollup's
    start) on; retention deletes everything before a cutoff. Before them (or when None) an edge is
    always read at the finer grain, as the rows that remain."""
    start = EARLIEST if since is None else since.astimezone(UTC)
    end = LATEST if until is None else until.astimezone(UTC)
    if start >= end:
        return Cover((), (), ())
    if ceil_to(start, "hour") > floor_to(end, "hour"):  # within one hour
        hour = floor_to(start, "hour")
        outside = start - hour + _outside_end(end, hour + HOUR, newest)
        if end - start <= outside or not _complete(hour, raw_from):
            return Cover(((start, end),), (), ())
        return Cover((), ((hour, hour + HOUR),), (), _spans((hour, start), (end, hour + HOUR)))
    raw, minus = _edges(start, end, HOUR, raw_from, newest)
    low, high = _inner(start, end, HOUR, raw_from, newest)
    if ceil_to(low, "day") > floor_to(high, "day"):  # within one day
        day = floor_to(low, "day")
        outside = low - day + _outside_end(high, day + DAY, newest)
        if high - low <= outside or not _complete(day, hours_from):
            return Cover(raw, _spans((low, high)), (), minus)
        return Cover(raw, (), ((day, day + DAY),), minus, _spans((day, low), (high, day + DAY)))
    hours, hours_minus = _edges(low, high, DAY, hours_from, newest)
    day_low, day_high = _inner(low, high, DAY, hours_from, newest)
    return Cover(raw, hours, _spans((day_low, day_high)), minus, hours_minus)


def _outside_end(end: datetime, high: datetime, newest: datetime | None) -> timedelta:
    """How much of [end, high) can hold rows: none after the newest row (None: all of it)."""
    last = high if newest is None else min(high, newest + RESOLUTION)
    return max(last - end, timedelta(0))


def _complete(unit_start: datetime, finer_from: datetime | None) -> bool:
    """Whether every finer row of the unit starting at `unit_start` is still stored."""
    return finer_from is not None and finer_from <= unit_start


def _finer_start(start: datetime, low: datetime, unit: timedelta, finer_from: datetime | None) -> bool:
    """Whether the partial unit [low, low + unit) at the start is read at the finer grain."""
    return start - low > unit / 2 or not _complete(low, finer_from)


def _finer_end(end: datetime, high: datetime, unit: timedelta, finer_from: datetime | None,
               newest: datetime | None) -> bool:
    """Whether the partial unit [high - unit, high) at the end is read at the finer grain: when
    that is fewer rows than the part after `end` that can hold any."""
    return (_outside_end(end, high, newest) > end - (high - unit)
            or not _complete(high - unit, finer_from))


def _edges(start: datetime, end: datetime, unit: timedelta, finer_from: datetime | None,
           newest: datetime | None
           ) -> tuple[tuple[tuple[datetime, datetime], ...], tuple[tuple[datetime, datetime], ...]]:
    """The partial `unit`s at the edges of [start, end) (which are not one unit): what to add at
    the finer grain, and what to take away from a whole `unit` read at the coarser one."""
    grain = "hour" if unit == HOUR else "day"
    low, high = floor_to(start, grain), ceil_to(end, grain)
    add: list[tuple[datetime, datetime]] = []
    take: list[tuple[datetime, datetime]] = []
    if start > low:
        if _finer_start(start, low, unit, finer_from):
            add.append((start, low + unit))
        else:
            take.append((low, start))
    if end < high:
        if _finer_end(end, high, unit, finer_from, newest):
            add.append((high - unit, end))
        else:
            take.append((end, high))
    return tuple(add), tuple(take)


def _inner(start: datetime, end: datetime, unit: timedelta, finer_from: datetime | None,
           newest: datetime | None) -> tuple[datetime, datetime]:
    """The `unit`-aligned span read at the coarser grain: the edges `_edges` adds at the finer one
    left out, the ones it takes away included."""
    grain = "hour" if unit == HOUR else "day"
    low, high = floor_to(start, grain), ceil_to(end, grain)
    if start > low and _finer_start(start, low, unit, finer_from):
        low += unit
    if end < high and _finer_end(end, high, unit, finer_from, newest):
        high -= unit
    return low, high

"""Pruning a SQLite ledger (see `retention`), one bounded step at a time.

SQLite has one writer at a time, so nothing here holds the write lock long: raw rows are deleted
`CHUNK_ROWS` at a time by the ts index, text is cleared over index ranges of `CHUNK_ROWS` rows, and
rollups a day (hour grain) or a month (day grain) of starts at a time. Each step is one call of
the store (one transaction): the store's other work (the writer's batches, feedback) runs
between steps. Rollups are never decremented.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from .retention import CHUNK_ROWS, Cutoffs, Pruned
from .rollup_sql import LATENCY_TABLE, ROLLUPS_TABLE
from .rollups import ALL, DIMENSIONS
from .rows import sqlite_time
from .sqlite_tx import immediate

_HAS_TEXT = "(prompt_text IS NOT NULL OR response_text IS NOT NULL)"
_LATENCY_DIMS = (ALL, *DIMENSIONS)
#: How far one rollup step reaches, per grain.
ROLLUP_STEP = {"hour": timedelta(days=1), "day": timedelta(days=31)}


def _one(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with contextlib.closing(conn.execute(sql, params)) as cursor:
        row = cursor.fetchone()
    return None if row is None else row[0]


def _changed(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    with contextlib.closing(conn.execute(sql, params)) as cursor:
        return cursor.rowcount


# -- raw rows --------------------------------------------------------------------------------
def delete_raw_chunk(conn: sqlite3.Connection, cutoff: datetime) -> int:
    """Delete the oldest rows before `cutoff`, at most `CHUNK_ROWS` of them; how many went."""
    return _changed(conn, "DELETE FROM llmroute_requests WHERE rowid IN (SELECT rowid FROM "
                          "llmroute_requests WHERE ts < ? ORDER BY ts LIMIT ?)",
                    (sqlite_time(cutoff), CHUNK_ROWS))


# -- text ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextRange:
    """The index range of one text step: ts from `low` (inclusive or not) to `high` (inclusive;
    None: up to the cutoff, the last step)."""

    low: str | None
    low_inclusive: bool
    high: str | None


def text_range(conn: sqlite3.Connection, low: str | None, low_inclusive: bool,
               cutoff: datetime) -> TextRange:
    """The next step: `CHUNK_ROWS` rows of the ts index from `low` (read without the write lock)."""
    where, params = _low_where(low, low_inclusive)
    high = _one(conn, f"SELECT ts FROM llmroute_requests WHERE ts < ?{where} ORDER BY ts "
                      "LIMIT 1 OFFSET ?", (sqlite_time(cutoff), *params, CHUNK_ROWS - 1))
    return TextRange(low, low_inclusive, None if high is None else str(high))


def clear_text_step(conn: sqlite3.Connection, step: TextRange, cutoff: datetime) -> int:
    """Clear the text of the step's rows (in the caller's transaction); how many had some."""
    where, params = _low_where(step.low, step.low_inclusive)
    if step.high is None:
        bound, high = "ts < ?", sqlite_time(cutoff)
    else:
        bound, high = "ts <= ?", step.high
    return _changed(conn, "UPDATE llmroute_requests SET prompt_text = NULL, response_text = NULL "
                          f"WHERE {bound}{where} AND {_HAS_TEXT}", (high, *params))


def _low_where(low: str | None, inclusive: bool) -> tuple[str, tuple[str, ...]]:
    if low is None:
        return "", ()
    return (" AND ts >= ?" if inclusive else " AND ts > ?"), (low,)


# -- rollups ---------------------------------------------------------------------------------
def oldest_rollup(conn: sqlite3.Connection, grain: str) -> datetime | None:
    """The earliest start of the grain's rollups or latency bins (both keys lead with it)."""
    starts = [_one(conn, f"SELECT min(start) FROM {ROLLUPS_TABLE} WHERE grain = ?", (grain,)),
              _one(conn, f"SELECT min(start) FROM {LATENCY_TABLE} WHERE dim = ? AND grain = ?",
                   (ALL, grain))]
    found = [datetime.fromisoformat(str(start)) for start in starts if start is not None]
    return min(found) if found else None


def delete_rollups_step(conn: sqlite3.Connection, grain: str, before: datetime) -> tuple[int, int]:
    """Delete the grain's rollups and latency bins starting before `before` (in the caller's
    transaction); how many of each."""
    start = sqlite_time(before)
    rollups = _changed(conn, f"DELETE FROM {ROLLUPS_TABLE} WHERE grain = ? AND start < ?",
                       (grain, start))
    bins = sum(_changed(conn, f"DELETE FROM {LATENCY_TABLE} WHERE dim = ? AND grain = ? AND start < ?",
                        (dim, grain, start)) for dim in _LATENCY_DIMS)
    return rollups, bins


# -- dry run ---------------------------------------------------------------------------------
def count_prunable(conn: sqlite3.Connection, cutoffs: Cutoffs) -> tuple[int, int, dict[str, int], int]:
    """What `cutoffs` would delete (one read transaction): raw rows, texts cleared (on rows that
    stay), rollups per grain, latency bins."""
    conn.execute("BEGIN")
    try:
        raw = text = bins = 0
        rollups = {"hour": 0, "day": 0}
        if cutoffs.raw is not None:
            raw = int(_one(conn, "SELECT count(*) FROM llmroute_requests WHERE ts < ?",
                           (sqlite_time(cutoffs.raw),)))
        if cutoffs.text is not None:
            where, params = _low_where(None if cutoffs.raw is None else sqlite_time(cutoffs.raw), True)
            text = int(_one(conn, f"SELECT count(*) FROM llmroute_requests WHERE ts < ?{where} "
                                  f"AND {_HAS_TEXT}", (sqlite_time(cutoffs.text), *params)))
        for grain, cutoff in cutoffs.rollup_cutoffs():
            start = sqlite_time(cutoff)
            rollups[grain] = int(_one(conn, f"SELECT count(*) FROM {ROLLUPS_TABLE} WHERE grain = ? "
                                            "AND start < ?", (grain, start)))
            bins += sum(int(_one(conn, f"SELECT count(*) FROM {LATENCY_TABLE} WHERE dim = ? AND "
                                       "grain = ? AND start < ?", (dim, grain, start)))
                        for dim in _LATENCY_DIMS)
    finally:
        conn.execute("COMMIT")
    return raw, text, rollups, bins


# -- the whole prune -------------------------------------------------------------------------
T = TypeVar("T")


class Call(Protocol):
    """Runs a function on the store's connection, in the store's thread (`SQLiteStore.run`)."""

    def __call__(self, work: Callable[[sqlite3.Connection], T], /) -> Awaitable[T]: ...


def _written(work: Callable[[sqlite3.Connection], T]) -> Callable[[sqlite3.Connection], T]:
    """`work` in an immediate (write-locked) transaction: committed, or rolled back on error."""
    return lambda conn: immediate(conn, work)


async def prune(call: Call, cutoffs: Cutoffs, *, dry_run: bool,
                text_floor: datetime | None) -> Pruned:
    """Apply `cutoffs` step by step through `call` (see the module). `text_floor`: text before
    it was already cleared by this store, so the scan starts there."""
    if dry_run:
        raw, text, rollups, bins = await call(lambda conn: count_prunable(conn, cutoffs))
        return Pruned(raw_rows=raw, text_rows=text, hour_rollups=rollups["hour"],
                      day_rollups=rollups["day"], latency_bins=bins, dry_run=True)
    raw = 0
    if cutoffs.raw is not None:
        raw_cutoff = cutoffs.raw
        while (n := await call(_written(lambda conn: delete_raw_chunk(conn, raw_cutoff)))) > 0:
            raw += n
    text = 0 if cutoffs.text is None else await _clear_text(call, cutoffs.text, text_floor)
    counts, bins = {"hour": 0, "day": 0}, 0
    for grain, cutoff in cutoffs.rollup_cutoffs():
        counts[grain], found = await _prune_rollups(call, grain, cutoff)
        bins += found
    return Pruned(raw_rows=raw, text_rows=text, hour_rollups=counts["hour"],
                  day_rollups=counts["day"], latency_bins=bins)


async def _clear_text(call: Call, cutoff: datetime, floor: datetime | None) -> int:
    if floor is not None and floor >= cutoff:
        return 0
    cleared = 0
    low, inclusive = (None if floor is None else sqlite_time(floor)), True
    while True:
        step = await call(partial(text_range, low=low, low_inclusive=inclusive, cutoff=cutoff))
        cleared += await call(_written(partial(clear_text_step, step=step, cutoff=cutoff)))
        if step.high is None:
            return cleared
        low, inclusive = step.high, False


async def _prune_rollups(call: Call, grain: str, cutoff: datetime) -> tuple[int, int]:
    oldest = await call(lambda conn: oldest_rollup(conn, grain))
    rollups = bins = 0
    while oldest is not None and oldest < cutoff:
        before = min(oldest + ROLLUP_STEP[grain], cutoff)
        done = await call(_written(partial(delete_rollups_step, grain=grain, before=before)))
        rollups, bins = rollups + done[0], bins + done[1]
        oldest = before
    return rollups, bins

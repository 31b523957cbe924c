"""PostgreSQL's monthly partitions of `llmroute_requests` (migration 0005_partitions) and pruning
on PostgreSQL.

The table is partitioned by range of `ts`, one partition per UTC month named
`llmroute_requests_YYYY_MM`, plus a DEFAULT partition so an insert never fails for want of one. The
store creates the months a batch needs before inserting it (`ensure_months`), under an advisory lock
so replicas creating the same month at once do not collide; rows that reached the DEFAULT partition
meanwhile (a replica whose cache said the month existed) are moved into the new month.

Pruning (`prune`) first gives rows left in the DEFAULT partition their months, then drops the
months wholly older than the raw cutoff (`DROP TABLE`: no dead rows, no vacuum) and deletes only
the partial month's older rows, then clears old text and deletes old rollups. Rollups are never
decremented. One replica prunes a schema at a time (an advisory lock).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped, unused-ignore]

from .migrations import REQUESTS_TABLE
from .retention import Cutoffs, Pruned, next_month
from .rollup_sql import LATENCY_TABLE, ROLLUPS_TABLE
from .rollups import ALL, DIMENSIONS

DEFAULT_PARTITION = f"{REQUESTS_TABLE}_default"
_MONTH_NAME = re.compile(rf"{REQUESTS_TABLE}_(\d{{4}})_(\d{{2}})")
#: How long creating a partition may wait for the table's lock before the batch goes on without
#: it (into the DEFAULT partition), and how long dropping one may wait before pruning gives up
#: until its next run: neither may stall writers behind a long report.
CREATE_LOCK_TIMEOUT = "2s"
DROP_LOCK_TIMEOUT = "10s"
#: Pruning a month, clearing text or rollups may take far longer than an ordinary command.
PRUNE_TIMEOUT_S = 3600.0
_LATENCY_DIMS = [ALL, *DIMENSIONS]
log = logging.getLogger("llmroute.ledger")


def partition_name(month: datetime) -> str:
    """The partition of the UTC month starting at `month`: llmroute_requests_2026_12."""
    return f"{REQUESTS_TABLE}_{month.year:04d}_{month.month:02d}"


def month_of(name: str) -> datetime | None:
    """The month a partition name stands for (None: not a month partition)."""
    found = _MONTH_NAME.fullmatch(name)
    return None if found is None else datetime(int(found[1]), int(found[2]), 1, tzinfo=UTC)


def _literal(ts: datetime) -> str:
    """A partition bound (DDL takes no parameters; built from a datetime, never from input)."""
    return f"'{ts.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


def partition_key(schema: str, what: str = "partitions") -> int:
    """The advisory-lock key under which months of `schema` are created (`what`: "prune", the
    key under which one replica at a time prunes it)."""
    digest = hashlib.sha256(f"llmroute.ledger.{what}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _status_count(status: str) -> int:
    """The row count of a command status such as 'DELETE 42' or 'UPDATE 7'."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


# -- creating months -------------------------------------------------------------------------
async def ensure_months(conn: Any, schema: str, months: Iterable[datetime]) -> set[datetime]:
    """Create the partitions of `months` that are missing (one transaction, under the advisory
    lock); the months that now exist. A lock wait past `CREATE_LOCK_TIMEOUT` gives up quietly:
    the batch goes to the DEFAULT partition and a later batch creates the month."""
    wanted = sorted(set(months))
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{CREATE_LOCK_TIMEOUT}'")
            await conn.execute("SELECT pg_advisory_xact_lock($1)", partition_key(schema))
            for month in wanted:
                await _create_month(conn, schema, month)
    except asyncpg.LockNotAvailableError as exc:
        log.warning("ledger: partition(s) %s not created yet (%s); rows go to %s meanwhile",
                    ", ".join(partition_name(m) for m in wanted), exc, DEFAULT_PARTITION)
        return set()
    return set(wanted)


async def _create_month(conn: Any, schema: str, month: datetime) -> None:
    """Create one month's partition unless it exists, moving the month's rows out of the DEFAULT
    partition first (PostgreSQL refuses a partition that rows in DEFAULT belong to)."""
    name = partition_name(month)
    if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.{name}") is not None:
        return
    end = next_month(month)
    stray = await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} "
                                "WHERE ts >= $1 AND ts < $2)", month, end)
    if stray:
        await conn.execute(f"CREATE TEMP TABLE llmroute_moving (LIKE {REQUESTS_TABLE}) ON COMMIT DROP")
        await conn.execute(f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE ts >= $1 AND "
                           "ts < $2 RETURNING *) INSERT INTO pg_temp.llmroute_moving SELECT * FROM moved",
                           month, end)
    await conn.execute(f"CREATE TABLE {name} PARTITION OF {REQUESTS_TABLE} "
                       f"FOR VALUES FROM ({_literal(month)}) TO ({_literal(end)})")
    if stray:
        await conn.execute(f"INSERT INTO {REQUESTS_TABLE} SELECT * FROM pg_temp.llmroute_moving")
        await conn.execute("DROP TABLE pg_temp.llmroute_moving")


async def settle_default(conn: Any, schema: str) -> set[datetime]:
    """Give the months of rows found in the DEFAULT partition (a write that could not create its
    month, a replica whose cache was stale, a bulk load) their partitions, moving the rows there,
    so that pruning can drop them with their month; the months created."""
    rows = await conn.fetch(f"SELECT DISTINCT date_trunc('month', ts AT TIME ZONE 'UTC') "
                            f"FROM {DEFAULT_PARTITION}", timeout=PRUNE_TIMEOUT_S)
    months = {row[0].replace(tzinfo=UTC) for row in rows}
    return await ensure_months(conn, schema, months) if months else set()


async def month_partitions(conn: Any, schema: str) -> dict[str, datetime]:
    """The month partitions of the table, by name."""
    rows = await conn.fetch("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                            "WHERE i.inhparent = to_regclass($1)", f"{schema}.{REQUESTS_TABLE}")
    found = {row[0]: month_of(row[0]) for row in rows}
    return {name: month for name, month in found.items() if month is not None}


# -- pruning ---------------------------------------------------------------------------------
async def prune(conn: Any, schema: str, cutoffs: Cutoffs, *, dry_run: bool,
                text_floor: datetime | None) -> Pruned:
    """Apply `cutoffs` (see the module): each step its own transaction, one replica at a time
    (another's run in progress: this one does nothing). `text_floor`: text before it was already
    cleared (this store's earlier runs), so the scan starts there."""
    if dry_run:
        return await _prune(conn, schema, cutoffs, dry_run=True, text_floor=text_floor)
    key = partition_key(schema, "prune")
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
        log.info("ledger: another replica is pruning %s; skipped", schema)
        return Pruned()
    try:
        await settle_default(conn, schema)
        return await _prune(conn, schema, cutoffs, dry_run=False, text_floor=text_floor)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", key)


async def _prune(conn: Any, schema: str, cutoffs: Cutoffs, *, dry_run: bool,
                 text_floor: datetime | None) -> Pruned:
    raw, dropped = await _prune_raw(conn, schema, cutoffs.raw, dry_run)
    text = await _clear_text(conn, cutoffs, dry_run, text_floor)
    counts: dict[str, int] = {"hour": 0, "day": 0}
    bins = 0
    for grain, cutoff in cutoffs.rollup_cutoffs():
        rollups, latency = await _prune_rollups(conn, grain, cutoff, dry_run)
        counts[grain] = rollups
        bins += latency
    return Pruned(raw_rows=raw, text_rows=text, hour_rollups=counts["hour"],
                  day_rollups=counts["day"], latency_bins=bins, partitions=dropped,
                  dry_run=dry_run)


async def _prune_raw(conn: Any, schema: str, cutoff: datetime | None,
                     dry_run: bool) -> tuple[int, tuple[str, ...]]:
    """Drop the months that end at or before `cutoff`, then delete what is left before it; the
    rows deleted and the partitions dropped."""
    if cutoff is None:
        return 0, ()
    months = await month_partitions(conn, schema)
    whole = tuple(sorted(name for name, month in months.items() if next_month(month) <= cutoff))
    if dry_run:
        count = await conn.fetchval(f"SELECT count(*) FROM {REQUESTS_TABLE} WHERE ts < $1", cutoff,
                                    timeout=PRUNE_TIMEOUT_S)
        return int(count), whole
    deleted = 0
    for name in whole:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'")
            deleted += int(await conn.fetchval(f"SELECT count(*) FROM {name}", timeout=PRUNE_TIMEOUT_S))
            await conn.execute(f"DROP TABLE IF EXISTS {name}")
    status = await conn.execute(f"DELETE FROM {REQUESTS_TABLE} WHERE ts < $1", cutoff,
                                timeout=PRUNE_TIMEOUT_S)
    return deleted + _status_count(status), whole


async def _clear_text(conn: Any, cutoffs: Cutoffs, dry_run: bool, floor: datetime | None) -> int:
    """Clear the text of rows older than the text cutoff (rows the raw cutoff deletes excepted)."""
    if cutoffs.text is None:
        return 0
    lower = cutoffs.raw if dry_run else floor
    if lower is not None and lower >= cutoffs.text:
        return 0
    having = "(prompt_text IS NOT NULL OR response_text IS NOT NULL)"
    where = f"ts < $1 AND {having}" + ("" if lower is None else " AND ts >= $2")
    params = [cutoffs.text] + ([] if lower is None else [lower])
    if dry_run:
        return int(await conn.fetchval(f"SELECT count(*) FROM {REQUESTS_TABLE} WHERE {where}",
                                       *params, timeout=PRUNE_TIMEOUT_S))
    status = await conn.execute(f"UPDATE {REQUESTS_TABLE} SET prompt_text = NULL, response_text = NULL "
                                f"WHERE {where}", *params, timeout=PRUNE_TIMEOUT_S)
    return _status_count(status)


async def _prune_rollups(conn: Any, grain: str, cutoff: datetime, dry_run: bool) -> tuple[int, int]:
    """Delete (count) one grain's rollups and latency bins that start before `cutoff`."""
    rollups_where = f"FROM {ROLLUPS_TABLE} WHERE grain = $1 AND start < $2"
    latency_where = f"FROM {LATENCY_TABLE} WHERE dim = ANY($3::text[]) AND grain = $1 AND start < $2"
    if dry_run:
        rollups = await conn.fetchval(f"SELECT count(*) {rollups_where}", grain, cutoff,
                                      timeout=PRUNE_TIMEOUT_S)
        latency = await conn.fetchval(f"SELECT count(*) {latency_where}", grain, cutoff,
                                      _LATENCY_DIMS, timeout=PRUNE_TIMEOUT_S)
        return int(rollups), int(latency)
    async with conn.transaction():
        first = await conn.execute(f"DELETE {rollups_where}", grain, cutoff, timeout=PRUNE_TIMEOUT_S)
        second = await conn.execute(f"DELETE {latency_where}", grain, cutoff, _LATENCY_DIMS,
                                    timeout=PRUNE_TIMEOUT_S)
    return _status_count(first), _status_count(second)

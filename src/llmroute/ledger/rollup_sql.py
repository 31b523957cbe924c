"""The SQL of rollups (see `rollups`) for SQLite and PostgreSQL: the tables, applying a `Delta`,
rebuilding from the raw rows; the queries that read a window are in `rollup_queries`.

Money stays exact. PostgreSQL keeps rollup money as NUMERIC and sums it. SQLite keeps it as the
Decimal's plain text; every SQLite connection of the store registers functions written in Python:
`llmroute_decimal_add(a, b)` (a delta applied), the aggregates `llmroute_decimal_sum(x)` (a
rebuild) and `llmroute_decimal_sums(...)` (a window read: several sums in one call per row), all
exact. The latency bin of a raw row is `sketch.bin_of`'s formula in SQL (`ln`, `ceil`: SQLite's
math functions, or Python's where SQLite was built without them); a value that floating point puts
across a bin boundary stays within the sketch's bound.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .aggregate_sql import COUNTS, MONEY
from .aggregates import EXACT
from .entry import money_text
from .rollups import (
    MOMENT_FIELDS,
    MONEY_FIELDS,
    TALLY_FIELDS,
    Delta,
    LatencyKey,
)
from .sketch import GAMMA, MIN_LATENCY_S, ZERO_BIN, Histogram, merge_into, pack, unpack

ROLLUPS_TABLE = "llmroute_rollups"
LATENCY_TABLE = "llmroute_rollup_latency"
_DIMENSION_COLUMNS = ("model", "tier", "policy", "key_name", "experiment_arm", "baseline_model")
_KEY_COLUMNS = ("grain", "start", *_DIMENSION_COLUMNS)
_LATENCY_KEY = ("dim", "grain", "start", "value")
COUNT_FIELDS = tuple(f for f in TALLY_FIELDS if f not in MONEY_FIELDS)
_INT_MOMENTS = ("rating_sq", "pair_n", "pair_rating_sq")


@dataclass(frozen=True)
class RollupDialect:
    """What differs between the backends for rollups."""

    placeholder: Callable[[int], str]
    time_param: Callable[[datetime], Any]
    money_param: Callable[[Decimal], Any]
    #: SQL of `money_col + excluded.money_col` and of the exact sum of a money column.
    money_add: Callable[[str], str]
    money_sum: Callable[[str], str]
    #: SQL: the UTC date (YYYY-MM-DD) of a rollup's `start`; the start of the hour of raw `ts`.
    day_of_start: str
    hour_of_ts: str
    day_of_hour_start: str
    latency_bin: str
    as_float: Callable[[str], str]
    qualify: str
    #: SQL of the exact sums of several money expressions when a window is read (SQLite: one
    #: aggregate call for all of them, answering their sums joined by '|'; PostgreSQL: one sum
    #: each), and how many columns they answer.
    money_sums: Callable[[Sequence[str]], list[str]]
    money_width: Callable[[int], int]
    #: SQL: the UTC date of a raw row's `ts`; how a raw row's time is bound.
    day_of_ts: str
    raw_time_param: Callable[[datetime], Any]


SQLITE = RollupDialect(
    placeholder=lambda _: "?", time_param=lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    money_param=money_text,
    money_add=lambda c: f"llmroute_decimal_add({c}, excluded.{c})",
    money_sum=lambda c: f"llmroute_decimal_sum({c})",
    day_of_start="substr(start, 1, 10)",
    hour_of_ts="substr(ts, 1, 13) || ':00:00.000000Z'",
    day_of_hour_start="substr(start, 1, 10) || 'T00:00:00.000000Z'",
    latency_bin=(f"CASE WHEN latency_s >= {MIN_LATENCY_S!r} THEN "
                 f"CAST(ceil(ln(latency_s) / ln({GAMMA!r})) AS INTEGER) ELSE {ZERO_BIN} END"),
    as_float=lambda c: f"CAST({c} AS REAL)", qualify="",
    money_sums=lambda cs: [f"llmroute_decimal_sums({', '.join(cs)})"], money_width=lambda n: 1,
    day_of_ts="substr(ts, 1, 10)", raw_time_param=lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
)
POSTGRES = RollupDialect(
    placeholder=lambda n: f"${n}", time_param=lambda t: t, money_param=lambda d: d,
    money_add=lambda c: f"{ROLLUPS_TABLE}.{c} + excluded.{c}",
    money_sum=lambda c: f"COALESCE(sum({c}), 0)",
    day_of_start="to_char(start AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    hour_of_ts="date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    day_of_hour_start="date_trunc('day', start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    latency_bin=(f"CASE WHEN latency_s >= {MIN_LATENCY_S!r} THEN "
                 f"ceil(ln(latency_s) / ln({GAMMA!r}))::integer ELSE {ZERO_BIN} END"),
    as_float=lambda c: f"{c}::double precision", qualify=f"{ROLLUPS_TABLE}.",
    money_sums=lambda cs: [f"COALESCE(sum({c}), 0)" for c in cs], money_width=lambda n: n,
    day_of_ts="to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD')", raw_time_param=lambda t: t,
)


# -- SQLite's exact money functions ----------------------------------------------------------
def _decimal_add(first: str | None, second: str | None) -> str:
    return money_text(EXACT.add(Decimal(first or 0), Decimal(second or 0)))


class _DecimalSum:
    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total = EXACT.add(self.total, Decimal(value))

    def finalize(self) -> str:
        return money_text(self.total)


class _DecimalSums:
    """Several exact sums in one call per row (the read path's money: a fifth of the calls)."""

    def __init__(self) -> None:
        self.totals: list[Decimal] = []

    def step(self, *values: str | None) -> None:
        if not self.totals:
            self.totals = [Decimal(0)] * len(values)
        for i, value in enumerate(values):
            if value is not None:
                self.totals[i] = EXACT.add(self.totals[i], Decimal(value))

    def finalize(self) -> str:
        return "|".join(money_text(total) for total in self.totals)


def split_sums(text: str | None, n: int) -> list[Decimal]:
    """The n sums `llmroute_decimal_sums` answered (all 0 for no rows)."""
    return [Decimal(v) for v in text.split("|")] if text else [Decimal(0)] * n


def register_functions(conn: sqlite3.Connection) -> None:
    """The functions SQLite's rollup SQL calls (on every connection of the store)."""
    conn.create_function("llmroute_decimal_add", 2, _decimal_add, deterministic=True)
    conn.create_function("llmroute_hist_merge", 2, _hist_merge, deterministic=True)
    conn.create_aggregate("llmroute_decimal_sum", 1, _DecimalSum)  # type: ignore[arg-type]
    conn.create_aggregate("llmroute_decimal_sums", len(MONEY_FIELDS), _DecimalSums)  # type: ignore[arg-type]
    try:  # SQLite's math functions, when it was built with them (SQLITE_ENABLE_MATH_FUNCTIONS)
        conn.execute("SELECT ln(2.0), ceil(0.5)").fetchall()
    except sqlite3.OperationalError:
        conn.create_function("ln", 1, math.log, deterministic=True)
        conn.create_function("ceil", 1, math.ceil, deterministic=True)


# -- applying a delta ------------------------------------------------------------------------
def _placeholders(dialect: RollupDialect, n: int) -> str:
    return ", ".join(dialect.placeholder(i) for i in range(1, n + 1))


def upsert_rollups_sql(dialect: RollupDialect) -> str:
    """Add one row's numbers to `llmroute_rollups` (insert it when new)."""
    numbers = (*COUNT_FIELDS, *MONEY_FIELDS, *MOMENT_FIELDS)
    columns = (*_KEY_COLUMNS, *numbers)
    sets = [f"{f} = {dialect.money_add(f)}" if f in MONEY_FIELDS
            else f"{f} = {dialect.qualify}{f} + excluded.{f}" for f in numbers]
    return (f"INSERT INTO {ROLLUPS_TABLE} ({', '.join(columns)}) "
            f"VALUES ({_placeholders(dialect, len(columns))}) "
            f"ON CONFLICT ({', '.join(_KEY_COLUMNS)}) DO UPDATE SET {', '.join(sets)}")


#: PostgreSQL array types of the rollup columns (a batch's upserts in one statement).
_PG_TYPES = {**{c: "text" for c in _KEY_COLUMNS}, "start": "timestamptz",
             **{f: "int8" for f in COUNT_FIELDS}, **{f: "numeric" for f in MONEY_FIELDS},
             **{f: "int8" if f in _INT_MOMENTS else "float8" for f in MOMENT_FIELDS},
             "dim": "text", "value": "text", "hist": "bytea"}


def upsert_many_sql(table: str) -> str:
    """PostgreSQL: a batch of upserts in one statement, one array per column (the parameters of
    `upsert_rollups_sql` and a latency key + histogram, transposed); far fewer round trips than one
    statement per row."""
    keys: tuple[str, ...]
    if table == ROLLUPS_TABLE:
        numbers = (*COUNT_FIELDS, *MONEY_FIELDS, *MOMENT_FIELDS)
        columns, keys = (*_KEY_COLUMNS, *numbers), _KEY_COLUMNS
        sets = [f"{f} = {ROLLUPS_TABLE}.{f} + excluded.{f}" for f in numbers]
    else:
        columns, keys = (*_LATENCY_KEY, "hist"), _LATENCY_KEY
        sets = ["hist = excluded.hist"]
    arrays = ", ".join(f"${i}::{_PG_TYPES[c]}[]" for i, c in enumerate(columns, 1))
    return (f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(sets)}")


def merge_latency_sql() -> str:
    """SQLite: add one histogram to the stored one inside the upsert (`llmroute_hist_merge`), so
    that a batch reads none of them first (`latency_params` with nothing stored)."""
    return (f"INSERT INTO {LATENCY_TABLE} ({', '.join(_LATENCY_KEY)}, hist) "
            f"VALUES ({_placeholders(SQLITE, len(_LATENCY_KEY) + 1)}) "
            f"ON CONFLICT ({', '.join(_LATENCY_KEY)}) "
            "DO UPDATE SET hist = llmroute_hist_merge(hist, excluded.hist)")


def _hist_merge(stored: bytes | None, added: bytes | None) -> bytes:
    """Two packed histograms added up (`sketch.pack`: sorted, so the same bytes as merging first)."""
    return pack(merge_into(unpack(stored), unpack(added)))


def stored_latency_sql(dialect: RollupDialect) -> str:
    """The stored histogram of one key (SQLite), or of the keys given as four arrays, locked for
    the transaction (PostgreSQL; the writers also hold `ROLLUP_LOCK`, so a key not stored yet is
    not inserted by two of them at once)."""
    if dialect.qualify == "":
        return (f"SELECT hist FROM {LATENCY_TABLE} WHERE dim = ? AND grain = ? AND start = ? "
                "AND value = ?")
    return (f"SELECT dim, grain, start, value, hist FROM {LATENCY_TABLE} WHERE "
            "(dim, grain, start, value) IN (SELECT * FROM unnest($1::text[], $2::text[], "
            "$3::timestamptz[], $4::text[])) FOR UPDATE")


def latency_params(dialect: RollupDialect, delta: Delta,
                   stored: Callable[[LatencyKey], Histogram]) -> list[tuple[Any, ...]]:
    """The upserts of a delta's histograms, each merged with what `stored` says is stored, in
    key order."""
    params = []
    times: dict[datetime, Any] = {}
    for key in sorted(delta.latencies):
        merged = merge_into(dict(stored(key)), delta.latencies[key])
        if key.start not in times:
            times[key.start] = dialect.time_param(key.start)
        params.append((key.dim, key.grain, times[key.start], key.value, pack(merged)))
    return params


def delta_params(dialect: RollupDialect, delta: Delta) -> list[tuple[Any, ...]]:
    """The parameters of the tallies' upserts, in key order (so that concurrent writers lock rows
    in the same order and never deadlock)."""
    rollups = []
    times: dict[datetime, Any] = {}  # a batch has a few distinct starts: format each once
    for key in sorted(delta.tallies):
        tally, moments = delta.tallies[key]
        if key.start not in times:
            times[key.start] = dialect.time_param(key.start)
        rollups.append((key.grain, times[key.start], *key[2:],
                        *(getattr(tally, f) for f in COUNT_FIELDS),
                        *(dialect.money_param(getattr(tally, f)) for f in MONEY_FIELDS),
                        *(getattr(moments, f) for f in MOMENT_FIELDS)))
    return rollups


# -- rebuilding from raw rows ----------------------------------------------------------------
def label_sql(column: str) -> str:
    """A dimension's value as rollups key it ('' for none)."""
    return f"COALESCE({column}, '')"


def _moment_sums(dialect: RollupDialect) -> list[str]:
    cost = dialect.as_float("cost_usd")
    pair = "cost_usd IS NOT NULL AND user_rating IS NOT NULL"
    return [f"COALESCE(sum({cost} * {cost}) FILTER (WHERE cost_usd IS NOT NULL), 0)",
            "COALESCE(sum(user_rating * user_rating), 0)",
            f"count(*) FILTER (WHERE {pair})",
            f"COALESCE(sum({cost} * {cost}) FILTER (WHERE {pair}), 0)",
            f"COALESCE(sum(user_rating * user_rating) FILTER (WHERE {pair}), 0)",
            f"COALESCE(sum({cost} * user_rating) FILTER (WHERE {pair}), 0)"]


#: A raw row's baseline model as rollups key it: set only when its baseline cost is known.
RAW_BASELINE = "CASE WHEN baseline_cost_usd IS NOT NULL THEN COALESCE(baseline_model, '') ELSE '' END"


def raw_numbers(dialect: RollupDialect, reading: bool = False) -> list[str]:
    """A rollup row's numbers (counts, exact money, moments) over raw rows (`reading`: the
    money as a window's read answers it, see `RollupDialect.money_sums`)."""
    counts = dict(COUNTS)
    money = {name: (column, test) for name, column, test in MONEY}
    cases = [f"CASE WHEN {money[f][1]} THEN {money[f][0]} END" for f in MONEY_FIELDS]
    sums = dialect.money_sums(cases) if reading else [dialect.money_sum(c) for c in cases]
    return [f"COALESCE({counts[f]}, 0)" for f in COUNT_FIELDS] + sums + _moment_sums(dialect)


def rebuild_sql(dialect: RollupDialect) -> list[str]:
    """Statements that fill the empty tallies table from every raw row: hour rollups from the rows,
    day rollups from the hour rollups. (The histograms: `rebuild_hour_bins_sql`,
    `rebuild_day_hists_sql`.)"""
    dims = [label_sql(c) for c in _DIMENSION_COLUMNS[:-1]] + [RAW_BASELINE]
    numbers = raw_numbers(dialect)
    columns = ", ".join((*_KEY_COLUMNS, *COUNT_FIELDS, *MONEY_FIELDS, *MOMENT_FIELDS))
    group = ", ".join(str(i) for i in range(2, len(_KEY_COLUMNS) + 1))
    statements = [
        f"INSERT INTO {ROLLUPS_TABLE} ({columns}) SELECT 'hour', {dialect.hour_of_ts}, "
        f"{', '.join(dims)}, {', '.join(numbers)} FROM llmroute_requests GROUP BY {group}"]
    day_numbers = ([f"sum({f})" for f in COUNT_FIELDS]
                   + [dialect.money_sum(f) for f in MONEY_FIELDS]
                   + [f"sum({f})" for f in MOMENT_FIELDS])
    statements.append(
        f"INSERT INTO {ROLLUPS_TABLE} ({columns}) SELECT 'day', {dialect.day_of_hour_start}, "
        f"{', '.join(_DIMENSION_COLUMNS)}, {', '.join(day_numbers)} FROM {ROLLUPS_TABLE} "
        f"WHERE grain = 'hour' GROUP BY {group}")
    return statements


def rebuild_hour_bins_sql(dialect: RollupDialect, dim: str) -> str:
    """Raw rows as (hour, value, bin, count) of one latency dimension, in (hour, value) order:
    `rollup_read.histogram_rows` packs them into the hour histograms."""
    column = "''" if dim == "all" else label_sql(RAW_GROUP_COLUMNS[dim])
    return (f"SELECT {dialect.hour_of_ts}, {column}, {dialect.latency_bin}, count(*) "
            "FROM llmroute_requests GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")


def rebuild_day_hists_sql(dialect: RollupDialect) -> str:
    """Every hour histogram as (dim, day, value, hist) in (dim, day, value) order:
    `rollup_read.merged_rows` merges them into the day histograms."""
    return (f"SELECT dim, {dialect.day_of_hour_start}, value, hist FROM {LATENCY_TABLE} "
            "WHERE grain = 'hour' ORDER BY 1, 2, 3")


def insert_latency_sql(dialect: RollupDialect) -> str:
    """Insert one histogram (a rebuild fills empty tables)."""
    return (f"INSERT INTO {LATENCY_TABLE} ({', '.join(_LATENCY_KEY)}, hist) "
            f"VALUES ({_placeholders(dialect, len(_LATENCY_KEY) + 1)})")


def clear_sql() -> list[str]:
    """Empty both rollup tables."""
    return [f"DELETE FROM {ROLLUPS_TABLE}", f"DELETE FROM {LATENCY_TABLE}"]


# -- reading a window ------------------------------------------------------------------------
#: The rollup column of each grouping (day: the date of `start`).
GROUP_COLUMNS: dict[str, str] = {"model": "model", "tier": "tier", "policy": "policy",
                                 "key": "key_name", "arm": "experiment_arm"}
#: The raw column of each grouping.
RAW_GROUP_COLUMNS = GROUP_COLUMNS
ROLLUP_GROUP_KEYS: tuple[str, ...] = ("model", "tier", "policy", "key", "arm", "day")


def check_rollup_key(by: str) -> None:
    """Raise ValueError unless `by` is one of `ROLLUP_GROUP_KEYS`."""
    if by not in ROLLUP_GROUP_KEYS:
        raise ValueError(f"cannot group by {by!r}: choose one of {', '.join(ROLLUP_GROUP_KEYS)}")


#: The raw columns a `rollups.Fact` is read from, in its field order.
FACT_COLUMNS = ("request_id", "ts", "model", "tier", "policy", "key_name", "experiment_arm",
                "status", "latency_s", "cost_usd", "baseline_cost_usd", "baseline_model",
                "user_rating", "task_success", "routing_cost_usd", "cache", "cached_tokens",
                "cache_write_tokens", "prompt_cache_saved_usd", "cache_saved_usd", "unpriced",
                "fallback")

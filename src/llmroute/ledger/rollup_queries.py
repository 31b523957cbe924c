"""The queries that read a window from rollups (see `rollup_cover.cover`), for SQLite and PostgreSQL:
per span of the window's cover, one range scan of a primary key each, one tallies query serving
every grouping asked for. `rollup_read.WindowFolds` folds their rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .rollup_cover import Cover
from .rollup_sql import (
    COUNT_FIELDS,
    GROUP_COLUMNS,
    LATENCY_TABLE,
    RAW_BASELINE,
    RAW_GROUP_COLUMNS,
    ROLLUPS_TABLE,
    RollupDialect,
    check_rollup_key,
    label_sql,
    raw_numbers,
    split_sums,
)
from .rollups import MOMENT_FIELDS, MONEY_FIELDS


@dataclass(frozen=True)
class WindowQuery:
    """One query of a window's read. `kind` "tallies": rows of (one label per grouping, model,
    baseline model, counts, money, moments); "histograms:<by>": rows of (label, packed histogram)
    of that grouping; "latencies": rows of (one label per grouping, bin, count), every grouping's
    histogram at once. The window's histogram is the sum of any one grouping's."""

    kind: str
    sql: str
    params: tuple[Any, ...]
    #: -1: rows to take away (the part of an edge hour outside the window).
    sign: int = 1


def _group(dialect: RollupDialect, by: str, raw: bool) -> str:
    check_rollup_key(by)
    if by == "day":
        return dialect.day_of_ts if raw else dialect.day_of_start
    return label_sql(RAW_GROUP_COLUMNS[by]) if raw else GROUP_COLUMNS[by]


def _positions(n: int) -> str:
    return ", ".join(str(i) for i in range(1, n + 1))


def _rollup_queries(dialect: RollupDialect, bys: Sequence[str], grain: str, start: datetime,
                    end: datetime, sign: int = 1) -> list[WindowQuery]:
    """The span's rollup rows of one grain (each query a range scan of a primary key)."""
    span = (dialect.time_param(start), dialect.time_param(end))
    p = dialect.placeholder
    numbers = ([f"sum({f})" for f in COUNT_FIELDS] + dialect.money_sums(MONEY_FIELDS)
               + [f"sum({f})" for f in MOMENT_FIELDS])
    labels = [_group(dialect, by, False) for by in bys]
    in_span = f"grain = '{grain}' AND start >= {p(1)} AND start < {p(2)}"
    tallies = (f"SELECT {', '.join(labels)}, model, baseline_model, {', '.join(numbers)} "
               f"FROM {ROLLUPS_TABLE} WHERE {in_span} GROUP BY {_positions(len(bys) + 2)}")

    def latency(dim: str, label: str) -> str:
        return f"SELECT {label}, hist FROM {LATENCY_TABLE} WHERE dim = '{dim}' AND {in_span}"

    found = [WindowQuery("tallies", tallies, span, sign)]
    for by in bys:
        sql = latency("all", dialect.day_of_start) if by == "day" else latency(by, "value")
        found.append(WindowQuery(f"histograms:{by}", sql, span, sign))
    return found


def _raw_queries(dialect: RollupDialect, bys: Sequence[str], start: datetime, end: datetime,
                 sign: int = 1) -> list[WindowQuery]:
    """The span's raw rows, aggregated as rollups would hold them."""
    span = (dialect.raw_time_param(start), dialect.raw_time_param(end))
    where = f"FROM llmroute_requests WHERE ts >= {dialect.placeholder(1)} AND ts < {dialect.placeholder(2)}"
    labels = [_group(dialect, by, True) for by in bys]
    return [
        WindowQuery("tallies", f"SELECT {', '.join(labels)}, COALESCE(model, ''), {RAW_BASELINE}, "
                    f"{', '.join(raw_numbers(dialect, True))} {where} GROUP BY {_positions(len(bys) + 2)}",
                    span, sign),
        WindowQuery("latencies", f"SELECT {', '.join(labels)}, {dialect.latency_bin}, count(*) "
                    f"{where} GROUP BY {_positions(len(bys) + 1)}", span, sign),
    ]


def check_groupings(bys: Sequence[str]) -> None:
    """Raise ValueError unless `bys` are one or more distinct `rollup_sql.ROLLUP_GROUP_KEYS`."""
    if not bys or len(set(bys)) != len(bys):
        raise ValueError(f"need distinct groupings, got {list(bys)}")
    for by in bys:
        check_rollup_key(by)


def window_queries(dialect: RollupDialect, bys: Sequence[str], window: Cover) -> list[WindowQuery]:
    """Every query of a window's read for the groupings `bys` (at least one, no repeats): per span
    of its cover, so that each is a range scan; one tallies query per span serves every grouping."""
    check_groupings(bys)
    found: list[WindowQuery] = []
    for start, end in window.raw:
        found += _raw_queries(dialect, bys, start, end)
    for start, end in window.minus:
        found += _raw_queries(dialect, bys, start, end, -1)
    for grain, spans in (("hour", window.hours), ("day", window.days)):
        for start, end in spans:
            found += _rollup_queries(dialect, bys, grain, start, end)
    for start, end in window.hours_minus:
        found += _rollup_queries(dialect, bys, "hour", start, end, -1)
    return found


#: The oldest raw row's time and the oldest hour rollup's start (what retention left: a window
#: takes finer rows away from a coarser one only where they are all there), and the newest raw
#: row's time (nothing is after it): see `rollup_cover.cover`.
STORED_FROM_SQL = (f"SELECT (SELECT min(ts) FROM llmroute_requests), "
                   f"(SELECT min(start) FROM {ROLLUPS_TABLE} WHERE grain = 'hour'), "
                   f"(SELECT max(ts) FROM llmroute_requests)")


def count_fields() -> Sequence[str]:
    return COUNT_FIELDS


def read_money(dialect: RollupDialect) -> tuple[int, Callable[[Sequence[Any]], list[Decimal]]]:
    """How many columns a window's read answers the money sums in, and how to read them."""
    if dialect.money_width(len(MONEY_FIELDS)) == 1:
        return 1, lambda values: split_sums(values[0], len(MONEY_FIELDS))
    return len(MONEY_FIELDS), lambda values: [Decimal(0) if v is None else Decimal(v) for v in values]

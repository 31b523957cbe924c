"""The SQL of `Store.aggregate`, for SQLite and PostgreSQL, and the folding of its few result rows
into a `WindowAggregate` (the numbers are defined in `reports.aggregate`); also the filters that
`Store.query` shares with it (the time window, experiments' arms).

Two queries over the window, in one read transaction:

- buckets: `GROUP BY` the group label, the model label and the baseline model (and, in SQLite, the
  scales of the two money columns) with every count and money sum of a `Tally`: a few rows per
  group, folded here into groups, the total, the model mix and the baseline models' counts;
- percentiles: `row_number()` over the latencies of each group and of the whole window, keeping
  only the rows at the nearest ranks k = ceil(p·n/100) = (p·n + 99) / 100 in integer arithmetic
  (the same rank as the reference, ties included; PostgreSQL's `percentile_disc` computes k from a
  float product, so it is not used).

Money stays exact. PostgreSQL sums NUMERIC. SQLite keeps money as the Decimal's plain text
(`-?digits[.digits]`), so a value is summed as integers: its digits without the point, split into
9-digit chunks (each chunk's sum fits 64 bits for billions of rows), grouped by the value's scale
(digits after the point); the chunk sums are put together here as exact Decimals (`scale` digits
after the point, so a sum keeps the exponent the reference's Decimal sum has). Values longer than
the chunks cover make the query run again with more chunks; a stored text that is not a plain
decimal raises `StoreError` (llmroute never writes one), so a sum is never silently wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .aggregates import (
    NONE_LABEL,
    TOTAL_LABEL,
    ZERO,
    GroupAggregate,
    Tally,
    WindowAggregate,
    check_group_key,
    empty_group,
)
from .entry import as_utc
from .migrations import REQUESTS_TABLE

#: Percentiles reported, in `GroupAggregate` order.
PERCENTILES = (50, 95)
#: Digits per integer chunk of a SQLite money text; chunks used unless longer values are found.
CHUNK_DIGITS = 9
DEFAULT_CHUNKS = 2
_COMPARED = "cost_usd IS NOT NULL AND baseline_cost_usd IS NOT NULL"
#: Tally counts: (field, SQL aggregate). NULL (nothing to count) reads as 0.
_COUNTS: tuple[tuple[str, str], ...] = (
    ("requests", "count(*)"),
    ("errors", "count(*) FILTER (WHERE status = 'error')"),
    ("judged", "count(task_success)"),
    ("successes", "count(*) FILTER (WHERE task_success)"),
    ("priced", "count(cost_usd)"),
    ("compared", f"count(*) FILTER (WHERE {_COMPARED})"),
    ("rated", "count(user_rating)"),
    ("rating_points", "sum(user_rating)"),
    ("rated_cost_points", "sum(user_rating) FILTER (WHERE cost_usd IS NOT NULL)"),
    ("judged_cost_successes", "count(*) FILTER (WHERE cost_usd IS NOT NULL AND task_success)"),
)
#: Tally money sums: (field, column, condition).
_MONEY: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "cost_usd", "cost_usd IS NOT NULL"),
    ("compared_cost_usd", "cost_usd", _COMPARED),
    ("baseline_cost_usd", "baseline_cost_usd", _COMPARED),
    ("rated_cost_usd", "cost_usd", "cost_usd IS NOT NULL AND user_rating IS NOT NULL"),
    ("judged_cost_usd", "cost_usd", "cost_usd IS NOT NULL AND task_success IS NOT NULL"),
)
_MONEY_COLUMNS = ("cost_usd", "baseline_cost_usd")


class MoneyTextError(ValueError):
    """A SQLite money column holds text that is not a plain decimal."""


@dataclass(frozen=True)
class SqlDialect:
    """What differs between the backends: parameter placeholders, how a time is bound, the UTC
    day of `ts` as YYYY-MM-DD text, and whether money is text (SQLite) or NUMERIC."""

    placeholder: Callable[[int], str]
    time_param: Callable[[datetime], Any]
    day: str
    text_money: bool


def _label(column: str) -> str:
    return f"COALESCE(NULLIF({column}, ''), '{NONE_LABEL}')"


_GROUP_COLUMNS = {"model": "model", "tier": "tier", "policy": "policy", "key": "key_name"}


def group_label(dialect: SqlDialect, by: str) -> str:
    """The SQL of an entry's group label (`NONE_LABEL` for NULL or empty)."""
    check_group_key(by)
    return dialect.day if by == "day" else _label(_GROUP_COLUMNS[by])


def where_clause(dialect: SqlDialect, since: datetime | None, until: datetime | None,
                 params: list[Any], experiments: Sequence[str] | None = None) -> str:
    """` WHERE ...` (or nothing) for since <= ts < until and, with `experiments`, an
    `experiment_arm` of one of them (it starts with "name:"; exact characters, whereas SQLite's
    LIKE ignores ASCII case); the values are appended to `params`."""
    tests: list[str] = []
    for value, name, test in ((since, "since", "ts >="), (until, "until", "ts <")):
        if value is not None:
            params.append(dialect.time_param(as_utc(value, name)))
            tests.append(f"{test} {dialect.placeholder(len(params))}")
    if experiments is not None:
        arms: list[str] = []
        for experiment in experiments:
            params.append(f"{experiment}:")
            arms.append(f"substr(experiment_arm, 1, {len(experiment) + 1}) = "
                        f"{dialect.placeholder(len(params))}")
        tests.append(f"({' OR '.join(arms)})" if arms else "FALSE")
    return f" WHERE {' AND '.join(tests)}" if tests else ""


# -- SQLite money as integer chunks ------------------------------------------------------------
def _scale(column: str) -> str:
    return f"CASE instr({column}, '.') WHEN 0 THEN 0 ELSE length({column}) - instr({column}, '.') END"


def _chunk(column: str, index: int) -> str:
    digits = f"replace(replace({column}, '-', ''), '.', '')"
    sign = f"CASE WHEN substr({column}, 1, 1) = '-' THEN -1 ELSE 1 END"
    piece = f"substr({digits}, {-CHUNK_DIGITS * (index + 1)}, {CHUNK_DIGITS})"
    return f"{sign} * CAST({piece} AS INTEGER)"


def _money_sums(dialect: SqlDialect, chunks: int) -> list[str]:
    if not dialect.text_money:
        return [f"sum({column}) FILTER (WHERE {test})" for _, column, test in _MONEY]
    return [f"sum({_chunk(column, i)}) FILTER (WHERE {test})"
            for _, column, test in _MONEY for i in range(chunks)]


def _text_checks() -> list[str]:
    """Per bucket: the longest text of each money column, and how many are not plain decimals."""
    odd = " OR ".join(f"{c} GLOB '*[^0-9.-]*' OR {c} GLOB '?*-*' OR {c} GLOB '*.*.*' "
                      f"OR NOT {c} GLOB '*[0-9]*'" for c in _MONEY_COLUMNS)
    return [*(f"max(length({c}))" for c in _MONEY_COLUMNS), f"count(*) FILTER (WHERE {odd})"]


def bucket_sql(dialect: SqlDialect, by: str, where: str, chunks: int = DEFAULT_CHUNKS) -> str:
    """The buckets query (see the module docstring); its rows are read by `fold`."""
    keys = [group_label(dialect, by), _label("model"),
            "CASE WHEN baseline_cost_usd IS NOT NULL THEN NULLIF(baseline_model, '') END"]
    if dialect.text_money:
        keys += [_scale(c) for c in _MONEY_COLUMNS]
    columns = [*keys, *(sql for _, sql in _COUNTS), *_money_sums(dialect, chunks)]
    if dialect.text_money:
        columns += _text_checks()
    positions = ", ".join(str(i) for i in range(1, len(keys) + 1))
    return f"SELECT {', '.join(columns)} FROM {REQUESTS_TABLE}{where} GROUP BY {positions}"


def _rank(p: int, n: str) -> str:
    return f"({p} * {n} + 99) / 100"


def percentile_sql(dialect: SqlDialect, by: str, where: str) -> str:
    """The latencies at the nearest ranks of each group (rn of n) and of the window (trn of tn)."""
    label = group_label(dialect, by)
    ranked = (f"SELECT {label} AS g, latency_s, "
              f"row_number() OVER (PARTITION BY {label} ORDER BY latency_s) AS rn, "
              f"count(*) OVER (PARTITION BY {label}) AS n, "
              "row_number() OVER (ORDER BY latency_s) AS trn, count(*) OVER () AS tn "
              f"FROM {REQUESTS_TABLE}{where}")
    group_ranks = ", ".join(_rank(p, "n") for p in PERCENTILES)
    total_ranks = ", ".join(_rank(p, "tn") for p in PERCENTILES)
    return (f"SELECT g, latency_s, rn, n, trn, tn FROM ({ranked}) AS ranked "
            f"WHERE rn IN ({group_ranks}) OR trn IN ({total_ranks})")


def chunks_needed(rows: Iterable[Sequence[Any]]) -> int:
    """How many chunks cover the longest SQLite money text in the buckets (raises MoneyTextError
    when one is not a plain decimal)."""
    longest = 0
    for row in rows:
        *lengths, odd = row[-3:]
        if odd:
            raise MoneyTextError(f"{odd} money value(s) stored as text that is not a plain decimal")
        longest = max([longest, *(int(n) for n in lengths if n is not None)])
    return max(DEFAULT_CHUNKS, -(-longest // CHUNK_DIGITS))


# -- folding the rows ----------------------------------------------------------------------------
def _tally(counts: dict[str, int], money: dict[str, Decimal | None]) -> Tally:
    def cash(name: str) -> Decimal:
        value = money[name]
        return ZERO if value is None else value

    return Tally(
        requests=counts["requests"], errors=counts["errors"], judged=counts["judged"],
        successes=counts["successes"], priced=counts["priced"], cost_usd=cash("cost_usd"),
        compared=counts["compared"], compared_cost_usd=cash("compared_cost_usd"),
        baseline_cost_usd=cash("baseline_cost_usd"), rated=counts["rated"],
        rating_points=counts["rating_points"], rated_cost_usd=cash("rated_cost_usd"),
        rated_cost_points=counts["rated_cost_points"], judged_cost_usd=cash("judged_cost_usd"),
        judged_cost_successes=counts["judged_cost_successes"],
    )


def _chunked(sums: Sequence[Any], scale: int) -> Decimal | None:
    """The exact Decimal of integer chunk sums (lowest chunk first) with `scale` decimals."""
    if all(value is None for value in sums):
        return None
    number = sum(int(value or 0) * 10 ** (CHUNK_DIGITS * i) for i, value in enumerate(sums))
    return Decimal(f"{number}E-{scale}")


def _bucket_money(values: Sequence[Any], scales: Sequence[Any], chunks: int | None
                  ) -> dict[str, Decimal | None]:
    if chunks is None:
        return {name: value for (name, _, _), value in zip(_MONEY, values, strict=True)}
    by_column = dict(zip(_MONEY_COLUMNS, scales, strict=True))
    return {name: _chunked(values[i * chunks:(i + 1) * chunks], int(by_column[column] or 0))
            for i, (name, column, _) in enumerate(_MONEY)}


@dataclass(frozen=True)
class _Bucket:
    group: str
    model: str
    baseline_model: str | None
    tally: Tally


def _bucket(row: Sequence[Any], chunks: int | None) -> _Bucket:
    """A buckets row; `chunks` None: NUMERIC money (PostgreSQL), else SQLite's integer chunks."""
    keys = 3 if chunks is None else 5
    counts = row[keys:keys + len(_COUNTS)]
    money = row[keys + len(_COUNTS):keys + len(_COUNTS) + len(_MONEY) * (chunks or 1)]
    tally = _tally({name: int(value or 0) for (name, _), value in zip(_COUNTS, counts, strict=True)},
                   _bucket_money(money, row[3:5], chunks))
    return _Bucket(str(row[0]), str(row[1]), None if row[2] is None else str(row[2]), tally)


def _rank_of(p: int, n: int) -> int:
    return (p * n + 99) // 100


Latencies = list[float | None]


def _percentiles(rows: Iterable[Sequence[Any]]) -> tuple[dict[str, Latencies], Latencies]:
    groups: dict[str, Latencies] = {}
    total: Latencies = [None] * len(PERCENTILES)
    for group, latency, rn, n, trn, tn in rows:
        for i, p in enumerate(PERCENTILES):
            if rn == _rank_of(p, int(n)):
                groups.setdefault(str(group), [None] * len(PERCENTILES))[i] = float(latency)
            if trn == _rank_of(p, int(tn)):
                total[i] = float(latency)
    return groups, total


def _group(label: str, buckets: Sequence[_Bucket], latencies: Latencies) -> GroupAggregate:
    tally = Tally()
    models: Counter[str] = Counter()
    for bucket in buckets:
        tally += bucket.tally
        models[bucket.model] += bucket.tally.requests
    p50, p95 = latencies
    return GroupAggregate(label, tally, p50, p95, tuple(sorted(models.items())))


def fold(by: str, bucket_rows: Iterable[Sequence[Any]], ranked_rows: Iterable[Sequence[Any]],
         chunks: int | None) -> WindowAggregate:
    """The window's numbers from the rows of `bucket_sql` and `percentile_sql` (`chunks`: as
    the buckets were queried with; None for NUMERIC money)."""
    buckets = [_bucket(row, chunks) for row in bucket_rows]
    if not buckets:
        return WindowAggregate(by, empty_group(TOTAL_LABEL), (), ())
    by_group: dict[str, list[_Bucket]] = {}
    for bucket in buckets:
        by_group.setdefault(bucket.group, []).append(bucket)
    latencies, total_latencies = _percentiles(ranked_rows)
    none: Latencies = [None] * len(PERCENTILES)
    groups = tuple(_group(label, by_group[label], latencies.get(label, none))
                   for label in sorted(by_group))
    baselines: Counter[str] = Counter()
    for bucket in buckets:
        if bucket.baseline_model is not None:
            baselines[bucket.baseline_model] += bucket.tally.requests
    return WindowAggregate(by, _group(TOTAL_LABEL, buckets, total_latencies), groups,
                           tuple(sorted(baselines.items())))

"""The SQL of `Store.aggregate`, for SQLite and PostgreSQL (`aggregate_rows` reads its answers);
also the filters that `Store.query` shares with it (the time window, experiments' arms).

Two queries over the window, in one read transaction, each answering a few rows:

- buckets: `GROUP BY` the group label, the model label and the baseline model (and, in SQLite, the
  scales of the two money columns) with every count and money sum of a `Tally`;
- percentiles: `row_number()` over the latencies of each group and of the whole window, keeping
  only the rows at the nearest ranks k = ceil(p·n/100) of each group's n (the counts the buckets
  found), computed in integers as the reference does, so ties and small groups agree exactly.
  (PostgreSQL's `percentile_disc` computes k from a float product; it is not used.)

Money stays exact. PostgreSQL sums NUMERIC. SQLite keeps money as the Decimal's plain text
(`-?digits[.digits]`), so a value is summed as an integer, its text without the point, grouped by
its scale (digits after the point); `aggregate_rows` turns each sum back into an exact Decimal with
`scale` decimals (so a sum keeps the exponent the reference's Decimal sum has). Texts of up to 18
characters are summed whole. When a longer text is found, or a sum overflows 64 bits (SQLite raises
rather than wraps), the query runs again with every value split into 9-digit chunks summed apart,
each chunk's sum fitting 64 bits for billions of rows. A stored text that is not a plain
decimal (it has a character other than digits, '.' and '-': any other form of a Decimal, such as
1E-7, has one) raises `StoreError`, so a sum is never silently wrong; llmroute writes none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .aggregates import (
    CACHE_SERVED,
    EXPLORED_LABEL,
    NONE_LABEL,
    ROUTED_LABEL,
    check_group_key,
)
from .entry import as_utc
from .migrations import REQUESTS_TABLE

#: Percentiles reported, in `GroupAggregate` order.
PERCENTILES = (50, 95)
#: Digits per integer chunk of a SQLite money text when a value has more than `WHOLE_DIGITS`.
CHUNK_DIGITS = 9
#: Money texts up to this long are summed whole (one chunk): their integers fit 64 bits.
WHOLE_DIGITS = 18
DEFAULT_CHUNKS = 1
#: Not answered by the response cache (`aggregates.CACHE_SERVED`): NULL or another state.
NOT_SERVED = f"(cache IS NULL OR cache NOT IN ({', '.join(repr(s) for s in CACHE_SERVED)}))"
_COMPARED = f"cost_usd IS NOT NULL AND baseline_cost_usd IS NOT NULL AND {NOT_SERVED}"
#: Tally counts: (field, SQL aggregate). NULL (nothing to count) reads as 0.
COUNTS: tuple[tuple[str, str], ...] = (
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
    ("cache_hits", "count(*) FILTER (WHERE cache = 'hit')"),
    ("cache_semantic_hits", "count(*) FILTER (WHERE cache = 'semantic')"),
    ("cache_misses", "count(*) FILTER (WHERE cache = 'miss')"),
    ("cache_bypasses", "count(*) FILTER (WHERE cache = 'bypass')"),
    ("cached_tokens", "sum(cached_tokens)"),
    ("cache_write_tokens", "sum(cache_write_tokens)"),
    ("unpriced", "count(*) FILTER (WHERE unpriced)"),
    ("fallbacks", "count(*) FILTER (WHERE fallback)"),
)
#: Tally money sums: (field, column, condition).
MONEY: tuple[tuple[str, str, str], ...] = (
    ("cost_usd", "cost_usd", "cost_usd IS NOT NULL"),
    ("compared_cost_usd", "cost_usd", _COMPARED),
    ("baseline_cost_usd", "baseline_cost_usd", _COMPARED),
    ("rated_cost_usd", "cost_usd", "cost_usd IS NOT NULL AND user_rating IS NOT NULL"),
    ("judged_cost_usd", "cost_usd", "cost_usd IS NOT NULL AND task_success IS NOT NULL"),
    ("routing_cost_usd", "routing_cost_usd", "routing_cost_usd IS NOT NULL"),
    ("prompt_cache_saved_usd", "prompt_cache_saved_usd", "prompt_cache_saved_usd IS NOT NULL"),
    ("cache_saved_usd", "cache_saved_usd", "cache_saved_usd IS NOT NULL"),
)
MONEY_COLUMNS = ("cost_usd", "baseline_cost_usd", "routing_cost_usd", "prompt_cache_saved_usd",
                 "cache_saved_usd")


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
    if by == "explored":
        return f"CASE WHEN explored THEN '{EXPLORED_LABEL}' ELSE '{ROUTED_LABEL}' END"
    return dialect.day if by == "day" else _label(_GROUP_COLUMNS[by])


def where_clause(dialect: SqlDialect, since: datetime | None, until: datetime | None,
                 params: list[Any], experiments: Sequence[str] | None = None,
                 key: str | None = None, cache: Sequence[str] | None = None) -> str:
    """` WHERE ...` (or nothing) for since <= ts < until, with `key` the requests of that gateway
    key only (the (key_name, ts) index), with `experiments`, an `experiment_arm` of one of
    them (it starts with "name:"; exact characters, whereas SQLite's LIKE ignores ASCII case),
    and with `cache`, a response-cache state among those; the values are appended to `params`."""
    tests: list[str] = []
    if key is not None:
        params.append(key)
        tests.append(f"key_name = {dialect.placeholder(len(params))}")
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
    if cache is not None:
        states: list[str] = []
        for state in cache:
            params.append(state)
            states.append(dialect.placeholder(len(params)))
        tests.append(f"cache IN ({', '.join(states)})" if states else "FALSE")
    return f" WHERE {' AND '.join(tests)}" if tests else ""


# -- SQLite money as integer chunks ------------------------------------------------------------
def _scale(column: str) -> str:
    return f"CASE instr({column}, '.') WHEN 0 THEN 0 ELSE length({column}) - instr({column}, '.') END"


def _chunk(column: str, index: int, chunks: int) -> str:
    if chunks == 1:  # the whole text without its point: CAST('-00123' AS INTEGER) is -123
        return f"CAST(replace({column}, '.', '') AS INTEGER)"
    digits = f"replace(replace({column}, '-', ''), '.', '')"
    sign = f"CASE WHEN substr({column}, 1, 1) = '-' THEN -1 ELSE 1 END"
    piece = f"substr({digits}, {-CHUNK_DIGITS * (index + 1)}, {CHUNK_DIGITS})"
    return f"{sign} * CAST({piece} AS INTEGER)"


def _money_sums(dialect: SqlDialect, chunks: int) -> list[str]:
    if not dialect.text_money:
        return [f"sum({column}) FILTER (WHERE {test})" for _, column, test in MONEY]
    return [f"sum({_chunk(column, i, chunks)}) FILTER (WHERE {test})"
            for _, column, test in MONEY for i in range(chunks)]


def _text_checks() -> list[str]:
    """Per bucket: the longest text of each money column, and how many texts hold a character no
    plain decimal has (what any other form of a Decimal has: E, Infinity, NaN) or are empty."""
    odd = " OR ".join(f"{c} GLOB '*[^0-9.-]*' OR {c} = ''" for c in MONEY_COLUMNS)
    return [*(f"max(length({c}))" for c in MONEY_COLUMNS), f"count(*) FILTER (WHERE {odd})"]


def bucket_sql(dialect: SqlDialect, by: str, where: str, chunks: int = DEFAULT_CHUNKS) -> str:
    """The buckets query (see the module docstring); `aggregate_rows.read_bucket` reads its rows."""
    keys = [group_label(dialect, by), _label("model"),
            "CASE WHEN baseline_cost_usd IS NOT NULL THEN NULLIF(baseline_model, '') END"]
    if dialect.text_money:
        keys += [_scale(c) for c in MONEY_COLUMNS]
    columns = [*keys, *(sql for _, sql in COUNTS), *_money_sums(dialect, chunks)]
    if dialect.text_money:
        columns += _text_checks()
    positions = ", ".join(str(i) for i in range(1, len(keys) + 1))
    return f"SELECT {', '.join(columns)} FROM {REQUESTS_TABLE}{where} GROUP BY {positions}"


def _ints(values: Iterable[int]) -> str:
    return ", ".join(str(int(v)) for v in sorted(set(values))) or "0"


def percentile_sql(dialect: SqlDialect, by: str, where: str, ranks: Iterable[int],
                   total_ranks: Iterable[int]) -> str:
    """The window's rows at the given ranks of latency_s within their group (rn) or within the
    whole window (trn); the ranks come from the counts the buckets query found."""
    label = group_label(dialect, by)
    ranked = (f"SELECT {label} AS g, latency_s, "
              f"row_number() OVER (PARTITION BY {label} ORDER BY latency_s) AS rn, "
              f"row_number() OVER (ORDER BY latency_s) AS trn FROM {REQUESTS_TABLE}{where}")
    return (f"SELECT g, latency_s, rn, trn FROM ({ranked}) AS ranked "
            f"WHERE rn IN ({_ints(ranks)}) OR trn IN ({_ints(total_ranks)})")

"""Reading the answers of `aggregate_sql`'s queries: bucket rows into tallies (SQLite's integer
chunks of money back into exact Decimals), the ranks the percentile query must keep, and the fold
of buckets and ranked latencies into a canonical `WindowAggregate`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .aggregate_sql import CHUNK_DIGITS, COUNTS, MONEY, MONEY_COLUMNS, PERCENTILES, WHOLE_DIGITS
from .aggregates import TOTAL_LABEL, ZERO, GroupAggregate, Tally, WindowAggregate, empty_group

Latencies = list[float | None]


class MoneyTextError(ValueError):
    """A SQLite money column holds text that is not a plain decimal."""


@dataclass(frozen=True)
class Bucket:
    """One row of the buckets query: its group, model label, baseline model and tally."""

    group: str
    model: str
    baseline_model: str | None
    tally: Tally


def chunks_needed(rows: Iterable[Sequence[Any]]) -> int:
    """How many chunks the longest SQLite money text in the buckets' rows needs: 1 (summed whole)
    up to `WHOLE_DIGITS` characters. Raises MoneyTextError when a text is not a plain decimal."""
    longest = 0
    for row in rows:
        *lengths, odd = row[-(len(MONEY_COLUMNS) + 1):]
        if odd:
            raise MoneyTextError(f"{odd} money value(s) stored as text that is not a plain decimal")
        longest = max([longest, *(int(n) for n in lengths if n is not None)])
    return 1 if longest <= WHOLE_DIGITS else -(-longest // CHUNK_DIGITS)


def tally_from(counts: dict[str, int], money: dict[str, Decimal | None]) -> Tally:
    """A tally from its counts and money sums by field name (a money sum None: nothing summed)."""
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
        routing_cost_usd=cash("routing_cost_usd"), cache_hits=counts["cache_hits"],
        cache_semantic_hits=counts["cache_semantic_hits"], cache_misses=counts["cache_misses"],
        cache_bypasses=counts["cache_bypasses"], cached_tokens=counts["cached_tokens"],
        cache_write_tokens=counts["cache_write_tokens"],
        prompt_cache_saved_usd=cash("prompt_cache_saved_usd"), cache_saved_usd=cash("cache_saved_usd"),
        unpriced=counts["unpriced"], fallbacks=counts["fallbacks"],
    )


def _chunked(sums: Sequence[Any], scale: int) -> Decimal | None:
    """The exact Decimal of integer chunk sums (lowest chunk first) with `scale` decimals; None
    when no row was summed (so an empty sum adds nothing, not a 0 with `scale` decimals)."""
    if all(value is None for value in sums):
        return None
    number = sum(int(value or 0) * 10 ** (CHUNK_DIGITS * i) for i, value in enumerate(sums))
    return Decimal(f"{number}E-{scale}")


def _money(values: Sequence[Any], scales: Sequence[Any], chunks: int | None
           ) -> dict[str, Decimal | None]:
    if chunks is None:
        return {name: value for (name, _, _), value in zip(MONEY, values, strict=True)}
    by_column = dict(zip(MONEY_COLUMNS, scales, strict=True))
    return {name: _chunked(values[i * chunks:(i + 1) * chunks], int(by_column[column] or 0))
            for i, (name, column, _) in enumerate(MONEY)}


def read_bucket(row: Sequence[Any], chunks: int | None) -> Bucket:
    """A buckets row; `chunks` None: NUMERIC money (PostgreSQL), else SQLite's integer chunks."""
    keys = 3 if chunks is None else 3 + len(MONEY_COLUMNS)
    counts = row[keys:keys + len(COUNTS)]
    money = row[keys + len(COUNTS):keys + len(COUNTS) + len(MONEY) * (chunks or 1)]
    tally = tally_from({name: int(value or 0) for (name, _), value in zip(COUNTS, counts, strict=True)},
                   _money(money, row[3:keys], chunks))
    return Bucket(str(row[0]), str(row[1]), None if row[2] is None else str(row[2]), tally)


def nearest_ranks(n: int) -> tuple[int, ...]:
    """The rank k = ceil(p·n/100) of each of `PERCENTILES` among n values."""
    return tuple((p * n + 99) // 100 for p in PERCENTILES)


def _sizes(buckets: Iterable[Bucket]) -> Counter[str]:
    sizes: Counter[str] = Counter()
    for bucket in buckets:
        sizes[bucket.group] += bucket.tally.requests
    return sizes


def ranks_wanted(buckets: Sequence[Bucket]) -> tuple[set[int], set[int]]:
    """The ranks the percentile query keeps: within groups, and within the whole window."""
    sizes = _sizes(buckets)
    return ({k for n in sizes.values() for k in nearest_ranks(n)},
            set(nearest_ranks(sum(sizes.values()))))


def _latencies(buckets: Sequence[Bucket], rows: Iterable[Sequence[Any]]
               ) -> tuple[dict[str, Latencies], Latencies]:
    sizes = _sizes(buckets)
    wanted = {group: nearest_ranks(n) for group, n in sizes.items()}
    total_wanted = nearest_ranks(sum(sizes.values()))
    groups: dict[str, Latencies] = {group: [None] * len(PERCENTILES) for group in sizes}
    total: Latencies = [None] * len(PERCENTILES)
    for group, latency, rn, trn in rows:
        label = str(group)
        for i, k in enumerate(wanted.get(label, ())):
            if rn == k:
                groups[label][i] = float(latency)
        for i, k in enumerate(total_wanted):
            if trn == k:
                total[i] = float(latency)
    return groups, total


def _group(label: str, buckets: Iterable[Bucket], latencies: Latencies) -> GroupAggregate:
    tally = Tally()
    models: Counter[str] = Counter()
    for bucket in buckets:
        tally += bucket.tally
        models[bucket.model] += bucket.tally.requests
    p50, p95 = latencies
    return GroupAggregate(label, tally, p50, p95, tuple(sorted(models.items())))


def fold(by: str, buckets: Sequence[Bucket], ranked_rows: Iterable[Sequence[Any]]) -> WindowAggregate:
    """The window's numbers from its buckets and the rows of the percentile query."""
    if not buckets:
        return WindowAggregate(by, empty_group(TOTAL_LABEL), (), ())
    by_group: dict[str, list[Bucket]] = {}
    baselines: Counter[str] = Counter()
    for bucket in buckets:
        by_group.setdefault(bucket.group, []).append(bucket)
        if bucket.baseline_model is not None:
            baselines[bucket.baseline_model] += bucket.tally.requests
    latencies, total_latencies = _latencies(buckets, ranked_rows)
    groups = tuple(_group(label, by_group[label], latencies[label]) for label in sorted(by_group))
    return WindowAggregate(by, _group(TOTAL_LABEL, buckets, total_latencies), groups,
                           tuple(sorted(baselines.items())))

"""A window's numbers from rollups: what `Store.rollups` answers (`RollupWindow`), and the fold of
the rollup queries' rows and the raw edge rows into it.

A `RollupWindow` carries more than a `WindowAggregate`: each group's `Moments` and its whole latency
histogram (so an experiment's intervals and any percentile can be read from it). `aggregate()` turns
it into the `WindowAggregate` a report is made from: the tallies exactly those of the raw rows, the
percentiles within the sketch's 1 % (`sketch`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .aggregate_rows import tally_from
from .aggregates import NONE_LABEL, TOTAL_LABEL, GroupAggregate, Tally, WindowAggregate
from .rollups import MOMENT_FIELDS, MONEY_FIELDS, ZERO_MOMENTS, Fact, Moments, moments_of, tally_of
from .rows import Dialect
from .sketch import Histogram, bin_of, merge_into, nearest_rank, pack, unpack


@dataclass(frozen=True)
class RollupGroup:
    """One group of a window: its tally, moments, latency histogram (bin order) and model mix."""

    label: str
    tally: Tally
    moments: Moments
    latency: tuple[tuple[int, int], ...]
    models: tuple[tuple[str, int], ...]

    def histogram(self) -> Histogram:
        return dict(self.latency)

    def aggregate(self) -> GroupAggregate:
        """The report's numbers of this group (percentiles within the sketch's bound)."""
        hist = self.histogram()
        return GroupAggregate(self.label, self.tally, nearest_rank(hist, 50), nearest_rank(hist, 95),
                              self.models)


@dataclass(frozen=True)
class RollupWindow:
    """A window's numbers grouped `by` a rollup key: the total, the groups (label order) and how
    many compared entries name each baseline model (name order)."""

    by: str
    total: RollupGroup
    groups: tuple[RollupGroup, ...]
    baseline_models: tuple[tuple[str, int], ...]

    def aggregate(self) -> WindowAggregate:
        return WindowAggregate(self.by, self.total.aggregate(),
                               tuple(g.aggregate() for g in self.groups), self.baseline_models)


def _label(value: Any) -> str:
    return str(value) if value else NONE_LABEL


class WindowFold:
    """Accumulates a window's rows, then `result()`."""

    def __init__(self, by: str) -> None:
        self.by = by
        self.tallies: dict[str, tuple[Tally, Moments]] = {}
        self.models: dict[str, Counter[str]] = {}
        self.baselines: Counter[str] = Counter()
        self.latency: dict[str, Histogram] = {}

    def _tally(self, group: str, model: str, baseline: str, tally: Tally, moments: Moments) -> None:
        old = self.tallies.get(group)
        self.tallies[group] = (tally, moments) if old is None else (old[0] + tally, old[1] + moments)
        self.models.setdefault(group, Counter())[_label(model)] += tally.requests
        if baseline:
            self.baselines[baseline] += tally.requests

    def add_tally(self, group: Any, model: Any, baseline: Any, tally: Tally, moments: Moments) -> None:
        """One group's numbers (a row of a "tallies" `rollup_queries.WindowQuery`)."""
        self._tally(_label(group), str(model or ""), str(baseline or ""), tally, moments)

    def add_latency_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Rows of a "latency:<by>" `rollup_queries.WindowQuery`: (label, bin, count). The window's
        histogram is their sum (the groups of one grouping partition the window)."""
        for label, index, count in rows:
            hist = self.latency.setdefault(_label(label), {})
            hist[int(index)] = hist.get(int(index), 0) + int(count)

    def add_facts(self, facts: Iterable[Fact], group_of: Callable[[Fact], str]) -> None:
        """Raw entries of the window's edges."""
        for fact in facts:
            group = _label(group_of(fact))
            baseline = fact.baseline_model if fact.baseline_cost_usd is not None else ""
            self._tally(group, fact.model, baseline, tally_of(fact), moments_of(fact))
            index = bin_of(fact.latency_s)
            hist = self.latency.setdefault(group, {})
            hist[index] = hist.get(index, 0) + 1

    def result(self) -> RollupWindow:
        groups = []
        for label in sorted(self.tallies):
            tally, moments = self.tallies[label]
            if tally.requests <= 0:
                continue
            hist = self.latency.get(label) or {}
            groups.append(RollupGroup(label, tally, moments,
                                      tuple(sorted((i, n) for i, n in hist.items() if n)),
                                      tuple(sorted((m, n) for m, n in self.models[label].items() if n))))
        total_tally, total_moments, models = Tally(), ZERO_MOMENTS, Counter[str]()
        for group in groups:
            total_tally += group.tally
            total_moments += group.moments
            models.update(dict(group.models))
        total_hist = {i: n for i, n in merge_histograms(groups).items() if n}
        total = RollupGroup(TOTAL_LABEL, total_tally, total_moments, tuple(sorted(total_hist.items())),
                            tuple(sorted(models.items())))
        return RollupWindow(self.by, total, tuple(groups),
                            tuple(sorted((b, n) for b, n in self.baselines.items() if n)))


#: How many columns hold a row's money, and how to read them into `MONEY_FIELDS` order.
MoneyReader = tuple[int, Callable[[Sequence[Any]], list[Decimal]]]


def read_numbers(numbers: Sequence[Any], count_fields: Sequence[str], money: MoneyReader
                 ) -> tuple[Tally, Moments]:
    """The tally and moments at the end of a "tallies" row (counts, money, moments in order)."""
    n_counts, (n_money, read) = len(count_fields), money
    counts = dict(zip(count_fields, (int(v or 0) for v in numbers[:n_counts]), strict=True))
    sums: dict[str, Decimal | None] = dict(zip(
        MONEY_FIELDS, read(numbers[n_counts:n_counts + n_money]), strict=True))
    moments = Moments(*(type(getattr(ZERO_MOMENTS, f))(v or 0) for f, v in
                        zip(MOMENT_FIELDS, numbers[n_counts + n_money:], strict=True)))
    return tally_from(counts, sums), moments


class WindowFolds:
    """One `WindowFold` per grouping, fed by the rows of `rollup_queries.window_queries(bys)`."""

    def __init__(self, bys: Sequence[str], count_fields: Sequence[str], money: MoneyReader) -> None:
        self.bys = tuple(bys)
        self.folds = {by: WindowFold(by) for by in self.bys}
        self.count_fields, self.money = count_fields, money

    def add(self, kind: str, rows: Iterable[Sequence[Any]], sign: int = 1) -> None:
        """Rows of a `rollup_queries.WindowQuery` of this kind (sign -1: taken away)."""
        k = len(self.bys)
        if kind == "tallies":
            for row in rows:
                tally, moments = read_numbers(row[k + 2:], self.count_fields, self.money)
                if sign < 0:
                    tally, moments = -tally, -moments
                for i, by in enumerate(self.bys):
                    self.folds[by].add_tally(row[i], row[k], row[k + 1], tally, moments)
        elif kind == "latencies":
            for row in rows:
                index, count = int(row[k]), sign * int(row[k + 1])
                for i, by in enumerate(self.bys):
                    self.folds[by].add_latency_rows(((row[i], index, count),))
        elif kind.startswith("histograms:"):
            fold = self.folds[kind.removeprefix("histograms:")]
            for label, blob in rows:
                hist = unpack(blob)
                merge_into(fold.latency.setdefault(_label(label), {}),
                           hist if sign > 0 else {i: -n for i, n in hist.items()})
        else:
            raise ValueError(f"unknown window query kind {kind!r}")

    def results(self) -> dict[str, RollupWindow]:
        return {by: fold.result() for by, fold in self.folds.items()}


def fact_from_row(row: Sequence[Any], dialect: Dialect) -> Fact:
    """The fact of a raw row read as `rollup_sql.FACT_COLUMNS`."""
    (request_id, ts, model, tier, policy, key, arm, status, latency, cost, baseline_cost,
     baseline_model, rating, success, routing_cost, cache, cached, written, prompt_saved,
     saved, unpriced, fallback) = row
    return Fact(str(request_id), dialect.time_in(ts), model or "", tier or "", policy or "", key or "",
                arm or "", str(status), float(latency), dialect.money_in(cost),
                dialect.money_in(baseline_cost), baseline_model or "",
                None if rating is None else int(rating),
                None if success is None else dialect.flag_in(success),
                dialect.money_in(routing_cost), None if cache is None else str(cache),
                None if cached is None else int(cached), None if written is None else int(written),
                dialect.money_in(prompt_saved), dialect.money_in(saved),
                dialect.flag_in(unpriced), dialect.flag_in(fallback))


def group_of(by: str) -> Callable[[Fact], str]:
    """The label of a fact's group (day: the UTC date of its time)."""
    if by == "day":
        return lambda fact: fact.ts.date().isoformat()
    column = {"model": "model", "tier": "tier", "policy": "policy", "key": "key", "arm": "arm"}[by]
    return lambda fact: str(getattr(fact, column))


def regroup(window: RollupWindow, by: str, label_of: Callable[[str], str]) -> RollupWindow:
    """The same window with its groups merged by `label_of(group label)` (e.g. keys into their
    teams): tallies, moments, histograms and model mixes add up."""
    merged: dict[str, list[RollupGroup]] = {}
    for group in window.groups:
        merged.setdefault(label_of(group.label) or NONE_LABEL, []).append(group)
    groups = []
    for label in sorted(merged):
        members = merged[label]
        tally, moments, models = Tally(), ZERO_MOMENTS, Counter[str]()
        for member in members:
            tally += member.tally
            moments += member.moments
            models.update(dict(member.models))
        groups.append(RollupGroup(label, tally, moments, tuple(sorted(merge_histograms(members).items())),
                                  tuple(sorted(models.items()))))
    return RollupWindow(by, window.total, tuple(groups), window.baseline_models)


def histogram_rows(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, Any, bytes]]:
    """Rows of (a, b, bin, count) in (a, b) order as (a, b, packed histogram): a rebuild's hour
    histograms from `rollup_sql.rebuild_hour_bins_sql`."""
    for (a, b), group in itertools.groupby(rows, key=lambda row: (row[0], row[1])):
        yield a, b, pack({int(row[2]): int(row[3]) for row in group})


def merged_rows(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[Any, Any, Any, bytes]]:
    """Rows of (a, b, c, packed histogram) in (a, b, c) order as one merged histogram per
    (a, b, c): a rebuild's day histograms from `rollup_sql.rebuild_day_hists_sql`."""
    for (a, b, c), group in itertools.groupby(rows, key=lambda row: (row[0], row[1], row[2])):
        merged: Histogram = {}
        for row in group:
            merge_into(merged, unpack(row[3]))
        yield a, b, c, pack(merged)


def merge_histograms(groups: Iterable[RollupGroup]) -> Histogram:
    """The histogram of several groups together."""
    found: Histogram = {}
    for group in groups:
        merge_into(found, dict(group.latency))
    return found

"""A batch's rollup delta (`delta_of`, `delta_of_entries`): what newly written entries add to the
rollups (`rollups`), per hour and day and dimensions their tally and moments, and per hour and day,
dimension and value their latency histogram.

Issue 17: the stores' write path takes the delta straight from the entries (`delta_of_entries`),
without a `Fact` per entry, and each group's tally, moments and histogram in one pass
(`numbers_of`): the same sums in the same order, so the same delta (a test compares them with the
earlier `delta_of` over facts, `tally_many` and `moments_many`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from .aggregates import CACHE_SERVED, EXACT, ZERO, Tally
from .entry import LedgerEntry
from .rollups import (
    ALL,
    CACHE_COUNTS,
    EARLIEST,
    Delta,
    Fact,
    LatencyKey,
    Moments,
    RollupKey,
    _add_tally,
    _baseline,
    floor_to,
)
from .sketch import GAMMA, MIN_LATENCY_S, ZERO_BIN, Histogram

#: `sketch.bin_of`'s divisor, computed as it computes it (`bin_of` is inlined in `numbers_of`).
_LOG_GAMMA = math.log(GAMMA)


class Counted(Protocol):
    """What a tally, moments and a latency histogram read of one entry: a `Fact`, or the
    `LedgerEntry` itself, which holds the same values under the same names."""

    @property
    def status(self) -> str: ...
    @property
    def latency_s(self) -> float: ...
    @property
    def cost_usd(self) -> Decimal | None: ...
    @property
    def baseline_cost_usd(self) -> Decimal | None: ...
    @property
    def user_rating(self) -> int | None: ...
    @property
    def task_success(self) -> bool | None: ...
    @property
    def routing_cost_usd(self) -> Decimal | None: ...
    @property
    def cache(self) -> str | None: ...
    @property
    def cached_tokens(self) -> int | None: ...
    @property
    def cache_write_tokens(self) -> int | None: ...
    @property
    def prompt_cache_saved_usd(self) -> Decimal | None: ...
    @property
    def cache_saved_usd(self) -> Decimal | None: ...
    @property
    def unpriced(self) -> bool: ...
    @property
    def fallback(self) -> bool: ...


#: A delta's group: the hour, then the rollup key's model, tier, policy, key, arm, baseline model.
Group = tuple[datetime, str, str, str, str, str, str]


def delta_of(facts: Iterable[Fact]) -> Delta:
    """What newly written entries add to the rollups: per hour and day and dimensions their
    tally and moments, and per hour and day, dimension and value their latency histogram."""
    groups: dict[Group, list[Counted]] = {}
    hours: dict[tuple[int, int], datetime] = {}  # a batch spans an hour or two: floor each once
    for fact in facts:
        since = fact.ts - EARLIEST  # exact (a timedelta), unlike a float timestamp
        slot = (since.days, since.seconds // 3600)
        hour = hours.get(slot)
        if hour is None:
            hour = hours[slot] = floor_to(fact.ts, "hour")
        group = (hour, fact.model, fact.tier, fact.policy, fact.key, fact.arm, _baseline(fact))
        groups.setdefault(group, []).append(fact)
    return _grouped(groups)


def delta_of_entries(entries: Iterable[LedgerEntry]) -> Delta:
    """`delta_of([fact_of(entry) for entry in entries])` without a `Fact` per entry (issue 17:
    building one costs ~20 k instructions): the entries grouped by the values `fact_of` would
    give (None as ''; `ts` is UTC in every entry, and the hour is floored in UTC either way), their
    numbers read from the entries themselves (`Counted`)."""
    groups: dict[Group, list[Counted]] = {}
    hours: dict[tuple[int, int], datetime] = {}
    for entry in entries:
        since = entry.ts - EARLIEST
        slot = (since.days, since.seconds // 3600)
        hour = hours.get(slot)
        if hour is None:
            hour = hours[slot] = floor_to(entry.ts, "hour")
        baseline = (entry.baseline_model or "") if entry.baseline_cost_usd is not None else ""
        group = (hour, entry.model or "", entry.tier or "", entry.policy or "",
                 entry.key_name or "", entry.experiment_arm or "", baseline)
        groups.setdefault(group, []).append(entry)
    return _grouped(groups)


def _grouped(groups: dict[Group, list[Counted]]) -> Delta:
    """The delta of entries already grouped (in the order the groups were met)."""
    delta = Delta({}, {})
    for (hour, model, tier, policy, key, arm, baseline), members in groups.items():
        tally, moments, counts = numbers_of(members)
        values: dict[str, str] = {ALL: "", "model": model, "tier": tier, "policy": policy,
                                  "key": key, "arm": arm}
        for grain, start in (("hour", hour), ("day", floor_to(hour, "day"))):
            _add_tally(delta, RollupKey(grain, start, model, tier, policy, key, arm, baseline),
                       tally, moments)
            for dim, value in values.items():
                hist = delta.latencies.setdefault(LatencyKey(grain, start, dim, value), {})
                for index, count in counts.items():
                    hist[index] = hist.get(index, 0) + count
    return delta


def numbers_of(members: Sequence[Counted]) -> tuple[Tally, Moments, Histogram]:
    """`tally_many`, `moments_many` and the latency histogram (`sketch.bin_of`) of the same
    entries in one pass: every sum is taken over the entries in the same order, so the values are
    the same (issue 17: one loop, no `Tally` replaced)."""
    errors = judged = successes = priced = compared = rated = points = rated_points = 0
    judged_successes = unpriced = fallbacks = cached = written = 0
    cost = compared_cost = baseline = rated_cost = judged_cost = routing = ZERO
    prompt_saved = saved = ZERO
    cost_sq = pair_cost_sq = pair_cross = 0.0
    rating_sq = pair_n = pair_rating_sq = 0
    states = dict.fromkeys(CACHE_COUNTS, 0)
    counts: Histogram = {}
    add, log, ceil = EXACT.add, math.log, math.ceil
    for f in members:
        c, r, ok = f.cost_usd, f.user_rating, f.task_success
        latency = f.latency_s  # sketch.bin_of, inline
        index = ZERO_BIN if not latency >= MIN_LATENCY_S else ceil(log(latency) / _LOG_GAMMA)
        counts[index] = counts.get(index, 0) + 1
        errors += f.status == "error"
        unpriced += f.unpriced
        fallbacks += f.fallback
        if f.cache is not None:
            states[f.cache] += 1
        cached += f.cached_tokens or 0
        written += f.cache_write_tokens or 0
        if f.prompt_cache_saved_usd is not None:
            prompt_saved = add(prompt_saved, f.prompt_cache_saved_usd)
        if f.cache_saved_usd is not None:
            saved = add(saved, f.cache_saved_usd)
        if f.routing_cost_usd is not None:
            routing = add(routing, f.routing_cost_usd)
        if ok is not None:
            judged += 1
            successes += ok is True
        if r is not None:
            rated += 1
            points += r
            rating_sq += r * r
        if c is None:
            continue
        priced += 1
        cost = add(cost, c)
        c_float = float(c)
        square = c_float * c_float
        cost_sq += square
        if f.baseline_cost_usd is not None and f.cache not in CACHE_SERVED:
            compared += 1
            compared_cost = add(compared_cost, c)
            baseline = add(baseline, f.baseline_cost_usd)
        if r is not None:
            rated_cost = add(rated_cost, c)
            rated_points += r
            pair_n += 1
            pair_cost_sq += square
            pair_rating_sq += r * r
            pair_cross += c_float * r
        if ok is not None:
            judged_cost = add(judged_cost, c)
            judged_successes += ok is True
    tally = Tally(
        requests=len(members), errors=errors, judged=judged, successes=successes, priced=priced,
        cost_usd=cost, compared=compared, compared_cost_usd=compared_cost,
        baseline_cost_usd=baseline, rated=rated, rating_points=points, rated_cost_usd=rated_cost,
        rated_cost_points=rated_points, judged_cost_usd=judged_cost,
        judged_cost_successes=judged_successes, routing_cost_usd=routing,
        cache_hits=states["hit"], cache_semantic_hits=states["semantic"],
        cache_misses=states["miss"], cache_bypasses=states["bypass"], cached_tokens=cached,
        cache_write_tokens=written, prompt_cache_saved_usd=prompt_saved, cache_saved_usd=saved,
        unpriced=unpriced, fallbacks=fallbacks)
    moments = Moments(cost_sq, rating_sq, pair_n, pair_cost_sq, pair_rating_sq, pair_cross)
    return tally, moments, counts

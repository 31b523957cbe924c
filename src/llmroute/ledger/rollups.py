"""Rollups: the ledger's numbers per hour and per day, kept by the store as entries are written and
as feedback arrives, so that views over long windows read a few thousand rows instead of millions.

Pure: what an entry adds to the rollups (`rollup_delta.delta_of`), what a feedback change moves
(`feedback_delta`); how a window splits into raw edges, hours and days is `rollup_cover`. The stores
apply deltas in the transaction that writes the entries or the feedback (`rollup_sql`), so the
rollups always agree with the raw rows they summarise.

Two tables, two grains each ("hour" and "day", UTC):

- `llmroute_rollups`: per (grain, start, model, tier, policy, key, experiment arm, baseline model)
  the `Tally` of the entries (exact money) and their `Moments` (the sums of squares and products an
  experiment's intervals need). A missing value is ''; the baseline model is set only on compared
  entries (both costs known), as the report counts baselines.
- `llmroute_rollup_latency`: per (grain, start, dimension, value) the histogram of the entries'
  latencies in the sketch's bins (`sketch`, stored packed), for the dimension "all" (value '') and
  for each of `DIMENSIONS`: percentiles within 1 % for any one grouping. One row per value keeps a
  batch's writes to a few dozen rows.

A window [since, until) is read from day rollups, hour rollups and raw rows as `rollup_cover.cover`
splits it: the tallies are exactly those of the raw rows, the percentiles within the sketch's
bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from ..frozen import quick_init
from .aggregates import CACHE_SERVED, EXACT, ZERO, Tally
from .entry import LedgerEntry
from .sketch import Histogram

GRAINS = ("hour", "day")
#: The dimensions a latency histogram is kept for, besides "all"; each names a rollup column.
DIMENSIONS: dict[str, str] = {"model": "model", "tier": "tier", "policy": "policy", "key": "key_name",
                              "arm": "experiment_arm"}
ALL = "all"
#: Every dimension a latency histogram is kept for.
LATENCY_DIMS: tuple[str, ...] = (ALL, *DIMENSIONS)
#: Open window edges stand for these times (both aligned to a day).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@quick_init  # one per written entry: the generated __init__'s 22 object.__setattr__ cost ~25 k instructions
@dataclass(frozen=True)
class Fact:
    """What rollups need of an entry (the stores read exactly these columns back for feedback)."""

    request_id: str
    ts: datetime
    model: str
    tier: str
    policy: str
    key: str
    arm: str
    status: str
    latency_s: float
    cost_usd: Decimal | None
    baseline_cost_usd: Decimal | None
    baseline_model: str
    user_rating: int | None
    task_success: bool | None
    routing_cost_usd: Decimal | None
    #: The response cache's mark and the provider prompt cache's numbers (issue 15).
    cache: str | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    prompt_cache_saved_usd: Decimal | None = None
    cache_saved_usd: Decimal | None = None
    #: Issue 16: `LedgerEntry.unpriced` and `.fallback`.
    unpriced: bool = False
    fallback: bool = False

    def with_feedback(self, rating: int | None, success: bool | None) -> Fact:
        """This fact after feedback (None leaves a value as it is, as `Store.feedback` does)."""
        return Fact(**{**{f.name: getattr(self, f.name) for f in fields(self)},
                       "user_rating": self.user_rating if rating is None else rating,
                       "task_success": self.task_success if success is None else success})


def fact_of(entry: LedgerEntry) -> Fact:
    """An entry's fact."""
    return Fact(entry.request_id, entry.ts.astimezone(UTC), entry.model or "", entry.tier or "",
                entry.policy or "", entry.key_name or "", entry.experiment_arm or "", entry.status,
                entry.latency_s, entry.cost_usd, entry.baseline_cost_usd, entry.baseline_model or "",
                entry.user_rating, entry.task_success, entry.routing_cost_usd, entry.cache,
                entry.cached_tokens, entry.cache_write_tokens, entry.prompt_cache_saved_usd,
                entry.cache_saved_usd, entry.unpriced, entry.fallback)


@dataclass(frozen=True)
class Moments:
    """Sums of squares and products over a set of entries (floats: statistics, not accounts):
    Σcost² over priced, Σrating² over rated, and over the entries both priced and rated their
    number, Σcost², Σrating² and Σcost·rating. With `Tally`'s sums they give the variances and the
    delta-method ratio interval of an experiment's arms."""

    cost_sq: float = 0.0
    rating_sq: int = 0
    pair_n: int = 0
    pair_cost_sq: float = 0.0
    pair_rating_sq: int = 0
    pair_cross: float = 0.0

    def __add__(self, other: Moments) -> Moments:
        return Moments(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __neg__(self) -> Moments:
        return Moments(*(-getattr(self, f.name) for f in fields(self)))


ZERO_MOMENTS = Moments()
MOMENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Moments))
TALLY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Tally))
MONEY_FIELDS: tuple[str, ...] = ("cost_usd", "compared_cost_usd", "baseline_cost_usd",
                                 "rated_cost_usd", "judged_cost_usd", "routing_cost_usd",
                                 "prompt_cache_saved_usd", "cache_saved_usd")
#: `Tally`'s count of each response-cache state.
CACHE_COUNTS: dict[str, str] = {"hit": "cache_hits", "semantic": "cache_semantic_hits",
                                "miss": "cache_misses", "bypass": "cache_bypasses"}


def tally_of(fact: Fact) -> Tally:
    """The tally of one entry (`reports.aggregate.tally` of [entry])."""
    return tally_many((fact,))


def moments_of(fact: Fact) -> Moments:
    """The moments of one entry."""
    return moments_many((fact,))


class RollupKey(NamedTuple):
    """One row of `llmroute_rollups`."""

    grain: str
    start: datetime
    model: str
    tier: str
    policy: str
    key: str
    arm: str
    baseline_model: str


class LatencyKey(NamedTuple):
    """One row of `llmroute_rollup_latency` (its histogram: `sketch.pack`)."""

    grain: str
    start: datetime
    dim: str
    value: str


def floor_to(ts: datetime, grain: str) -> datetime:
    """The start of the hour or day (UTC) holding `ts`."""
    ts = ts.astimezone(UTC)
    if grain == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_to(ts: datetime, grain: str) -> datetime:
    """The first hour or day start at or after `ts`."""
    floor = floor_to(ts, grain)
    return floor if floor == ts else floor + (HOUR if grain == "hour" else DAY)


@dataclass
class Delta:
    """What to add to the rollups (counts may be negative: feedback takes an old state away)."""

    tallies: dict[RollupKey, tuple[Tally, Moments]]
    latencies: dict[LatencyKey, Histogram]

    def __bool__(self) -> bool:
        return bool(self.tallies or self.latencies)


def _baseline(fact: Fact) -> str:
    return fact.baseline_model if fact.baseline_cost_usd is not None else ""


def _add_tally(delta: Delta, key: RollupKey, tally: Tally, moments: Moments) -> None:
    old = delta.tallies.get(key)
    delta.tallies[key] = (tally, moments) if old is None else (old[0] + tally, old[1] + moments)


def _add(delta: Delta, fact: Fact, sign: int) -> None:
    """One entry's tallies, added or (sign < 0) taken away, in its hour and its day."""
    tally, moments = tally_of(fact), moments_of(fact)
    if sign < 0:
        tally, moments = -tally, -moments
    for grain in GRAINS:
        _add_tally(delta, RollupKey(grain, floor_to(fact.ts, grain), fact.model, fact.tier,
                                    fact.policy, fact.key, fact.arm, _baseline(fact)), tally, moments)


def _cache_tally(facts: Sequence[Fact]) -> Tally:
    """The caching numbers of several entries (`Tally`'s cache fields; the others 0)."""
    states = dict.fromkeys(CACHE_COUNTS.values(), 0)
    cached = written = 0
    prompt_saved = saved = ZERO
    for f in facts:
        if f.cache is not None:
            states[CACHE_COUNTS[f.cache]] += 1
        cached += f.cached_tokens or 0
        written += f.cache_write_tokens or 0
        if f.prompt_cache_saved_usd is not None:
            prompt_saved = EXACT.add(prompt_saved, f.prompt_cache_saved_usd)
        if f.cache_saved_usd is not None:
            saved = EXACT.add(saved, f.cache_saved_usd)
    return Tally(cache_hits=states["cache_hits"], cache_semantic_hits=states["cache_semantic_hits"],
                 cache_misses=states["cache_misses"], cache_bypasses=states["cache_bypasses"],
                 cached_tokens=cached, cache_write_tokens=written,
                 prompt_cache_saved_usd=prompt_saved, cache_saved_usd=saved)


def tally_many(facts: Sequence[Fact]) -> Tally:
    """The tally of several entries (`tally_of` summed, without one object per entry)."""
    errors = judged = successes = priced = compared = rated = points = rated_points = 0
    judged_successes = 0
    cost = compared_cost = baseline = rated_cost = judged_cost = routing = ZERO
    for f in facts:
        c, r, ok = f.cost_usd, f.user_rating, f.task_success
        errors += f.status == "error"
        if f.routing_cost_usd is not None:
            routing = EXACT.add(routing, f.routing_cost_usd)
        if ok is not None:
            judged += 1
            successes += ok is True
        if r is not None:
            rated += 1
            points += r
        if c is None:
            continue
        priced += 1
        cost = EXACT.add(cost, c)
        if f.baseline_cost_usd is not None and f.cache not in CACHE_SERVED:
            compared += 1
            compared_cost = EXACT.add(compared_cost, c)
            baseline = EXACT.add(baseline, f.baseline_cost_usd)
        if r is not None:
            rated_cost = EXACT.add(rated_cost, c)
            rated_points += r
        if ok is not None:
            judged_cost = EXACT.add(judged_cost, c)
            judged_successes += ok is True
    return replace(_cache_tally(facts), requests=len(facts), errors=errors, judged=judged,
                   unpriced=sum(f.unpriced for f in facts),
                   fallbacks=sum(f.fallback for f in facts),
                   successes=successes, priced=priced, cost_usd=cost, compared=compared,
                   compared_cost_usd=compared_cost, baseline_cost_usd=baseline, rated=rated,
                   rating_points=points, rated_cost_usd=rated_cost, rated_cost_points=rated_points,
                   judged_cost_usd=judged_cost, judged_cost_successes=judged_successes,
                   routing_cost_usd=routing)


def moments_many(facts: Sequence[Fact]) -> Moments:
    """The moments of several entries."""
    cost_sq = pair_cost_sq = pair_cross = 0.0
    rating_sq = pair_n = pair_rating_sq = 0
    for f in facts:
        r = f.user_rating
        if r is not None:
            rating_sq += r * r
        if f.cost_usd is None:
            continue
        c = float(f.cost_usd)
        cost_sq += c * c
        if r is not None:
            pair_n += 1
            pair_cost_sq += c * c
            pair_rating_sq += r * r
            pair_cross += c * r
    return Moments(cost_sq, rating_sq, pair_n, pair_cost_sq, pair_rating_sq, pair_cross)


def feedback_delta(old: Fact, new: Fact) -> Delta:
    """What changing an entry from `old` to `new` (its feedback only) moves: nothing when the
    numbers are unchanged (a comment, or the same rating again); the latencies never move."""
    delta = Delta({}, {})
    if (old.user_rating, old.task_success) == (new.user_rating, new.task_success):
        return delta
    _add(delta, old, -1)
    _add(delta, new, 1)
    return delta

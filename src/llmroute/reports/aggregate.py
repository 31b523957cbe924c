"""Pure aggregation of ledger entries into report numbers (no I/O, no formatting).

Definitions (every one is tested against hand-worked fixtures):

- requests: entries; errors: entries with status "error".
- success rate: successes / judged, where judged = entries with `task_success` set (True or False)
  and successes = those with True; None when nothing is judged.
- cost: the exact Decimal sum of `cost_usd` over priced entries; entries without a cost are never
  added as $0. `unpriced` counts those whose cost is unknown although they made a paid call
  (`LedgerEntry.unpriced`: answered, or usage reported, or the LLM router's call answered); a
  failure that made no paid call cost nothing and is not unpriced.
  Routing overhead: the exact sum of `routing_cost_usd` (the LLM router's classification calls,
  already part of `cost_usd`).
- fallbacks: entries answered by a model other than the first one tried (`LedgerEntry.fallback`,
  what the `llmroute_fallbacks` metric counts: the LLM router's calls and skipped tries left out).
- baseline comparison: over the *compared* entries, those with both `cost_usd` and
  `baseline_cost_usd` set and not answered by the response cache (`cache` "hit" or "semantic": a
  hit costs $0, and what it saved is caching's, not routing's): baseline = sum of
  baseline_cost_usd, compared cost = sum of their cost_usd, savings (from routing) = baseline -
  compared cost, savings % = savings / baseline x 100 rounded half-even to 0.01 (None when the
  baseline sums to 0).
- caching: the response cache's hits (exact), semantic hits, misses and bypasses (`cache`);
  lookups = hits + semantic hits + misses; hit rate = (hits + semantic hits) / lookups, the
  exact and semantic rates apart (None without lookups); cached tokens = sum of `cached_tokens`
  (prompt tokens read from the provider's cache), written = sum of `cache_write_tokens`; savings
  from caching = sum of `cache_saved_usd` (the response cache) + sum of `prompt_cache_saved_usd`
  (provider prompt caching: the reads' discount less the writes' premium, may be negative).
- latency p50/p95: nearest-rank percentile over every entry's `latency_s` (errors included): the
  k-th smallest value with k = ceil(p/100 x n), k >= 1 (so the result is always an observed value).
- mean rating: arithmetic mean of `user_rating` over rated entries.
- cost per quality point: over entries both priced and rated, sum(cost_usd) / sum(user_rating);
  None when there are none.
- cost per successful task: over entries both priced and judged, sum(cost_usd) / number of those with
  task_success True; None when there is no success.
- Decimal quotients use a fixed 28-digit context (not the ambient one), so results are reproducible;
  money sums are exact (never rounded).
- model mix: requests per model (None shows as "(none)"), largest first, ties by name.
- groups: by model, tier, policy, key (key_name), day (the UTC date of `ts`) or explored
  ("explored" / "routed": learning online's mark); a missing value is the group "(none)". Days
  sort by date, other groups by requests (descending) then name.

Two ways to the same `Report`: over entries (`build_report`, the reference) and over a store's
`aggregate` (`report_from`, what the CLI and the dashboard use). Both go through `summary_of`, so
every derived number (rates, quotients, rounding, order) is computed in one place; only the additive
numbers and the percentiles come from the entries or from the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Context, Decimal

from ..ledger.aggregates import (
    CACHE_SERVED,
    EXPLORED_LABEL,
    GROUP_KEYS,
    NONE_LABEL,
    ROUTED_LABEL,
    TOTAL_LABEL,
    ZERO,
    GroupAggregate,
    Tally,
    WindowAggregate,
    check_group_key,
    exact_sum,
)
from ..ledger.entry import LedgerEntry

__all__ = ["GROUP_KEYS", "NONE_LABEL", "Report", "Summary", "aggregate_entries", "baseline_name",
           "build_report", "group_aggregate", "group_by", "nearest_rank", "report_from",
           "summarise", "summary_of", "tally"]

_DIV = Context(prec=28, rounding=ROUND_HALF_EVEN)
_CENT = Decimal("0.01")
@dataclass(frozen=True)
class Summary:
    """The report numbers of one set of entries (the whole window, or one group)."""

    label: str
    requests: int
    errors: int
    judged: int
    successes: int
    cost_usd: Decimal
    priced: int
    unpriced: int
    compared: int
    compared_cost_usd: Decimal
    baseline_cost_usd: Decimal
    latency_p50_s: float | None
    latency_p95_s: float | None
    rated: int
    mean_rating: float | None
    cost_per_quality_point_usd: Decimal | None
    cost_per_success_usd: Decimal | None
    model_mix: tuple[tuple[str, int], ...]
    #: What the LLM router's classification calls cost: part of `cost_usd` (issue 14).
    routing_cost_usd: Decimal = Decimal(0)
    #: Caching (issue 15): the response cache's exact and semantic hits, misses and bypasses;
    #: prompt tokens read from and written to the provider's cache; what each cache saved.
    cache_hits: int = 0
    cache_semantic_hits: int = 0
    cache_misses: int = 0
    cache_bypasses: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    prompt_cache_saved_usd: Decimal = Decimal(0)
    cache_saved_usd: Decimal = Decimal(0)
    #: Requests answered by a fallback model (issue 16, `LedgerEntry.fallback`).
    fallbacks: int = 0

    @property
    def cache_lookups(self) -> int:
        """Requests the response cache was asked about: its hits (exact, semantic) and misses."""
        return self.cache_hits + self.cache_semantic_hits + self.cache_misses

    def _of_lookups(self, count: int) -> float | None:
        return count / self.cache_lookups if self.cache_lookups else None

    @property
    def cache_hit_rate(self) -> float | None:
        """(exact + semantic hits) / lookups; None when the response cache was never asked."""
        return self._of_lookups(self.cache_hits + self.cache_semantic_hits)

    @property
    def cache_exact_hit_rate(self) -> float | None:
        """Exact hits / lookups."""
        return self._of_lookups(self.cache_hits)

    @property
    def cache_semantic_hit_rate(self) -> float | None:
        """Semantic hits / lookups."""
        return self._of_lookups(self.cache_semantic_hits)

    @property
    def caching_savings_usd(self) -> Decimal:
        """What caching saved: the response cache's hits plus provider prompt caching."""
        return exact_sum(self.cache_saved_usd, self.prompt_cache_saved_usd)

    @property
    def caching_used(self) -> bool:
        """Whether either cache shows in these numbers (the report's "Caching" block)."""
        return bool(self.cache_lookups or self.cache_bypasses or self.cached_tokens
                    or self.cache_write_tokens or self.prompt_cache_saved_usd
                    or self.cache_saved_usd)

    @property
    def success_rate(self) -> float | None:
        """Share of judged entries that succeeded (None: nothing judged)."""
        return self.successes / self.judged if self.judged else None

    @property
    def savings_usd(self) -> Decimal:
        """What the compared entries saved against the baseline (negative: they cost more): the
        savings from routing (the response cache's hits are not compared)."""
        return self.baseline_cost_usd - self.compared_cost_usd

    @property
    def savings_pct(self) -> Decimal | None:
        """Savings as a percentage of the baseline, to 0.01 (None when the baseline is $0)."""
        if self.baseline_cost_usd == 0:
            return None
        pct = _DIV.multiply(_DIV.divide(self.savings_usd, self.baseline_cost_usd), Decimal(100))
        return pct.quantize(_CENT, rounding=ROUND_HALF_EVEN)

    def model_shares(self) -> dict[str, float]:
        """Share of requests per model, in `model_mix` order."""
        return {model: count / self.requests for model, count in self.model_mix}


@dataclass(frozen=True)
class Report:
    """The whole window's summary, the groups of the chosen key and the baseline's name."""

    by: str
    baseline: str
    total: Summary
    groups: tuple[Summary, ...]


def _quotient(numerator: Decimal, denominator: int) -> Decimal | None:
    return _DIV.divide(numerator, Decimal(denominator)) if denominator else None


def summary_of(group: GroupAggregate) -> Summary:
    """A group's summary from its additive numbers: the one place every derived number is made."""
    t = group.tally
    return Summary(
        label=group.label, requests=t.requests, errors=t.errors, judged=t.judged,
        successes=t.successes, cost_usd=t.cost_usd, priced=t.priced, unpriced=t.unpriced,
        compared=t.compared, compared_cost_usd=t.compared_cost_usd,
        baseline_cost_usd=t.baseline_cost_usd,
        latency_p50_s=group.latency_p50_s, latency_p95_s=group.latency_p95_s,
        rated=t.rated, mean_rating=t.rating_points / t.rated if t.rated else None,
        cost_per_quality_point_usd=_quotient(t.rated_cost_usd, t.rated_cost_points),
        cost_per_success_usd=_quotient(t.judged_cost_usd, t.judged_cost_successes),
        model_mix=tuple(sorted(group.models, key=lambda kv: (-kv[1], kv[0]))),
        routing_cost_usd=t.routing_cost_usd, cache_hits=t.cache_hits,
        cache_semantic_hits=t.cache_semantic_hits, cache_misses=t.cache_misses,
        cache_bypasses=t.cache_bypasses, cached_tokens=t.cached_tokens,
        cache_write_tokens=t.cache_write_tokens, prompt_cache_saved_usd=t.prompt_cache_saved_usd,
        cache_saved_usd=t.cache_saved_usd, fallbacks=t.fallbacks,
    )


def _order(summaries: Iterable[Summary], by: str) -> tuple[Summary, ...]:
    if by == "day":
        return tuple(sorted(summaries, key=lambda s: s.label))
    return tuple(sorted(summaries, key=lambda s: (-s.requests, s.label)))


def _baseline(counts: Iterable[tuple[str, int]], fallback: str) -> str:
    found = sorted(counts, key=lambda kv: (-kv[1], kv[0]))
    return found[0][0] if found else fallback


def report_from(aggregate: WindowAggregate, baseline_fallback: str = "the baseline model") -> Report:
    """The report of a store's (or `aggregate_entries`') numbers."""
    return Report(by=aggregate.by, baseline=_baseline(aggregate.baseline_models, baseline_fallback),
                  total=summary_of(aggregate.total),
                  groups=_order((summary_of(g) for g in aggregate.groups), aggregate.by))


# -- the reference: the same numbers over entries ------------------------------------------------


def nearest_rank(values: Sequence[float], p: int) -> float | None:
    """The nearest-rank p-th percentile (0 < p <= 100): the k-th smallest value, k = ceil(p*n/100)."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    k = max(1, -(-p * len(ordered) // 100))
    return ordered[k - 1]


def _total(values: Iterable[Decimal]) -> Decimal:
    found = ZERO
    for value in values:
        found = exact_sum(found, value)
    return found


def _costs(entries: Iterable[LedgerEntry]) -> list[Decimal]:
    return [e.cost_usd for e in entries if e.cost_usd is not None]


def _cache_tally(entries: Sequence[LedgerEntry]) -> Tally:
    """The caching numbers of `entries` (the other numbers 0)."""
    states = Counter(e.cache for e in entries)
    return Tally(
        cache_hits=states["hit"], cache_semantic_hits=states["semantic"],
        cache_misses=states["miss"], cache_bypasses=states["bypass"],
        cached_tokens=sum(e.cached_tokens or 0 for e in entries),
        cache_write_tokens=sum(e.cache_write_tokens or 0 for e in entries),
        prompt_cache_saved_usd=_total(e.prompt_cache_saved_usd for e in entries
                                      if e.prompt_cache_saved_usd is not None),
        cache_saved_usd=_total(e.cache_saved_usd for e in entries if e.cache_saved_usd is not None))


def tally(entries: Sequence[LedgerEntry]) -> Tally:
    """The additive numbers of `entries`."""
    priced = [e for e in entries if e.cost_usd is not None]
    compared = [e for e in priced
                if e.baseline_cost_usd is not None and e.cache not in CACHE_SERVED]
    rated = [e for e in priced if e.user_rating is not None]
    judged = [e for e in priced if e.task_success is not None]
    ratings = [e.user_rating for e in entries if e.user_rating is not None]
    outcomes = [e.task_success for e in entries if e.task_success is not None]
    return replace(
        _cache_tally(entries),
        requests=len(entries), errors=sum(1 for e in entries if e.status == "error"),
        judged=len(outcomes), successes=sum(1 for ok in outcomes if ok),
        priced=len(priced), cost_usd=_total(_costs(priced)),
        compared=len(compared), compared_cost_usd=_total(_costs(compared)),
        baseline_cost_usd=_total(e.baseline_cost_usd for e in compared
                                 if e.baseline_cost_usd is not None),
        rated=len(ratings), rating_points=sum(ratings),
        rated_cost_usd=_total(_costs(rated)),
        rated_cost_points=sum(e.user_rating for e in rated if e.user_rating is not None),
        judged_cost_usd=_total(_costs(judged)),
        judged_cost_successes=sum(1 for e in judged if e.task_success),
        routing_cost_usd=_total(e.routing_cost_usd for e in entries
                                if e.routing_cost_usd is not None),
        unpriced=sum(1 for e in entries if e.unpriced),
        fallbacks=sum(1 for e in entries if e.fallback),
    )


def group_aggregate(label: str, entries: Sequence[LedgerEntry]) -> GroupAggregate:
    """The numbers of `entries` as a store reports one group."""
    latencies = [e.latency_s for e in entries]
    models = Counter(e.model or NONE_LABEL for e in entries)
    return GroupAggregate(label, tally(entries), nearest_rank(latencies, 50),
                          nearest_rank(latencies, 95), tuple(sorted(models.items())))


def summarise(label: str, entries: Sequence[LedgerEntry]) -> Summary:
    """The numbers of `entries` (see the module docstring for each definition)."""
    return summary_of(group_aggregate(label, entries))


def _key_function(by: str) -> Callable[[LedgerEntry], str | None]:
    check_group_key(by)
    keys: dict[str, Callable[[LedgerEntry], str | None]] = {
        "model": lambda e: e.model,
        "tier": lambda e: e.tier,
        "policy": lambda e: e.policy,
        "key": lambda e: e.key_name,
        "day": lambda e: e.ts.date().isoformat(),
        "explored": lambda e: EXPLORED_LABEL if e.explored else ROUTED_LABEL,
    }
    return keys[by]


def _buckets(entries: Sequence[LedgerEntry], by: str) -> dict[str, list[LedgerEntry]]:
    key = _key_function(by)
    buckets: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        buckets.setdefault(key(entry) or NONE_LABEL, []).append(entry)
    return buckets


def _baseline_counts(entries: Iterable[LedgerEntry]) -> Counter[str]:
    return Counter(e.baseline_model for e in entries
                   if e.baseline_model and e.baseline_cost_usd is not None)


def aggregate_entries(entries: Sequence[LedgerEntry], by: str = "model") -> WindowAggregate:
    """What `Store.aggregate` answers for a window holding exactly `entries` (the reference)."""
    buckets = _buckets(entries, by)
    return WindowAggregate(
        by=by, total=group_aggregate(TOTAL_LABEL, entries),
        groups=tuple(group_aggregate(label, buckets[label]) for label in sorted(buckets)),
        baseline_models=tuple(sorted(_baseline_counts(entries).items())))


def group_by(entries: Sequence[LedgerEntry], by: str) -> tuple[Summary, ...]:
    """One summary per value of `by` (see the module docstring for the order)."""
    return _order((summarise(label, members) for label, members in _buckets(entries, by).items()), by)


def baseline_name(entries: Sequence[LedgerEntry], fallback: str) -> str:
    """The baseline model the compared entries name (the most common one; `fallback` if none)."""
    return _baseline(_baseline_counts(entries).items(), fallback)


def build_report(entries: Sequence[LedgerEntry], by: str = "model",
                 baseline_fallback: str = "the baseline model") -> Report:
    """The whole report for `entries` grouped by `by`."""
    return report_from(aggregate_entries(entries, by), baseline_fallback)

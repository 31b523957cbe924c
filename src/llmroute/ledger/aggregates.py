"""What a store's `aggregate` answers: for each group of a window (and for the whole window) the
additive numbers of a report (counts and exact money sums), the two latency percentiles and the
model mix. `reports.aggregate` turns them into a `Report`; its module docstring defines every number
(`reports.aggregate.aggregate_entries` is the reference implementation over entries).

A `WindowAggregate` is canonical, so two of them compare with `==`: groups in label order, models
and baseline models in name order, every count positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

#: The keys a report groups by: model, tier, policy, key (the gateway key's name), day (UTC date),
#: explored (learning online: "explored" for requests sent to the Thompson choice, else "routed").
GROUP_KEYS: tuple[str, ...] = ("model", "tier", "policy", "key", "day", "explored")
#: The labels of the "explored" grouping.
EXPLORED_LABEL, ROUTED_LABEL = "explored", "routed"
#: The group of entries without a value (None or empty).
NONE_LABEL = "(none)"
#: The label of the whole window's group.
TOTAL_LABEL = "all"
#: Money sums never round: a context with all the precision there is.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
ZERO = Decimal(0)


def check_group_key(by: str) -> None:
    """Raise ValueError unless `by` is one of `GROUP_KEYS`."""
    if by not in GROUP_KEYS:
        raise ValueError(f"cannot group by {by!r}: choose one of {', '.join(GROUP_KEYS)}")


def exact_sum(first: Decimal, second: Decimal) -> Decimal:
    """`first + second` without rounding (the ambient context rounds to 28 digits)."""
    return EXACT.add(first, second)


@dataclass(frozen=True)
class Tally:
    """The additive numbers of a set of entries. "priced": cost_usd set; "compared": cost_usd and
    baseline_cost_usd set, and not answered by the response cache (`CACHE_SERVED`); "judged":
    task_success set; "rated": user_rating set."""

    requests: int = 0
    errors: int = 0
    judged: int = 0
    successes: int = 0
    priced: int = 0
    cost_usd: Decimal = ZERO
    compared: int = 0
    compared_cost_usd: Decimal = ZERO
    baseline_cost_usd: Decimal = ZERO
    rated: int = 0
    rating_points: int = 0
    #: Σ cost_usd and Σ user_rating over the entries both priced and rated.
    rated_cost_usd: Decimal = ZERO
    rated_cost_points: int = 0
    #: Σ cost_usd over the entries both priced and judged, and how many of those succeeded.
    judged_cost_usd: Decimal = ZERO
    judged_cost_successes: int = 0
    #: Σ routing_cost_usd over the entries that have one: the LLM router's classification calls,
    #: a part of cost_usd (issue 14).
    routing_cost_usd: Decimal = ZERO
    #: The response cache (issue 15, `LedgerEntry.cache`): entries it answered with an exact
    #: match, with a semantic match, missed (the upstream answered) and bypassed.
    cache_hits: int = 0
    cache_semantic_hits: int = 0
    cache_misses: int = 0
    cache_bypasses: int = 0
    #: Σ cached_tokens (prompt tokens read from the provider's prompt cache) and Σ
    #: cache_write_tokens (written to it).
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    #: Σ prompt_cache_saved_usd (what provider prompt caching saved; may be negative) and Σ
    #: cache_saved_usd (what the response cache's hits saved: the upstream calls they replaced).
    prompt_cache_saved_usd: Decimal = ZERO
    cache_saved_usd: Decimal = ZERO
    #: Issue 16: entries whose cost is unknown although they made a paid call
    #: (`LedgerEntry.unpriced`: a failure that made none is not counted), and entries answered
    #: by a fallback model (`LedgerEntry.fallback`).
    unpriced: int = 0
    fallbacks: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            requests=self.requests + other.requests, errors=self.errors + other.errors,
            judged=self.judged + other.judged, successes=self.successes + other.successes,
            priced=self.priced + other.priced, cost_usd=exact_sum(self.cost_usd, other.cost_usd),
            compared=self.compared + other.compared,
            compared_cost_usd=exact_sum(self.compared_cost_usd, other.compared_cost_usd),
            baseline_cost_usd=exact_sum(self.baseline_cost_usd, other.baseline_cost_usd),
            rated=self.rated + other.rated, rating_points=self.rating_points + other.rating_points,
            rated_cost_usd=exact_sum(self.rated_cost_usd, other.rated_cost_usd),
            rated_cost_points=self.rated_cost_points + other.rated_cost_points,
            judged_cost_usd=exact_sum(self.judged_cost_usd, other.judged_cost_usd),
            judged_cost_successes=self.judged_cost_successes + other.judged_cost_successes,
            routing_cost_usd=exact_sum(self.routing_cost_usd, other.routing_cost_usd),
            cache_hits=self.cache_hits + other.cache_hits,
            cache_semantic_hits=self.cache_semantic_hits + other.cache_semantic_hits,
            cache_misses=self.cache_misses + other.cache_misses,
            cache_bypasses=self.cache_bypasses + other.cache_bypasses,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            prompt_cache_saved_usd=exact_sum(self.prompt_cache_saved_usd,
                                             other.prompt_cache_saved_usd),
            cache_saved_usd=exact_sum(self.cache_saved_usd, other.cache_saved_usd),
            unpriced=self.unpriced + other.unpriced, fallbacks=self.fallbacks + other.fallbacks,
        )

    def __neg__(self) -> Tally:
        """Every number negated: what taking these entries away adds (rollups' feedback deltas)."""
        neg = EXACT.minus  # unary minus would round to the ambient 28 digits
        return Tally(
            requests=-self.requests, errors=-self.errors, judged=-self.judged,
            successes=-self.successes, priced=-self.priced, cost_usd=neg(self.cost_usd),
            compared=-self.compared, compared_cost_usd=neg(self.compared_cost_usd),
            baseline_cost_usd=neg(self.baseline_cost_usd), rated=-self.rated,
            rating_points=-self.rating_points, rated_cost_usd=neg(self.rated_cost_usd),
            rated_cost_points=-self.rated_cost_points, judged_cost_usd=neg(self.judged_cost_usd),
            judged_cost_successes=-self.judged_cost_successes,
            routing_cost_usd=neg(self.routing_cost_usd), cache_hits=-self.cache_hits,
            cache_semantic_hits=-self.cache_semantic_hits, cache_misses=-self.cache_misses,
            cache_bypasses=-self.cache_bypasses, cached_tokens=-self.cached_tokens,
            cache_write_tokens=-self.cache_write_tokens,
            prompt_cache_saved_usd=neg(self.prompt_cache_saved_usd),
            cache_saved_usd=neg(self.cache_saved_usd), unpriced=-self.unpriced,
            fallbacks=-self.fallbacks,
        )


#: `LedgerEntry.cache` values of the entries the response cache answered (cost $0): they are
#: left out of the baseline comparison, so that what the cache saved is not counted as routing's.
CACHE_SERVED: tuple[str, ...] = ("hit", "semantic")


@dataclass(frozen=True)
class GroupAggregate:
    """One group's numbers: its tally, the nearest-rank p50/p95 of latency_s (None: no entries)
    and requests per model (None or empty model: `NONE_LABEL`), in model-name order."""

    label: str
    tally: Tally
    latency_p50_s: float | None
    latency_p95_s: float | None
    models: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class WindowAggregate:
    """A window's numbers grouped `by` one of `GROUP_KEYS`: the total, the groups (label order)
    and how many compared entries name each baseline model (name order)."""

    by: str
    total: GroupAggregate
    groups: tuple[GroupAggregate, ...]
    baseline_models: tuple[tuple[str, int], ...]


def empty_group(label: str) -> GroupAggregate:
    """The numbers of no entries."""
    return GroupAggregate(label, Tally(), None, None, ())

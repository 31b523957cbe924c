"""Pure aggregation of ledger entries into report numbers (no I/O, no formatting).

Definitions (every one is tested against hand-worked fixtures):

- requests: entries; errors: entries with status "error".
- success rate: successes / judged, where judged = entries with `task_success` set (True or False)
  and successes = those with True; None when nothing is judged.
- cost: the exact Decimal sum of `cost_usd` over priced entries; unpriced entries (cost None) are
  counted in `unpriced` and never added as $0.
- baseline comparison: over the *compared* entries, those with both `cost_usd` and
  `baseline_cost_usd` set: baseline = sum of baseline_cost_usd, compared cost = sum of their cost_usd,
  savings = baseline - compared cost, savings % = savings / baseline x 100 rounded half-even to
  0.01 (None when the baseline sums to 0).
- latency p50/p95: nearest-rank percentile over every entry's `latency_s` (errors included): the
  k-th smallest value with k = ceil(p/100 x n), k >= 1 (so the result is always an observed value).
- mean rating: arithmetic mean of `user_rating` over rated entries.
- cost per quality point: over entries both priced and rated, sum(cost_usd) / sum(user_rating);
  None when there are none.
- cost per successful task: over entries both priced and judged, sum(cost_usd) / number of those with
  task_success True; None when there is no success.
- Decimal quotients use a fixed 28-digit context (not the ambient one), so results are reproducible.
- model mix: requests per model (None shows as "(none)"), largest first, ties by name.
- groups: by model, tier, policy, key (key_name) or day (the UTC date of `ts`); a missing value is
  the group "(none)". Days sort by date, other groups by requests (descending) then name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from ..ledger.entry import LedgerEntry

NONE_LABEL = "(none)"
GROUP_KEYS: tuple[str, ...] = ("model", "tier", "policy", "key", "day")
_DIV = Context(prec=28, rounding=ROUND_HALF_EVEN)
_CENT = Decimal("0.01")
_ZERO = Decimal(0)


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

    @property
    def success_rate(self) -> float | None:
        """Share of judged entries that succeeded (None: nothing judged)."""
        return self.successes / self.judged if self.judged else None

    @property
    def savings_usd(self) -> Decimal:
        """What the compared entries saved against the baseline (negative: they cost more)."""
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


def nearest_rank(values: Sequence[float], p: int) -> float | None:
    """The nearest-rank p-th percentile (0 < p <= 100): the k-th smallest value, k = ceil(p*n/100)."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    k = max(1, -(-p * len(ordered) // 100))
    return ordered[k - 1]


def _quotient(numerator: Decimal, denominator: int) -> Decimal | None:
    return _DIV.divide(numerator, Decimal(denominator)) if denominator else None


def _money(entries: Sequence[LedgerEntry]) -> tuple[Decimal, int, int, Decimal, Decimal]:
    """(cost, priced, compared, compared cost, baseline cost)."""
    priced = [e.cost_usd for e in entries if e.cost_usd is not None]
    pairs = [(e.cost_usd, e.baseline_cost_usd) for e in entries
             if e.cost_usd is not None and e.baseline_cost_usd is not None]
    return (sum(priced, _ZERO), len(priced), len(pairs),
            sum((c for c, _ in pairs), _ZERO), sum((b for _, b in pairs), _ZERO))


def _cost_per_quality_point(entries: Sequence[LedgerEntry]) -> Decimal | None:
    rated = [(e.cost_usd, e.user_rating) for e in entries
             if e.cost_usd is not None and e.user_rating is not None]
    return _quotient(sum((c for c, _ in rated), _ZERO), sum(r for _, r in rated))


def _cost_per_success(entries: Sequence[LedgerEntry]) -> Decimal | None:
    judged = [(e.cost_usd, e.task_success) for e in entries
              if e.cost_usd is not None and e.task_success is not None]
    return _quotient(sum((c for c, _ in judged), _ZERO), sum(1 for _, ok in judged if ok))


def _mix(entries: Sequence[LedgerEntry]) -> tuple[tuple[str, int], ...]:
    counts = Counter(e.model or NONE_LABEL for e in entries)
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def summarise(label: str, entries: Sequence[LedgerEntry]) -> Summary:
    """The numbers of `entries` (see the module docstring for each definition)."""
    cost, priced, compared, compared_cost, baseline = _money(entries)
    latencies = [e.latency_s for e in entries]
    ratings = [e.user_rating for e in entries if e.user_rating is not None]
    judged = [e.task_success for e in entries if e.task_success is not None]
    return Summary(
        label=label, requests=len(entries), errors=sum(1 for e in entries if e.status == "error"),
        judged=len(judged), successes=sum(1 for ok in judged if ok),
        cost_usd=cost, priced=priced, unpriced=len(entries) - priced,
        compared=compared, compared_cost_usd=compared_cost, baseline_cost_usd=baseline,
        latency_p50_s=nearest_rank(latencies, 50), latency_p95_s=nearest_rank(latencies, 95),
        rated=len(ratings), mean_rating=sum(ratings) / len(ratings) if ratings else None,
        cost_per_quality_point_usd=_cost_per_quality_point(entries),
        cost_per_success_usd=_cost_per_success(entries),
        model_mix=_mix(entries),
    )


def _key_function(by: str) -> Callable[[LedgerEntry], str | None]:
    keys: dict[str, Callable[[LedgerEntry], str | None]] = {
        "model": lambda e: e.model,
        "tier": lambda e: e.tier,
        "policy": lambda e: e.policy,
        "key": lambda e: e.key_name,
        "day": lambda e: e.ts.date().isoformat(),
    }
    if by not in keys:
        raise ValueError(f"cannot group by {by!r}: choose one of {', '.join(GROUP_KEYS)}")
    return keys[by]


def group_by(entries: Sequence[LedgerEntry], by: str) -> tuple[Summary, ...]:
    """One summary per value of `by` (see the module docstring for the order)."""
    key = _key_function(by)
    buckets: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        buckets.setdefault(key(entry) or NONE_LABEL, []).append(entry)
    summaries = [summarise(label, members) for label, members in buckets.items()]
    if by == "day":
        return tuple(sorted(summaries, key=lambda s: s.label))
    return tuple(sorted(summaries, key=lambda s: (-s.requests, s.label)))


def baseline_name(entries: Sequence[LedgerEntry], fallback: str) -> str:
    """The baseline model the compared entries name (the most common one; `fallback` if none)."""
    counts = Counter(e.baseline_model for e in entries
                     if e.baseline_model and e.baseline_cost_usd is not None)
    if not counts:
        return fallback
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def build_report(entries: Sequence[LedgerEntry], by: str = "model",
                 baseline_fallback: str = "the baseline model") -> Report:
    """The whole report for `entries` grouped by `by`."""
    return Report(by=by, baseline=baseline_name(entries, baseline_fallback),
                  total=summarise("all", entries), groups=group_by(entries, by))

"""Replay: re-decide logged traffic through a candidate policy and report, beside what was actually
served, the candidate's estimated cost and expected quality ("test the routing change before it ships").

What the numbers assume:
- Cost: the candidate's model at catalog prices on the *logged* input and output tokens (its answer
  is assumed to be as long as the logged one); cached input tokens stay cached only when the candidate
  picked the model that served (another model starts with a cold cache). LLM-as-router consultations
  (counted and priced in `replay_offline`) are added to the candidate's cost; the ledger does not
  record the served policy's own consultations, so the actual cost has none. Totals compare like for
  like: they are summed over the requests priced on both sides (`compared`).
- Quality per request: the observed feedback (task success 1/0, else rating (r − 1)/4, as in
  `learn.from_ledger`) where the candidate picked the model that answered ("observed"); else the
  learned router's P(good) for that model on that prompt ("estimated"); else "unknown". The served
  side is labelled the same way (observed where it has feedback, else estimated).
- The ledger keeps the messages' text only: allowed/excluded models, the key's model list, tools,
  images and max_tokens are not replayed, so the request is routed on its text alone.
- Skipped, and counted by reason: error entries (no answer to price or judge), entries without stored
  text (`ledger.store_text` off), entries without token counts or served model, and requests the
  candidate cannot route.
- An `llm` router caches its answers per prompt (`cache_ttl_s`): a replay runs in seconds, so a
  repeated prompt is classified once, as it would be within the TTL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from ..engine import Engine
from ..errors import LLMRouteError
from ..learn.from_ledger import quality_of
from ..ledger.entry import LedgerEntry
from ..types import RouteRequest, Usage
from .replay_offline import (
    Consultation,
    Estimate,
    estimator_for,
    messages_from_text,
    offline_caller,
    tier_labels,
)

Source = Literal["observed", "estimated", "unknown"]
#: Called after each entry with (entries done, entries in all).
ProgressHook = Callable[[int, int], None]

SKIP_ERROR = "error entry"
SKIP_NO_TEXT = "no text"
SKIP_NO_USAGE = "no token counts"
SKIP_NO_MODEL = "no served model"
SKIP_UNROUTABLE = "not routable"
#: Entries decided between two rounds of (batched) quality estimates.
CHUNK = 256


@dataclass(frozen=True)
class Quality:
    """A request's quality for one model: a value in [0, 1] (None when unknown) and its source."""

    value: float | None
    source: Source


@dataclass(frozen=True)
class QualitySummary:
    """Quality over many requests, split by source."""

    observed: int = 0
    estimated: int = 0
    unknown: int = 0
    observed_total: float = 0.0
    estimated_total: float = 0.0

    @classmethod
    def of(cls, qualities: Iterable[Quality]) -> QualitySummary:
        """Count and add up `qualities` by source."""
        summary = cls()
        for q in qualities:
            summary = summary.plus(q)
        return summary

    def plus(self, q: Quality) -> QualitySummary:
        """This summary with one more request's quality folded in."""
        if q.source == "observed":
            return replace(self, observed=self.observed + 1,
                           observed_total=self.observed_total + (q.value or 0.0))
        if q.source == "estimated":
            return replace(self, estimated=self.estimated + 1,
                           estimated_total=self.estimated_total + (q.value or 0.0))
        return replace(self, unknown=self.unknown + 1)

    @property
    def mean(self) -> float | None:
        """Mean quality over the requests with a known value (observed or estimated)."""
        known = self.observed + self.estimated
        return (self.observed_total + self.estimated_total) / known if known else None

    @property
    def observed_mean(self) -> float | None:
        """Mean of the observed values only."""
        return self.observed_total / self.observed if self.observed else None

    @property
    def estimated_mean(self) -> float | None:
        """Mean of the estimated values only."""
        return self.estimated_total / self.estimated if self.estimated else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {"mean": _round(self.mean), "observed": self.observed,
                "observed_mean": _round(self.observed_mean), "estimated": self.estimated,
                "estimated_mean": _round(self.estimated_mean), "unknown": self.unknown}


@dataclass(frozen=True)
class ReplayRow:
    """One logged request: what served it and what it cost, and what the candidate would do."""

    request_id: str
    served_model: str
    model: str
    tier: str
    actual_cost_usd: Decimal | None
    model_cost_usd: Decimal | None
    served_quality: Quality
    quality: Quality
    consultations: tuple[Consultation, ...] = ()

    @property
    def router_cost_usd(self) -> Decimal | None:
        """The LLM-router consultations' estimated cost (None when one of them is unpriced)."""
        costs = [c.cost_usd for c in self.consultations]
        return None if None in costs else sum((c for c in costs if c is not None), Decimal(0))

    @property
    def cost_usd(self) -> Decimal | None:
        """The candidate's estimated cost: its model plus its router consultations."""
        router = self.router_cost_usd
        return None if self.model_cost_usd is None or router is None else self.model_cost_usd + router


@dataclass(frozen=True)
class ReplayTotals:
    """What a replay report shows, folded over its rows: counts, exact money sums over the rows
    priced on both sides, router-LLM calls, quality by source and the model mixes (first seen first)."""

    replayed: int = 0
    compared: int = 0
    actual_cost_usd: Decimal = Decimal(0)
    model_cost_usd: Decimal = Decimal(0)
    router_cost_usd: Decimal = Decimal(0)
    router_calls: Mapping[str, int] = field(default_factory=dict)
    served_quality: QualitySummary = QualitySummary()
    quality: QualitySummary = QualitySummary()
    mix: Mapping[str, int] = field(default_factory=dict)
    served_mix: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[ReplayRow]) -> ReplayTotals:
        """The totals of `rows`, in order."""
        fold = TotalsFold()
        for row in rows:
            fold.add(row)
        return fold.totals()


class TotalsFold:
    """Folds replay rows one at a time into `ReplayTotals` (the same sums, in the same order, as
    over the whole list), so a streamed replay keeps no rows."""

    def __init__(self) -> None:
        self.replayed = 0
        self.compared = 0
        self.actual = self.model = self.router = Decimal(0)
        self.calls: Counter[str] = Counter()
        self.served_quality = QualitySummary()
        self.quality = QualitySummary()
        self.mix: Counter[str] = Counter()
        self.served_mix: Counter[str] = Counter()

    def add(self, row: ReplayRow) -> None:
        """Fold one row in."""
        self.replayed += 1
        if row.actual_cost_usd is not None and row.cost_usd is not None:
            self.compared += 1
            self.actual += row.actual_cost_usd
            self.model += row.model_cost_usd or Decimal(0)
            self.router += row.router_cost_usd or Decimal(0)
        for c in row.consultations:
            self.calls["answered" if c.answered else "unanswered"] += 1
            self.calls["unpriced"] += c.cost_usd is None
        self.served_quality = self.served_quality.plus(row.served_quality)
        self.quality = self.quality.plus(row.quality)
        self.mix[row.model] += 1
        self.served_mix[row.served_model] += 1

    def totals(self) -> ReplayTotals:
        """The totals so far."""
        return ReplayTotals(self.replayed, self.compared, self.actual, self.model, self.router,
                            Counter(self.calls), self.served_quality, self.quality,
                            dict(self.mix.most_common()), dict(self.served_mix.most_common()))


@dataclass(frozen=True)
class ReplayReport:
    """A policy's replay over logged entries: the skipped counts by reason and the totals, folded
    while replaying (`folded`, from a streamed replay, which keeps no rows) or derived from `rows`."""

    policy: str
    read: int
    rows: tuple[ReplayRow, ...]
    skipped: Mapping[str, int]
    folded: ReplayTotals | None = None

    @cached_property
    def totals(self) -> ReplayTotals:
        """The report's numbers: `folded` when given, else folded over `rows`."""
        return self.folded if self.folded is not None else ReplayTotals.of(self.rows)

    @property
    def replayed(self) -> int:
        """Requests re-decided."""
        return self.totals.replayed

    @property
    def compared(self) -> tuple[ReplayRow, ...]:
        """The kept rows priced on both sides (none when the rows were not kept: see
        `compared_count`)."""
        return tuple(r for r in self.rows if r.actual_cost_usd is not None and r.cost_usd is not None)

    @property
    def compared_count(self) -> int:
        """How many requests are priced on both sides: the cost totals are summed over these."""
        return self.totals.compared

    @property
    def actual_cost_usd(self) -> Decimal:
        """What the compared requests actually cost (logged)."""
        return self.totals.actual_cost_usd

    @property
    def model_cost_usd(self) -> Decimal:
        """The candidate's models' estimated cost over the compared requests."""
        return self.totals.model_cost_usd

    @property
    def router_cost_usd(self) -> Decimal:
        """The candidate's LLM-router consultations' estimated cost over the compared requests."""
        return self.totals.router_cost_usd

    @property
    def cost_usd(self) -> Decimal:
        """The candidate's estimated cost in all (models + router calls) over the compared requests."""
        return self.model_cost_usd + self.router_cost_usd

    @property
    def savings_pct(self) -> float | None:
        """How much cheaper the candidate is than what was served, in percent (negative: dearer)."""
        actual = self.actual_cost_usd
        return float((actual - self.cost_usd) / actual * 100) if actual else None

    @property
    def router_calls(self) -> Counter[str]:
        """LLM-router consultations: `answered` (with the logged tier), `unanswered`, `unpriced`."""
        return Counter(self.totals.router_calls)

    @property
    def served_quality(self) -> QualitySummary:
        """Quality of what was served: observed where there is feedback, else estimated."""
        return self.totals.served_quality

    @property
    def quality(self) -> QualitySummary:
        """The candidate's expected quality: observed where it picked the model that answered."""
        return self.totals.quality

    def mix(self, served: bool = False) -> dict[str, int]:
        """Requests per model, most used first: the candidate's picks (or what served them)."""
        return dict(self.totals.served_mix if served else self.totals.mix)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (money as exact decimal strings; rows left out)."""
        calls = self.router_calls
        return {
            "policy": self.policy, "read": self.read, "replayed": self.replayed,
            "skipped": dict(self.skipped), "compared": self.compared_count,
            "actual_cost_usd": _money(self.actual_cost_usd),
            "cost_usd": _money(self.cost_usd), "model_cost_usd": _money(self.model_cost_usd),
            "router_cost_usd": _money(self.router_cost_usd),
            "savings_pct": _round(self.savings_pct, 2),
            "router_calls": sum(calls[k] for k in ("answered", "unanswered")),
            "router_calls_answered": calls["answered"], "router_calls_unpriced": calls["unpriced"],
            "served_quality": self.served_quality.to_dict(), "quality": self.quality.to_dict(),
            "served_mix": self.mix(served=True), "mix": self.mix(),
        }


@dataclass(frozen=True)
class _Decided:
    """A re-decided entry waiting for its quality estimates."""

    entry: LedgerEntry
    text: str
    model: str
    tier: str
    cost_usd: Decimal | None
    consultations: tuple[Consultation, ...]


class Replayer:
    """One policy's replay, fed entries in order (one at a time or a batch at a time) and folded as
    it goes: it holds at most `CHUNK` entries awaiting their batched quality estimates, the
    running totals and, with `keep_rows`, the (small) replay rows. Fed the same entries in the same
    order, it reports the same numbers however they were batched."""

    def __init__(self, engine: Engine, policy: str | None = None, *,
                 estimate: Estimate | None = None, keep_rows: bool = False) -> None:
        name, router = engine.router(policy)
        self.engine, self.policy = engine, name
        self.estimate = estimate or estimator_for(engine, name)
        self.labels = tier_labels(router)
        self.read = 0
        self.skipped: Counter[str] = Counter()
        self._fold = TotalsFold()
        self._rows: list[ReplayRow] | None = [] if keep_rows else None
        self._pending: list[_Decided] = []
        self._in_chunk = 0

    async def add(self, entry: LedgerEntry) -> None:
        """Re-decide one entry (judged with its chunk's batched estimate)."""
        result = await _decide(entry, self.engine, self.policy, self.labels)
        self.read += 1
        if isinstance(result, str):
            self.skipped[result] += 1
        else:
            self._pending.append(result)
        self._in_chunk += 1
        if self._in_chunk == CHUNK:
            self._judge_pending()

    async def feed(self, entries: Iterable[LedgerEntry]) -> None:
        """Re-decide a batch of entries, in order."""
        for entry in entries:
            await self.add(entry)

    def _judge_pending(self) -> None:
        """Judge the chunk's decided entries and fold their rows in."""
        rows = _judge(self._pending, self.estimate) if self._pending else []
        for row in rows:
            self._fold.add(row)
        if self._rows is not None:
            self._rows += rows
        self._pending, self._in_chunk = [], 0

    def report(self) -> ReplayReport:
        """The report over every entry fed so far."""
        self._judge_pending()
        rows = tuple(self._rows) if self._rows is not None else ()
        return ReplayReport(self.policy, self.read, rows, dict(self.skipped), self._fold.totals())


async def replay(entries: Iterable[LedgerEntry], engine: Engine, policy: str | None = None, *,
                 estimate: Estimate | None = None, progress: ProgressHook | None = None
                 ) -> ReplayReport:
    """Re-decide every logged request with `policy` (default: the default policy) and report
    (with its rows). `estimate` gives P(good) per (prompt, model) (default:
    `estimator_for(engine, policy)`); `progress` is called after each entry. Nothing is sent
    anywhere."""
    replayer = Replayer(engine, policy, estimate=estimate, keep_rows=True)
    items = list(entries)
    for done, entry in enumerate(items, 1):
        await replayer.add(entry)
        if progress is not None:
            progress(done, len(items))
    return replayer.report()


async def replay_batches(batches: AsyncIterable[Sequence[LedgerEntry]],
                         replayers: Sequence[Replayer],
                         progress: Callable[[int], None] | None = None) -> list[ReplayReport]:
    """Feed each batch (e.g. `Store.iterate`'s) to every replayer as it arrives, then report each:
    one pass over the ledger for all the policies, one batch of entries alive at a time. `progress`
    is called with the entries read so far after each batch."""
    read = 0
    async for batch in batches:
        for replayer in replayers:
            await replayer.feed(batch)
        read += len(batch)
        if progress is not None:
            progress(read)
    return [replayer.report() for replayer in replayers]


def skip_reason(entry: LedgerEntry) -> str | None:
    """Why an entry cannot be replayed, or None when it can."""
    if entry.status != "ok":
        return SKIP_ERROR
    if not entry.prompt_text:
        return SKIP_NO_TEXT
    if entry.input_tokens is None or entry.output_tokens is None:
        return SKIP_NO_USAGE
    return None if entry.model else SKIP_NO_MODEL


async def _decide(entry: LedgerEntry, engine: Engine, policy: str,
                  labels: Mapping[str, Mapping[str, str]]) -> _Decided | str:
    reason = skip_reason(entry)
    if reason is not None:
        return reason
    request = RouteRequest.from_messages(messages_from_text(entry.prompt_text or ""))
    calls: list[Consultation] = []
    caller = offline_caller(labels, entry.tier, engine.catalog, calls.append)
    try:
        decision = await engine.decide(request, policy=policy, caller=caller)
    except LLMRouteError:
        return SKIP_UNROUTABLE
    cost = engine.catalog.cost(decision.model, logged_usage(entry, decision.model))
    return _Decided(entry, request.last_user_text, decision.model, decision.tier, cost, tuple(calls))


def logged_usage(entry: LedgerEntry, model: str) -> Usage:
    """The entry's logged tokens as `model` would be billed them (cached only on the same model)."""
    cached = (entry.cached_tokens or 0) if model == entry.model else 0
    return Usage(entry.input_tokens or 0, entry.output_tokens or 0, cached)


def _judge(decided: Sequence[_Decided], estimate: Estimate) -> list[ReplayRow]:
    """Rows for decided entries, with one batched estimate over their prompts."""
    models = [m for d in decided for m in (d.model, d.entry.model or "")]
    estimates = estimate([d.text for d in decided], list(dict.fromkeys(models)))
    rows = []
    for d, known in zip(decided, estimates, strict=True):
        served = d.entry.model or ""
        rows.append(ReplayRow(
            request_id=d.entry.request_id, served_model=served, model=d.model, tier=d.tier,
            actual_cost_usd=d.entry.cost_usd, model_cost_usd=d.cost_usd,
            served_quality=quality_for(d.entry, served, known),
            quality=quality_for(d.entry, d.model, known), consultations=d.consultations))
    return rows


def quality_for(entry: LedgerEntry, model: str, estimates: Mapping[str, float]) -> Quality:
    """Observed feedback when `model` answered the entry, else the estimate, else unknown."""
    observed = quality_of(entry) if model == entry.model else None
    if observed is not None:
        return Quality(observed, "observed")
    if model in estimates:
        return Quality(estimates[model], "estimated")
    return Quality(None, "unknown")


def _money(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)

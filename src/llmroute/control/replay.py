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
from dataclasses import dataclass
from decimal import Decimal

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
from .replay_report import (  # the report's parts, re-exported: callers import them from here
    Quality,
    QualitySummary,
    ReplayReport,
    ReplayRow,
    ReplayTotals,
    Source,
    TotalsFold,
)

__all__ = ["Quality", "QualitySummary", "ReplayReport", "ReplayRow", "ReplayTotals", "Replayer",
           "Source", "TotalsFold", "logged_usage", "quality_for", "replay", "replay_batches",
           "skip_reason"]
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

"""The ledger's side of the alert rules, light enough for the ledger reader process: what an
entry counts for (`group_of`, `is_error`, `is_fallback`), `Tally` over entries, spend and feedback
per subject from the rollups, and the reads the evaluator runs where `ledger.reads` runs them
(`slice_tallies`, `spend_slice`, `feedback_slice`, `arm_window`: `fn(store, *args)`). It imports
the ledger and nothing of the gateway (no settings, no HTTP client), so the reader process that
imports it stays small."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from ..ledger.aggregates import NONE_LABEL
from ..ledger.entry import LedgerEntry
from ..ledger.rollup_read import RollupWindow
from ..ledger.store import Store

if TYPE_CHECKING:
    from .alerts_config import GroupBy

#: The subject of an alert about all traffic.
EVERYTHING = "*"
#: Entries per batch when a time slice is tallied (memory holds one batch, never the slice).
SLICE_BATCH = 5000


def tried_models(entry: LedgerEntry) -> list[str]:
    """The models an entry's request actually tried for its answer (skipped ones, in cooldown,
    and the LLM router's classification calls left out)."""
    return [a.model for a in entry.attempts if not a.skipped and not a.router]


def is_error(entry: LedgerEntry) -> bool:
    """Failed on the gateway's or the upstreams' side: a 5xx, or a 429 after upstream attempts.
    A client's bad request or a refused budget (429 before any attempt) is not an error here."""
    if entry.status != "error":
        return False
    return entry.http_status >= 500 or (entry.http_status == 429 and bool(tried_models(entry)))


def is_fallback(entry: LedgerEntry) -> bool:
    """Answered by a model other than the first one tried (as the Prometheus metric counts)."""
    tried = tried_models(entry)
    return bool(entry.model and tried and tried[0] != entry.model)


def group_of(entry: LedgerEntry, by: GroupBy) -> str:
    """Which subject an entry counts for when traffic is split `by` model, policy or key; a failed
    request counts for the first model it tried."""
    if by == "global":
        return EVERYTHING
    if by == "model":
        tried = tried_models(entry)
        value = entry.model or (tried[0] if tried else None)
    else:
        value = entry.policy if by == "policy" else entry.key_name
    return f"{by}:{value or '-'}"


@dataclass(frozen=True)
class Tally:
    """Counts over a set of ledger entries; additive: the tally of two disjoint sets is the sum of
    theirs (so a window is tallied batch by batch)."""

    requests: int = 0
    upstream: int = 0
    errors: int = 0
    fallbacks: int = 0
    rated: int = 0
    rating_sum: int = 0
    judged: int = 0
    successes: int = 0
    spend: Decimal = Decimal(0)

    @classmethod
    def of(cls, entries: Sequence[LedgerEntry]) -> Tally:
        ratings = [e.user_rating for e in entries if e.user_rating is not None]
        judged = [e.task_success for e in entries if e.task_success is not None]
        return cls(
            requests=len(entries),
            upstream=sum(1 for e in entries if tried_models(e)),
            errors=sum(1 for e in entries if is_error(e)),
            fallbacks=sum(1 for e in entries if is_fallback(e)),
            rated=len(ratings), rating_sum=sum(ratings),
            judged=len(judged), successes=sum(1 for ok in judged if ok),
            spend=sum((e.cost_usd for e in entries if e.cost_usd is not None), Decimal(0)),
        )

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


def tally(entries: Iterable[LedgerEntry], by: GroupBy) -> dict[str, Tally]:
    """One `Tally` per subject."""
    groups: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        groups.setdefault(group_of(entry, by), []).append(entry)
    return {subject: Tally.of(group) for subject, group in groups.items()}


@dataclass(frozen=True)
class FeedbackTally:
    """The feedback counts a quality rule judges (what `Tally` has of them), as the rollups hold
    them for any window."""

    rated: int = 0
    rating_sum: int = 0
    judged: int = 0
    successes: int = 0


def rollup_subject(by: GroupBy, label: str) -> str:
    """The subject of a rollup group's label, as `group_of` names it."""
    return f"{by}:{'-' if label == NONE_LABEL else label}"


def rollup_feedback(window: RollupWindow) -> dict[str, FeedbackTally]:
    """Each group's feedback counts, by subject (a window read grouped by policy)."""
    return {rollup_subject("policy", g.label): FeedbackTally(
        g.tally.rated, g.tally.rating_points, g.tally.judged, g.tally.successes)
        for g in window.groups}


def rollup_spend(window: RollupWindow, by: GroupBy) -> dict[str, Decimal]:
    """Spend per subject of a window read grouped `by` (any grouping for "global"); subjects
    without requests are absent. By model, a request counts for the model that answered it (a
    failed request, which `group_of` counts for the first model it tried, has no spend)."""
    if by == "global":
        return {EVERYTHING: window.total.tally.cost_usd} if window.total.tally.requests else {}
    return {rollup_subject(by, g.label): g.tally.cost_usd for g in window.groups}


def add_tallies(into: dict[str, Tally], more: Mapping[str, Tally]) -> dict[str, Tally]:
    """Add `more`'s tallies to `into`'s, subject by subject (in place), and return `into`."""
    for subject, counts in more.items():
        old = into.get(subject)
        into[subject] = counts if old is None else old + counts
    return into


# -- the reads (run where `ledger.reads` runs them) ------------------------------------------
async def slice_tallies(store: Store, since: datetime, until: datetime, by: GroupBy,
                        batch_size: int = SLICE_BATCH) -> dict[str, Tally]:
    """One `Tally` per subject of the entries in [since, until), grouped `by`. The entries stream
    in batches (`Store.iterate`) and are folded as they come: memory holds one batch, never a
    whole window."""
    found: dict[str, Tally] = {}
    async for batch in store.iterate(since, until, batch_size=batch_size):
        add_tallies(found, tally(batch, by))
    return found


async def arm_window(store: Store, since: datetime, until: datetime) -> RollupWindow:
    """The rollups by experiment arm over [since, until) (what the guardrails judge)."""
    return await store.rollups("arm", since, until)


async def spend_slice(store: Store, since: datetime, until: datetime, by: GroupBy) -> dict[str, Decimal]:
    """Spend per subject in [since, until), from the rollups (exact money)."""
    return rollup_spend(await store.rollups("model" if by == "global" else by, since, until), by)


async def feedback_slice(store: Store, since: datetime, until: datetime) -> dict[str, FeedbackTally]:
    """Each policy's feedback counts in [since, until), from the rollups."""
    return rollup_feedback(await store.rollups("policy", since, until))

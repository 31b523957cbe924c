"""Training data from the ledger: logged requests joined with their feedback become outcome records
(the same format as the shared datasets), so `llmroute train --from-ledger` learns from your traffic.

A request counts when its prompt text was stored (`ledger.store_text: true`) and it has feedback:
`task_success` gives quality 1 or 0; otherwise a `user_rating` r in 1–5 gives (r − 1) / 4.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..ledger.entry import LedgerEntry
from ..ledger.store import Store
from .data import OutcomeRecord

USER_PREFIX = "user: "


def user_text(prompt_text: str) -> str:
    """The last user turn of the ledger's `role: content` transcript (what the router routes on)."""
    start = prompt_text.rfind("\n" + USER_PREFIX)
    if start >= 0:
        return prompt_text[start + 1 + len(USER_PREFIX):]
    return prompt_text[len(USER_PREFIX):] if prompt_text.startswith(USER_PREFIX) else prompt_text


def quality_of(entry: LedgerEntry) -> float | None:
    """Task success first (1/0), else the rating scaled to [0, 1]; None without feedback."""
    if entry.task_success is not None:
        return 1.0 if entry.task_success else 0.0
    if entry.user_rating is not None:
        return (entry.user_rating - 1) / 4
    return None


def records_from_entries(entries: Iterable[LedgerEntry]) -> list[OutcomeRecord]:
    """Outcome records for every answered, text-bearing entry with feedback."""
    records = []
    for entry in entries:
        quality = quality_of(entry)
        if quality is None or entry.status != "ok" or not entry.model or not entry.prompt_text:
            continue
        outcomes = {entry.model: quality}
        costs = {entry.model: float(entry.cost_usd)} if entry.cost_usd is not None else {}
        records.append(OutcomeRecord(id=entry.request_id, prompt=user_text(entry.prompt_text),
                                     outcomes=outcomes, dataset="ledger", cost_usd=costs))
    return records


async def load_from_ledger(store: Store, since: datetime | None = None) -> list[OutcomeRecord]:
    """Read the ledger (since a time, if given) and turn it into outcome records."""
    return records_from_entries(await store.query(since=since))

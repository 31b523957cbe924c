"""Learning data from the ledger: logged requests joined with their feedback become outcome records
(the same format as the shared datasets), so `llmroute train --from-ledger` learns from your traffic,
and a calibration table (`logged_traffic`), so `llmroute calibrate --from-ledger` tunes on it.

A request counts when its prompt text was stored (`ledger.store_text: true`) and it has feedback:
`task_success` gives quality 1 or 0; otherwise a `user_rating` r in 1–5 gives (r − 1) / 4.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from ..ledger.entry import LedgerEntry
from ..ledger.paging import DEFAULT_BATCH_SIZE
from ..ledger.store import Store
from .data import OutcomeRecord
from .model import RouterModel

F64 = npt.NDArray[np.float64]

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


async def load_from_ledger(store: Store, since: datetime | None = None, until: datetime | None = None,
                           *, batch_size: int = DEFAULT_BATCH_SIZE) -> list[OutcomeRecord]:
    """Read the ledger (in [since, until), when given) and turn it into outcome records, batch by
    batch (`Store.iterate`): only the records are kept, never the window's entries."""
    return await records_from_batches(store.iterate(since, until, batch_size=batch_size))


async def records_from_batches(batches: AsyncIterable[Sequence[LedgerEntry]]) -> list[OutcomeRecord]:
    """`records_from_entries` over batches of entries, each batch converted as it arrives."""
    records: list[OutcomeRecord] = []
    async for batch in batches:
        records += records_from_entries(batch)
    return records


@dataclass(frozen=True)
class LoggedTraffic:
    """Logged requests as a calibration table over `models`: `quality` and `cost` are the router's
    own estimates (P(good), expected cost) except where the request was answered by that model,
    whose observed feedback and logged cost replace them. Logs hold one outcome per request, so the
    other cells can only be estimated: quality goals are as good as the router's calibration, while
    shares of calls (which depend only on the prompts) are exact."""

    texts: tuple[str, ...]
    models: tuple[str, ...]
    quality: F64
    cost: F64
    observed: int      # cells holding an observed outcome


@dataclass(frozen=True)
class LoggedRequest:
    """What calibration keeps of one answered, text-bearing entry: the text routed on, the model
    that answered, its observed quality (None without feedback) and its logged cost."""

    text: str
    model: str | None
    quality: float | None
    cost_usd: float | None


def logged_requests(entries: Iterable[LedgerEntry]) -> list[LoggedRequest]:
    """The calibration rows of the answered entries with stored prompt text, in order."""
    return [LoggedRequest(user_text(e.prompt_text or ""), e.model, quality_of(e),
                          None if e.cost_usd is None else float(e.cost_usd))
            for e in entries if e.status == "ok" and e.prompt_text]


async def logged_requests_from(batches: AsyncIterable[Sequence[LedgerEntry]]) -> list[LoggedRequest]:
    """`logged_requests` over batches of entries (e.g. `Store.iterate`'s), each converted as it
    arrives: the window's entries are never all held."""
    rows: list[LoggedRequest] = []
    async for batch in batches:
        rows += logged_requests(batch)
    return rows


def logged_traffic(entries: Iterable[LedgerEntry], model: RouterModel, models: Sequence[str]
                   ) -> LoggedTraffic:
    """Every answered request with stored prompt text, over `models` (which `model` must know)."""
    return traffic_table(logged_requests(entries), model, models)


def traffic_table(kept: Sequence[LoggedRequest], model: RouterModel, models: Sequence[str]
                  ) -> LoggedTraffic:
    """The calibration table of logged requests, over `models` (which `model` must know)."""
    texts = tuple(r.text for r in kept)
    names = tuple(models)
    if not texts:
        empty = np.zeros((0, len(names)))
        return LoggedTraffic(texts, names, empty, empty.copy(), 0)
    p, est = model.predict_many(texts, names)
    quality, cost = p.copy(), est.copy()
    observed = 0
    for i, row in enumerate(kept):
        if row.model not in names:
            continue
        j = names.index(row.model)
        if row.quality is not None:
            quality[i, j] = row.quality
            observed += 1
        if row.cost_usd is not None:
            cost[i, j] = row.cost_usd
    return LoggedTraffic(texts, names, quality, cost, observed)

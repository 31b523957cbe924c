"""The answers the semantic cache served, for an operator to judge (`llmroute report --cache-hits`):
per semantic hit its time, the similarity, its prompt, the prompt of the cached request it was
answered from (`cached_from`) and the answer served. Text shows only where the ledger stores it
(`ledger.store_text`); otherwise it is None ("not stored").

Read through `Store.iterate(cache=("semantic",))`: the database filters the window's rows, pages
come one at a time, and reading stops at `limit` hits, so a long window is never held as objects.
The cached requests are fetched one by one (`Store.get`), one per hit shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.table import Table

from ..ledger.entry import LedgerEntry
from ..ledger.store import Store
from .tables import Layout, fit

#: The response-cache state of a semantic hit (`LedgerEntry.cache`).
SEMANTIC = "semantic"
#: Hits listed unless asked otherwise.
DEFAULT_LIMIT = 50
NOT_STORED = "(not stored)"


@dataclass(frozen=True)
class ServedHit:
    """One semantic hit: what was asked, what it was matched to, what was answered."""

    request_id: str
    ts: datetime
    similarity: float | None
    model: str | None
    key_name: str | None
    prompt: str | None
    cached_from: str | None
    cached_prompt: str | None
    answer: str | None


def served_hit(hit: LedgerEntry, cached: LedgerEntry | None) -> ServedHit:
    """A hit and the entry it was answered from (None: unknown or pruned). The answer served is
    the hit's own response text, else the cached request's (the same answer)."""
    answer = hit.response_text if hit.response_text is not None else (
        cached.response_text if cached is not None else None)
    return ServedHit(hit.request_id, hit.ts, hit.cache_similarity, hit.model, hit.key_name,
                     hit.prompt_text, hit.cached_from,
                     cached.prompt_text if cached is not None else None, answer)


async def semantic_hits(store: Store, since: datetime | None, until: datetime | None, *,
                        limit: int = DEFAULT_LIMIT, batch_size: int = 500) -> list[ServedHit]:
    """The window's first `limit` semantic hits, oldest first (ValueError for a limit below 1)."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    found: list[ServedHit] = []
    async for batch in store.iterate(since, until, batch_size=min(batch_size, limit),
                                     cache=(SEMANTIC,)):
        for hit in batch[:limit - len(found)]:
            cached = await store.get(hit.cached_from) if hit.cached_from else None
            found.append(served_hit(hit, cached))
        if len(found) >= limit:
            break
    return found


def hit_dict(hit: ServedHit) -> dict[str, Any]:
    """A JSON-ready hit (time ISO 8601 UTC; text None where the ledger stores none)."""
    return {"request_id": hit.request_id, "ts": hit.ts.isoformat(), "similarity": hit.similarity,
            "model": hit.model, "key": hit.key_name, "prompt": hit.prompt,
            "cached_from": hit.cached_from, "cached_prompt": hit.cached_prompt,
            "answer": hit.answer}


def _text(value: str | None, width: int | None = 200) -> str:
    if value is None:
        return NOT_STORED
    return value if width is None or len(value) <= width else value[:width - 1] + "…"


#: The hits table's columns; model and key show with `--wide` only.
HIT_LAYOUT = Layout(("time (UTC)", "similarity", "prompt", "matched prompt (cached from)",
                     "answer served", "model", "key"), extra=("key", "model"),
                    wrap=("prompt", "matched prompt (cached from)", "answer served", "model"),
                    left=("prompt", "matched prompt (cached from)", "answer served", "model", "key"))


def hit_cells(hit: ServedHit, cut: int | None) -> dict[str, str]:
    """One hit's cells (texts cut at `cut` characters, whole when None)."""
    matched = f"{_text(hit.cached_prompt, cut)}\n({hit.cached_from or 'unknown'})"
    return {"time (UTC)": f"{hit.ts:%Y-%m-%d %H:%M:%S}",
            "similarity": "—" if hit.similarity is None else f"{hit.similarity:.3f}",
            "prompt": _text(hit.prompt, cut), "matched prompt (cached from)": matched,
            "answer served": _text(hit.answer, cut), "model": hit.model or "-",
            "key": hit.key_name or "-"}


def hits_table(hits: Sequence[ServedHit], wide: bool = False, width: int | None = None) -> Table:
    """A table, one row per hit, that fits `width`: long texts wrap, cut at 200 characters
    (whole when `wide`, and in --json)."""
    rows = [hit_cells(hit, None if wide else 200) for hit in hits]
    out = fit(HIT_LAYOUT, "semantic cache hits", rows, wide, width)
    out.show_lines = True
    return out

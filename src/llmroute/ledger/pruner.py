"""Pruning the ledger on its retention settings (`ledger.retention`): once (`prune_once`, what
`llmroute db prune` runs) or every `interval_s` in the gateway's background (`prune_forever`),
never on the request path. A failed run is logged and retried at the next interval: pruning never
stops the gateway."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from ..settings import RetentionConfig
from .retention import Cutoffs, Pruned, cutoffs_at
from .store import Store

log = logging.getLogger("llmroute.ledger")


def cutoffs_of(retention: RetentionConfig, now: datetime | None = None) -> Cutoffs:
    """The cutoffs of the retention settings at `now` (default: the current time)."""
    return cutoffs_at(now or datetime.now(UTC), raw_days=retention.raw_days,
                      text_days=retention.text_days, hour_rollup_days=retention.hour_rollup_days,
                      day_rollup_days=retention.day_rollup_days)


async def prune_once(store: Store, retention: RetentionConfig, *, now: datetime | None = None,
                     dry_run: bool = False) -> Pruned:
    """Prune (or, with `dry_run`, count) what the retention settings say is too old at `now`."""
    cutoffs = cutoffs_of(retention, now)
    if cutoffs.empty:
        return Pruned(dry_run=dry_run)
    return await store.prune(cutoffs, dry_run=dry_run)


async def prune_logged(store: Store, retention: RetentionConfig) -> None:
    """One background run: its result logged, any failure logged and swallowed."""
    try:
        pruned = await prune_once(store, retention)
    except Exception:
        log.exception("ledger: pruning failed (retried in %.0f s)", retention.interval_s)
        return
    log.info("ledger pruned: %s", pruned.summary())


async def prune_forever(store: Store, retention: RetentionConfig) -> None:
    """Prune now and every `retention.interval_s` seconds, until cancelled."""
    while True:
        await prune_logged(store, retention)
        await asyncio.sleep(retention.interval_s)

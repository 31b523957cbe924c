"""A fixture ledger for the experiment report: two arms of 200 requests each, built so that every
number of the report can be worked out by hand (see test_experiment_report.py).

| arm   | errors | priced costs (alternating) | judged: successes | rated: fives + fours | latency   |
|-------|--------|----------------------------|-------------------|----------------------|-----------|
| base  | 10     | 95 x $0.002, 95 x $0.004   | 100: 80           | 50: 25 + 25          | 0.01·(i+1)|
| cheap | 30     | 85 x $0.0005, 85 x $0.001  | 100: 79           | 50: 24 + 26          | 0.005·(i+1)|

Plus 2 requests of an arm the config does not have ("old"), 3 of another experiment and 2 with no
experiment. Errors are unpriced.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from llmroute.ledger import LedgerEntry, open_store

NAME = "cheap-vs-default"
BASE = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
WINDOW = ("--since", "2025-01-01", "--until", "2025-01-03")
EXPERIMENT: dict[str, Any] = {
    "name": NAME, "control": "base", "rating_margin": 0.5,
    "arms": {"base": {"policy": "default"}, "cheap": {"policy": "cheap"}},
}


def arm_entries(arm: str, *, errors: int, costs: tuple[str, str], judged: range, successes: int,
                rated: range, fives: int, latency_step: float) -> list[LedgerEntry]:
    entries = []
    for i in range(200):
        ok = i >= errors
        values: dict[str, Any] = {
            "request_id": f"{arm}-{i:03d}", "ts": BASE + timedelta(minutes=i),
            "status": "ok" if ok else "error", "http_status": 200 if ok else 502,
            "user": f"{arm}-user-{i % 40}", "policy": "default" if arm == "base" else arm,
            "experiment_arm": f"{NAME}:{arm}", "latency_s": latency_step * (i + 1),
            "cost_usd": Decimal(costs[i % 2]) if ok else None,
        }
        if i in judged:
            values["task_success"] = i < judged.start + successes
        if i in rated:
            values["user_rating"] = 5 if i < rated.start + fives else 4
        entries.append(LedgerEntry(**values))
    return entries


def fixture_entries() -> list[LedgerEntry]:
    base = arm_entries("base", errors=10, costs=("0.002", "0.004"), judged=range(10, 110),
                       successes=80, rated=range(110, 160), fives=25, latency_step=0.01)
    cheap = arm_entries("cheap", errors=30, costs=("0.0005", "0.001"), judged=range(30, 130),
                        successes=79, rated=range(130, 180), fives=24, latency_step=0.005)
    extra = [LedgerEntry(request_id=f"x-{i}", ts=BASE + timedelta(hours=5, minutes=i), status="ok",
                         http_status=200, experiment_arm=label)
             for i, label in enumerate([f"{NAME}:old", f"{NAME}:old", "other:base", "other:base",
                                        "other:b", None, None])]
    return base + cheap + extra


def write_ledger(tmp_path: Path, entries: list[LedgerEntry]) -> str:
    """A new SQLite ledger holding `entries`; returns its URL."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"

    async def fill() -> None:
        store = open_store(url)
        await store.migrate()
        await store.write(entries)
        await store.close()

    asyncio.run(fill())
    return url


def read_ledger(url: str) -> list[LedgerEntry]:
    async def read() -> list[LedgerEntry]:
        store = open_store(url)
        try:
            return await store.query()
        finally:
            await store.close()

    return asyncio.run(read())

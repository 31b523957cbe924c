"""The dashboard on a ledger too big to load (issue 12): its data come from the store's rollups, the
gateway's memory stays flat across refreshes, and no refresh builds the window's entries."""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from llmroute.ledger import LedgerEntry, open_store
from llmroute.ledger.views import EXACT_BELOW
from llmroute.reports.aggregate import aggregate_entries

from .support import Serve
from .test_dashboard import BEARER, keyed_with_ledger

ENTRIES = EXACT_BELOW * 2 + 1_234  # above the size a window is aggregated from raw rows


def _ledger(path: Path, now: datetime) -> list[LedgerEntry]:
    rng = random.Random(12)
    rows = [LedgerEntry(
        request_id=f"scale-{i:06d}", ts=now - timedelta(seconds=rng.uniform(60, 3 * 86400)),
        status="ok", http_status=200, key_name="ops", policy="default", tier="simple",
        model=rng.choice(["fake/mini", "fake/big"]), latency_s=rng.lognormvariate(-1, 0.5),
        cost_usd=Decimal(rng.randrange(1, 10_000)) / 10**9, baseline_cost_usd=Decimal("0.00002"),
        baseline_model="fake/big", user_rating=rng.choice([None, None, 3, 5]))
        for i in range(ENTRIES)]

    async def write() -> None:
        store = open_store(f"sqlite:///{path}")
        try:
            await store.migrate()
            for start in range(0, len(rows), 5_000):
                await store.write(rows[start:start + 5_000])
        finally:
            await store.close()

    asyncio.run(write())
    return rows


def test_dashboard_memory_stays_flat_on_a_large_ledger(serve: Serve, tmp_path: Path) -> None:
    rows = _ledger(tmp_path / "ledger.db", datetime.now(UTC))
    gw = keyed_with_ledger(serve, tmp_path)
    expected = aggregate_entries(rows, "model").total
    with gw.http() as http:
        def refresh() -> dict[str, object]:
            response = http.get("/dashboard/data", params={"since": "7d"}, headers=BEARER)
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body

        first = refresh()
        total = first["total"]
        assert isinstance(total, dict)
        assert total["requests"] == ENTRIES and Decimal(total["cost_usd"]) == expected.tally.cost_usd
        assert first["latency_percentiles"] == "within 1%"
        # the series' day buckets add up to the window, exactly (the reference: the raw entries)
        series = first["series"]
        assert isinstance(series, dict) and series["bucket"] == "day"
        points = series["points"]
        assert sum(p["requests"] for p in points) == ENTRIES
        assert sum(Decimal(p["cost_usd"]) for p in points) == expected.tally.cost_usd
        assert sum(p["rated"] for p in points) == expected.tally.rated
        assert series["keys"] == [{"name": "ops", "requests": ENTRIES, "errors": 0,
                                   "cost_usd": total["cost_usd"]}]
        for _ in range(5):
            refresh()
        gc.collect()
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            for _ in range(100):
                refresh()
            gc.collect()
            after, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # the window's entries as objects would be tens of MB; a refresh holds a few thousand rows
    assert peak - before < 8 * 2**20, f"a refresh held {(peak - before) / 2**20:.1f} MiB"
    assert after - before < 1 * 2**20, f"100 refreshes kept {(after - before) / 2**20:.1f} MiB"

"""The dashboard's reads on a SQLite ledger of N entries spread over 7 days (3 keys, 2 models, 1 in
20 an error, a third rated), run inline in this process, 5 timed runs after a warm-up each:

    PYTHONPATH=src python bench/ledger/bench_dashboard_reads.py [N] [PATH]

Rows per window (24h, 7d): the report's existing read (`views.numbers_with`), the series and spend
tables (`series.dashboard_series`, admin and one app key), the request explorer's first page
(`explore.latest`, 50 rows) unfiltered and with selective filters, and a filter matching nothing
(the explorer's worst case: it reads back through the whole window).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from llmroute.ledger import LedgerEntry, open_store
from llmroute.ledger.explore import Filters, latest
from llmroute.ledger.series import dashboard_series
from llmroute.ledger.store import Store
from llmroute.ledger.views import numbers_with


def _rows(n: int, now: datetime) -> list[LedgerEntry]:
    rng = random.Random(7)
    return [LedgerEntry(request_id=f"m-{i:07d}", ts=now - timedelta(seconds=rng.uniform(1, 7 * 86400)),
                        status=rng.choice(["ok"] * 19 + ["error"]), http_status=200,
                        key_name=rng.choice(["a", "b", "c"]), policy="default", tier="simple",
                        model=rng.choice(["fake/mini", "fake/big"]), latency_s=0.2,
                        cost_usd=Decimal(rng.randrange(1, 10_000)) / 10**9,
                        user_rating=rng.choice([None, 3, 5])) for i in range(n)]


async def _time(call: Callable[[], Awaitable[object]]) -> tuple[float, float]:
    await call()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[2] * 1000, times[0] * 1000


def _cases(store: Store, since: datetime, now: datetime
           ) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
    teams = {"a": "x", "b": "x", "c": "y"}
    return [
        ("report (numbers_with)", lambda: numbers_with(store, "model", since, now, ("policy",))),
        ("series+spend (admin)", lambda: dashboard_series(store, since, now, None, teams)),
        ("series+spend (app key)", lambda: dashboard_series(store, since, now, "a", teams)),
        ("explorer page 1 (50)", lambda: latest(store, since, now, Filters(), 50)),
        ("explorer status=error (50)", lambda: latest(store, since, now, Filters(status="error"), 50)),
        ("explorer key=c,model=fake/big", lambda: latest(store, since, now,
                                                         Filters(key="c", model="fake/big"), 50)),
        ("explorer filter matching nothing", lambda: latest(store, since, now,
                                                            Filters(model="none"), 50)),
    ]


async def main(n: int, path: str) -> None:
    now = datetime.now(UTC)
    store = open_store(f"sqlite:///{path}")
    await store.migrate()
    if await store.count() == 0:
        rows = _rows(n, now)
        for start in range(0, n, 5000):
            await store.write(rows[start:start + 5000])
    print(f"{await store.count()} entries in {path}")
    for label, hours in (("24h", 24), ("7d", 168)):
        for name, call in _cases(store, now - timedelta(hours=hours), now):
            median, fastest = await _time(call)
            print(f"{label:4} {name:34} median {median:8.1f} ms  min {fastest:8.1f} ms")
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
                     sys.argv[2] if len(sys.argv) > 2 else "/tmp/llmroute-bench-dashboard.db"))

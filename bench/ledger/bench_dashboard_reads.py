"""The dashboard's reads on a ledger of N entries spread over 7 days (3 keys, 2 models, 1 in 20 an
error, a third rated), run inline in this process, 5 timed runs after a warm-up each:

    PYTHONPATH=src python bench/ledger/bench_dashboard_reads.py [N] [PATH or URL]

(a path: a SQLite file; a URL: any ledger URL, e.g. postgresql://...?schema=bench100k). Rows per
window (24h, 7d): the report's existing read (`views.numbers_with`), the series and spend tables
(`series.dashboard_series`, admin and one app key), the request explorer's first page
(`explore.latest`, 50 rows: the filters in SQL, `Store.latest`) unfiltered, with a common filter
(status=ok), selective ones and one matching nothing; and for the filtered pages the explorer as it
was before issue 16's change (`python_latest`: pages read forwards through `Store.iterate` in
doubling slices back from the window's end, filtered in Python), measured in the same run.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from llmroute.ledger import LedgerEntry, open_store
from llmroute.ledger.explore import Filters, Page, latest
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


async def python_latest(store: Store, since: datetime, until: datetime, filters: Filters,
                        limit: int) -> Page:
    """The explorer's first page as it was read before the filters went into SQL: slices back
    from the window's end (600 s, then twice as long each), each read forwards and filtered here."""
    high, span, found = until, timedelta(seconds=600), list[LedgerEntry]()
    while high > since and len(found) <= limit:
        low = max(since, high - span)
        newest: deque[LedgerEntry] = deque(maxlen=limit + 1 - len(found))
        cache = [filters.cache] if filters.cache else None
        async for batch in store.iterate(low, high, cache=cache):
            newest.extend(e for e in batch if filters.match(e))
        found += reversed(newest)
        high, span = low, span * 2
    page = tuple(found[:limit])
    return Page(page, (page[-1].ts, page[-1].request_id) if len(found) > limit and page else None)


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
    found: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("report (numbers_with)", lambda: numbers_with(store, "model", since, now, ("policy",))),
        ("series+spend (admin)", lambda: dashboard_series(store, since, now, None, teams)),
        ("series+spend (app key)", lambda: dashboard_series(store, since, now, "a", teams)),
        ("explorer page 1 (50)", lambda: latest(store, since, now, Filters(), 50)),
    ]
    filtered = [("status=ok", Filters(status="ok")), ("status=error", Filters(status="error")),
                ("key=c,model=fake/big", Filters(key="c", model="fake/big")),
                ("matching nothing", Filters(model="none"))]
    for name, filters in filtered:
        found.append((f"explorer {name} SQL", lambda f=filters: latest(store, since, now, f, 50)))
        found.append((f"explorer {name} before",
                      lambda f=filters: python_latest(store, since, now, f, 50)))
    return found


async def main(n: int, path: str) -> None:
    now = datetime.now(UTC)
    store = open_store(path if "://" in path else f"sqlite:///{path}")
    await store.migrate()
    if await store.count() == 0:
        rows = _rows(n, now)
        for start in range(0, n, 5000):
            await store.write(rows[start:start + 5000])
    print(f"{await store.count()} entries in {path}")
    for label, hours in (("24h", 24), ("7d", 168)):
        for name, call in _cases(store, now - timedelta(hours=hours), now):
            median, fastest = await _time(call)
            print(f"{label:4} {name:40} median {median:8.1f} ms  min {fastest:8.1f} ms")
    await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000,
                     sys.argv[2] if len(sys.argv) > 2 else "/tmp/llmroute-bench-dashboard.db"))

"""The worst case of a window's read (issue 12): both edges at half past an hour that holds
1M-rows-a-day traffic.

    .venv/bin/python bench/ledger/bench_edges.py sqlite:///out/ledger-10m.db --add

With --add, 43,000 generator entries go into each of three hours of a generated ledger (through
`Store.write`, rollups included; ids `dense-*`, so a second --add is a no-op). Then
`views.numbers_with` (by model and arm, as the dashboard reads) is timed for 24h and 7d windows
ending at half past one of those hours, so both edges are half an hour of raw rows, and for a
window from half past that hour to now, as the dashboard reads (its current hour is its rollup
less nothing, so only the start edge reads raw rows); median of 5.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import entries

from llmroute.ledger import open_store
from llmroute.ledger.views import numbers_with

HOURS = (datetime(2026, 12, 3, 10, tzinfo=UTC), datetime(2026, 12, 4, 10, tzinfo=UTC),
         datetime(2026, 11, 27, 10, tzinfo=UTC))
PER_HOUR = 43_000
UNTIL = datetime(2026, 12, 4, 10, 29, 59, tzinfo=UTC)


async def main(url: str, add: bool) -> None:
    store = open_store(url)
    try:
        if add:
            for h, hour in enumerate(HOURS):
                made = [dataclasses.replace(e, request_id=f"dense-{h}-{i}",
                                            ts=hour + timedelta(seconds=i * 3600 / PER_HOUR))
                        for i, e in enumerate(entries(PER_HOUR, 3600))]
                for i in range(0, len(made), 256):
                    await store.write(made[i:i + 256])
        now = datetime.now(UTC)
        windows = [(f"{span}, both edges at half past", UNTIL - span, UNTIL)
                   for span in (timedelta(hours=24), timedelta(days=7))]
        # as the dashboard reads: ending now, from half past a dense hour
        windows.append(("from half past a dense hour to now", UNTIL + timedelta(seconds=1), now))
        for name, since, until in windows:
            times = []
            for _ in range(5):
                started = time.perf_counter()
                numbers, _ = await numbers_with(store, "model", since, until, ("arm",))
                times.append(time.perf_counter() - started)
            print(f"{url.split(':')[0]} {name}: median {statistics.median(times) * 1000:.0f} ms "
                  f"({numbers.aggregate.total.tally.requests:,} requests)")
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--add", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.add))

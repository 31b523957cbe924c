"""What the ledger's write-ahead log costs (issue 14): entries recorded through a `LedgerWriter` over
a real SQLite ledger file, with the log off and in each fsync mode, in one run.

    .venv/bin/python bench/ledger/wal_cost.py [--entries 10000] [--rate 2000] [--concurrency 32]
        [--rounds 3] [--gateway-cpu-ms 0.43] [--json FILE]

`--concurrency` tasks record entries as the gateway's requests do (`record`, then, with `fsync:
always`, `await durable()` before the answer would complete), `--rate` entries a second in all
(about what one gateway worker serves; faster, the queue would fill and spill to the spool),
until `--entries` are recorded; the writer is then closed (everything in the store).

Measured per mode: the time of `record` itself (what a request pays on the event loop: the queue
and, with the log, its line copied into the mapped segment), entries per second (wall, recording
and the final drain) and CPU per entry (this process, every thread: the writer's batches, SQLite,
the log's appends and fsyncs). Modes alternate within each round; medians over `--rounds` (CPU
also the minimum: the round the machine's other load disturbed least). What the log adds is also
shown as a share of `--gateway-cpu-ms`, the gateway's CPU per request on its full path (issue 6's
0.43 ms at 16 clients, docs/benchmarks.md). First, the log's own work alone, in a tight loop: the
line (`encode`) and `Wal.append` (the line and its copy, page faults and new segments included),
the best of three passes.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from llmroute.ledger import AttemptRecord, LedgerEntry, LedgerWriter, SQLiteStore
from llmroute.ledger.wal import Wal, WalPolicy, encode

POLICIES: dict[str, WalPolicy | None] = {"off": None, "never": WalPolicy("never"),
                                         "interval": WalPolicy("interval"),
                                         "always": WalPolicy("always")}
MODES = tuple(POLICIES)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--entries", type=int, default=10_000)
    p.add_argument("--rate", type=float, default=2000.0, help="entries a second, all tasks")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gateway-cpu-ms", type=float, default=0.43)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def entries(count: int, round_: int) -> list[LedgerEntry]:
    """Entries shaped like the gateway's (an attempt, usage, cost, a routing reason)."""
    start = dt.datetime.now(dt.UTC)
    return [LedgerEntry(
        request_id=f"req_{round_:02d}{n:030d}", ts=start + dt.timedelta(microseconds=n),
        status="ok", http_status=200, key_name="bench", policy="default", router="cascade",
        tier="simple", confidence=0.83, reason="rules: short factual question",
        model="bench/small", attempts=(AttemptRecord("bench/small", None, latency_s=0.0012),),
        latency_s=0.0015, upstream_latency_s=0.0012, input_tokens=14, output_tokens=9,
        cost_usd=Decimal("0.0000075"), baseline_cost_usd=Decimal("0.000177"),
        baseline_model="bench/large") for n in range(count)]


async def run_mode(mode: str, batch: list[LedgerEntry], concurrency: int, rate: float
                   ) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="llmroute-wal-bench-") as tmp:
        store = SQLiteStore(str(Path(tmp) / "ledger.db"))
        await store.migrate()
        writer = LedgerWriter(store, spool_path=Path(tmp) / "spool.jsonl", wal=POLICIES[mode])
        await writer.start()
        todo = iter(batch)
        in_record = 0.0

        loop = asyncio.get_running_loop()
        begin, gap = loop.time(), concurrency / rate

        async def client(n: int) -> None:
            nonlocal in_record
            due = begin + n / rate
            for entry in todo:
                await asyncio.sleep(max(0.0, due - loop.time()))
                due += gap
                start = time.perf_counter()
                writer.record(entry)
                in_record += time.perf_counter() - start
                if mode == "always":
                    await writer.durable()

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(concurrency)))
        stats = await writer.aclose()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stored = await store.count()
        await store.close()
    if stored != len(batch) or stats.dropped:
        raise AssertionError(f"{mode}: {stored} of {len(batch)} stored, {stats.dropped} dropped")
    return {"record_us": in_record / len(batch) * 1e6, "per_s": len(batch) / wall,
            "cpu_us": cpu / len(batch) * 1e6}


def alone(batch: list[LedgerEntry], repeats: int = 3) -> dict[str, float]:
    """µs per entry of `encode` and of `Wal.append` (fsync never), each in a tight loop: the best
    of `repeats` (the machine's other load only ever adds)."""
    line_us, append_us = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for entry in batch:
            encode(entry)
        line_us.append((time.perf_counter() - start) / len(batch) * 1e6)
        with tempfile.TemporaryDirectory(prefix="llmroute-wal-bench-") as tmp:
            wal = Wal.open(Path(tmp) / "spool.jsonl", WalPolicy("never"))
            start = time.perf_counter()
            for entry in batch:
                wal.append(entry)
            append_us.append((time.perf_counter() - start) / len(batch) * 1e6)
            asyncio.run(wal.aclose())
    return {"encode_us": min(line_us), "append_us": min(append_us)}


def table(results: dict[str, list[dict[str, float]]], gateway_cpu_ms: float) -> list[dict[str, float]]:
    """Print the comparison (medians; CPU also as the minimum over rounds, the run the machine's
    other load disturbed least) and return its rows."""
    def med(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in results[mode])

    def least(mode: str) -> float:
        return min(r["cpu_us"] for r in results[mode])

    request_us = gateway_cpu_ms * 1000
    print("| WAL | `record` µs (added) | entries/s | CPU µs / entry: median (min) | CPU vs off "
          f"| added CPU: median (min), share of a {gateway_cpu_ms} ms request |")
    print("|---|---|---|---|---|---|")
    rows = []
    for mode in MODES:
        on_path = med(mode, "record_us") - med("off", "record_us")
        added, added_min = med(mode, "cpu_us") - med("off", "cpu_us"), least(mode) - least("off")
        rows.append({"mode": mode, "record_us": med(mode, "record_us"), "per_s": med(mode, "per_s"),
                     "cpu_us": med(mode, "cpu_us"), "cpu_us_min": least(mode),
                     "added_cpu_us": added, "added_cpu_us_min": added_min})
        print(f"| {mode} | {med(mode, 'record_us'):.2f} ({on_path:+.2f}) | {med(mode, 'per_s'):,.0f} "
              f"| {med(mode, 'cpu_us'):.1f} ({least(mode):.1f}) "
              f"| {med(mode, 'cpu_us') / med('off', 'cpu_us'):.2f}× "
              f"| {added:+.1f} µs = {added / request_us:+.1%} ({added_min:+.1f} µs = "
              f"{added_min / request_us:+.1%}) |")
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for round_ in range(args.rounds):
        for i, mode in enumerate(MODES):
            batch = entries(args.entries, round_ * len(MODES) + i)
            results[mode].append(asyncio.run(run_mode(mode, batch, args.concurrency, args.rate)))
    print(f"{args.entries:,} entries at {args.rate:,.0f}/s, {args.concurrency} tasks, "
          f"{args.rounds} rounds ({platform.python_version()}, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)")
    tight = alone(entries(args.entries, 99))
    print(f"alone: encode {tight['encode_us']:.2f} µs, Wal.append {tight['append_us']:.2f} µs an "
          f"entry ({tight['append_us'] / (args.gateway_cpu_ms * 1000):.1%} of a request)")
    rows = table(results, args.gateway_cpu_ms)
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "alone": tight,
                                         "rows": rows, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Ledger ingest with rollups (issue 12): how many entries a second one writer gets into the store.

    .venv/bin/python bench/ledger/bench_ingest.py --url sqlite:///out/ingest.db --rows 100000
    .venv/bin/python bench/ledger/bench_ingest.py --url 'postgresql://postgres@127.0.0.1:5432/test?schema=ingest'
    .venv/bin/python bench/ledger/bench_ingest.py ... --src /tmp/before   # another source tree

Entries are the generator's (bench/ledger/synth_*.py: realistic keys, models, policies, arms, errors,
feedback), built before the clock starts, with times in the last --spread-s seconds (as a live
gateway writes them: into the current hour's and day's rollups). They are written with
`Store.write` in batches of --batch (the `LedgerWriter`'s default, 256), one after another, as the
writer does, into a fresh ledger (the SQLite file, or the PostgreSQL schema, is replaced). Prints
entries/s over --rounds repetitions (each into a fresh ledger) and their median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True,
                   help="a ledger to replace: sqlite:///file or postgresql://...?schema=name")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--spread-s", type=float, default=600.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--src", type=Path, default=None, help="measure the llmroute source tree here instead")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def entries(rows: int, spread_s: float) -> list[Any]:
    import synth_draw
    import synth_rows
    import synth_world

    end = datetime.now(UTC)
    timeline = synth_world.Timeline(rows, 1, end, 12)
    batch = synth_draw.draw(12, 0, 0, rows, timeline, synth_draw.Shares())
    found = [synth_rows.entry_at(batch, i) for i in range(rows)]
    step = spread_s / max(rows, 1)
    return [replace(e, ts=end - timedelta(seconds=spread_s - i * step)) for i, e in enumerate(found)]


async def one_round(url: str, batches: list[list[Any]]) -> float:
    from generate import _replace  # the generator's "drop the file / schema" (never public)

    from llmroute.ledger import open_store

    store = open_store(url)
    try:
        await _replace(store)
        await store.close()
        store = open_store(url)
        await store.migrate()
        started = time.perf_counter()
        for batch in batches:
            await store.write(batch)
        elapsed = time.perf_counter() - started
        count = await store.count()
    finally:
        await store.close()
    if count != sum(len(b) for b in batches):
        raise SystemExit(f"wrote {sum(len(b) for b in batches)} entries, the store counts {count}")
    return elapsed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.src is not None:  # the same benchmark on another source tree
        env = {**os.environ, "PYTHONPATH": str(args.src.resolve() / "src")}
        rest = [a for a in (argv or sys.argv[1:]) if a != "--src" and a != str(args.src)]
        subprocess.run([sys.executable, __file__, *rest], env=env, check=True)
        return {}
    import llmroute

    made = entries(args.rows, args.spread_s)
    batches = [made[i:i + args.batch] for i in range(0, len(made), args.batch)]
    rates = []
    for _ in range(args.rounds):
        elapsed = asyncio.run(one_round(args.url, batches))
        rates.append(args.rows / elapsed)
        print(f"  {args.rows:,} entries in {elapsed:.2f} s: {rates[-1]:,.0f} entries/s", flush=True)
    result = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "code": str(Path(llmroute.__file__).parent), "url": args.url,
              "rows": args.rows, "batch": args.batch, "rates": [round(r) for r in rates],
              "median_entries_per_s": round(statistics.median(rates))}
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

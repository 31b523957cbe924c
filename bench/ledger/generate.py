"""Write a realistic synthetic ledger, fast (issue 12): millions of requests over the last N days.

    .venv/bin/python bench/ledger/generate.py --rows 10000000 --url sqlite:///out/ledger-10m.db
    .venv/bin/python bench/ledger/generate.py --rows 10000000 \\
        --url 'postgresql://postgres@127.0.0.1:5432/test?schema=bench10m'

The schema comes from the store's own `migrate()`; rows are drawn by `synth_draw` (8 keys in 3
teams, 8 models with real prices and one unpriced, 5 policies, 5 experiment arms on a fifth of the
traffic, ~2 % errors, ~30 % streams, feedback on ~10 %), encoded as the store encodes them
(`synth_rows`, checked against `llmroute.ledger.rows.to_row` on a sample of every batch) and bulk
loaded (`synth_load`). The same --seed, --rows, --days and --end give the same ledger.
See bench/ledger/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth_draw
import synth_rows
import synth_world
from synth_load import Loader, PostgresLoader, SQLiteLoader

from llmroute.ledger import SQLiteStore, Store, open_store

#: Requests per drawn batch (fixed: a batch's draws depend on its number, so the ledger does too).
BATCH = 50_000
#: Batches whose sample is checked against the store's encoding: the first few, then every 20th.
CHECK_FIRST, CHECK_EVERY = 3, 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="requests to write")
    parser.add_argument("--url", required=True, help="ledger URL: sqlite:///path.db or "
                        "postgresql://user@host:port/db?schema=name")
    parser.add_argument("--days", type=int, default=30, help="spread over the last N days (30)")
    parser.add_argument("--end", default=None, help="ISO time the window ends (default: now, UTC)")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--error-share", type=float, default=0.02)
    parser.add_argument("--feedback-share", type=float, default=0.10)
    parser.add_argument("--fallback-share", type=float, default=0.03)
    parser.add_argument("--text-share", type=float, default=0.0, help="share storing prompt/response text")
    parser.add_argument("--replace", action="store_true", help="delete the SQLite file, or drop the "
                        "PostgreSQL schema (never `public`), first")
    parser.add_argument("--cache-mib", type=int, default=512, help="SQLite page cache during the load")
    parser.add_argument("--quiet", action="store_true")
    return parser.parse_args(argv)


def window_end(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    end = datetime.fromisoformat(text)
    return end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)


async def _replace(store: Store) -> None:
    """Start from nothing: remove the SQLite file (and its WAL), or drop the schema."""
    if isinstance(store, SQLiteStore):
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(store.path + suffix).unlink(missing_ok=True)
        return
    schema = str(getattr(store, "schema", "public"))
    if schema == "public":
        raise SystemExit("--replace will not drop the `public` schema: add ?schema=name to the URL")
    import asyncpg  # type: ignore[import-untyped, unused-ignore]

    conn = await asyncpg.connect(str(getattr(store, "dsn")))  # noqa: B009
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def prepare(url: str, replace: bool) -> tuple[Store, str]:
    """The migrated, empty store and its dialect ("sqlite" or "postgres")."""
    store = open_store(url)
    if replace:
        await _replace(store)
    await store.migrate()
    existing = await store.count()
    if existing:
        await store.close()
        raise SystemExit(f"the ledger at {url} already holds {existing:,} rows: use a new file or "
                         "schema, or --replace")
    return store, "sqlite" if isinstance(store, SQLiteStore) else "postgres"


async def open_loader(store: Store, dialect: str, cache_mib: int) -> Loader:
    if dialect == "sqlite":
        assert isinstance(store, SQLiteStore)
        return SQLiteLoader(store.path, synth_rows.COLUMNS, cache_mib)
    return await PostgresLoader.open(str(getattr(store, "dsn")), str(getattr(store, "schema")),  # noqa: B009
                                     synth_rows.COLUMNS)


async def make_months(store: Store, days: int, end: datetime) -> None:
    """PostgreSQL: the monthly partitions of the window, made as the store's writes make them (a
    bulk load into the parent table would otherwise put every row in the DEFAULT partition)."""
    if isinstance(store, SQLiteStore):
        return
    from llmroute.ledger.partitions import ensure_months
    from llmroute.ledger.retention import month_start, next_month

    months, month = [], month_start(end - timedelta(days=days))
    while month <= end:
        months.append(month)
        month = next_month(month)
    async with store.connection() as conn:
        await ensure_months(conn, str(getattr(store, "schema")), months)  # noqa: B009


async def load(args: argparse.Namespace, loader: Loader, dialect: str) -> dict[str, float]:
    """Draw, encode, check and write every batch; seconds spent in each step."""
    shares = synth_draw.Shares(error=args.error_share, fallback=args.fallback_share,
                               feedback=args.feedback_share, text=args.text_share)
    timeline = synth_world.Timeline(args.rows, args.days, window_end(args.end), args.seed)
    spent = {"draw_s": 0.0, "encode_s": 0.0, "check_s": 0.0, "write_s": 0.0}
    started = last_note = time.perf_counter()
    for number, first in enumerate(range(0, args.rows, BATCH)):
        marks = [time.perf_counter()]
        batch = synth_draw.draw(args.seed, number, first, min(BATCH, args.rows - first), timeline, shares)
        marks.append(time.perf_counter())
        rows = synth_rows.encode(batch, dialect)
        marks.append(time.perf_counter())
        if number < CHECK_FIRST or number % CHECK_EVERY == 0:
            synth_rows.check(batch, rows, dialect, synth_rows.sample(batch, 50))
        marks.append(time.perf_counter())
        await loader.write(rows)
        marks.append(time.perf_counter())
        for step, (a, b) in zip(spent, itertools.pairwise(marks), strict=True):
            spent[step] += b - a
        if not args.quiet and marks[-1] - last_note > 10:
            done = first + len(batch)
            print(f"  {done:,} rows, {done / (marks[-1] - started):,.0f} rows/s", flush=True)
            last_note = marks[-1]
    return spent


async def run(args: argparse.Namespace) -> dict[str, Any]:
    store, dialect = await prepare(args.url, args.replace)
    await make_months(store, args.days, window_end(args.end))
    await store.close()
    started = time.perf_counter()
    loader = await open_loader(store, dialect, args.cache_mib)
    try:
        spent = await load(args, loader, dialect)
        loaded = time.perf_counter()
    finally:
        spent_finish = await loader.finish()
    check = open_store(args.url)
    try:
        rolling = time.perf_counter()
        await check.rebuild_rollups()  # what the rollup migration does for an existing ledger
        spent_finish["rollups_s"] = time.perf_counter() - rolling
        count = await check.count()
    finally:
        await check.close()
    total = time.perf_counter() - started
    if count != args.rows:
        raise SystemExit(f"wrote {args.rows:,} rows but the store counts {count:,}")
    return {"rows": count, "backend": dialect, "load_s": loaded - started, **spent, **spent_finish,
            "total_s": total, "rows_per_s": count / total, "load_rows_per_s": count / (loaded - started)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    if not args.quiet:
        print(f"{result['rows']:,} rows → {args.url}: {result['total_s']:.1f} s, "
              f"{result['rows_per_s']:,.0f} rows/s overall ({result['load_rows_per_s']:,.0f} rows/s "
              "while loading, then the indexes)")
        steps = {k: v for k, v in result.items() if k.endswith("_s") and not k.endswith(("per_s", "load_s"))}
        print("  " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items() if k != "total_s"))
    return result


if __name__ == "__main__":
    main()

"""The SQLite thread's CPU per ledger entry (issue 17): `SQLiteStore.write` in batches of 256, split
into its parts, on a fresh file and on a grown one, interleaved A/B between source trees and variants.

    .venv/bin/python bench/ledger/sqlite_write_cpu.py [--trees src,/tmp/base/src] \\
        [--variants base,cache64m] [--ledgers fresh,grown] [--entries 5120] [--rounds 3]

Each run is a child process (the tree first on its PYTHONPATH) that opens a `SQLiteStore` on a copy
of its ledger, migrates it (a grown file made by an older tree is upgraded here, not counted),
applies the variant's statements on the store's connection, writes two batches to warm up, then
writes `--entries` gateway-like entries (`gateway_entry` with the tree's own request ids, built
before) in batches of `--batch`,
one `write` at a time, nothing else running. Counted: the store thread's CPU
(`time.thread_time()` read in the thread, and per part through wrappers around the store's module
functions: rows insert, the rollup delta, the rollups upsert, the latency merge, and the rest of
the transaction: BEGIN, COMMIT and the automatic checkpoint that runs inside it), the process's
CPU (the rows' conversion on the loop included) and the wall time of each `write`.

`grown` is a copy of a template made once by `generate.py` (`--grown-rows` rows over 30 days,
through the first tree's schema), with every row given a prompt latent as the bench gateway's
cascade writes one (so the learner's index holds every row, as on such a gateway). Variants are
`+`-joined names of `VARIANTS` (statements run on the store's connection after migrating).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_entry import gateway_entry

HERE = Path(__file__).resolve().parent
BATCH = 256
T = TypeVar("T")
_LEARN_PARTIAL = [
    "DROP INDEX IF EXISTS llmroute_requests_learn",
    "CREATE INDEX llmroute_requests_learn ON llmroute_requests (feedback_ts, request_id) "
    "WHERE latent IS NOT NULL AND feedback_ts IS NOT NULL",
]
#: Statements on the store's connection after `migrate` (measurement knobs, not all are safe:
#: `ckpt_off` lets the WAL grow; the run then checkpoints once at its end, timed apart).
VARIANTS: dict[str, list[str]] = {
    "base": [],
    "cache8m": ["PRAGMA cache_size=-8192"],
    "cache16m": ["PRAGMA cache_size=-16384"],
    "cache32m": ["PRAGMA cache_size=-32768"],
    "cache64m": ["PRAGMA cache_size=-65536"],
    "temp_mem": ["PRAGMA temp_store=MEMORY"],
    "ckpt_off": ["PRAGMA wal_autocheckpoint=0"],
    "ckpt4k": ["PRAGMA wal_autocheckpoint=4000"],
    "mmap256m": ["PRAGMA mmap_size=268435456"],
    "learn_partial": _LEARN_PARTIAL,
    "random_ids": [],  # not SQL: request ids of 32 random hex digits (see `_ids`)
    "ordered_ids": [],  # not SQL: time-ordered request ids (see `_ids`)
    "checked": [],  # not SQL: no savepoint, every batch's ids looked up first (`_insert_checked`)
}
def _ids(variant: str) -> Callable[[], str]:
    """New request ids: the measured tree's own (`gateway.new_request_id`), or, with the variant
    `random_ids` / `ordered_ids`, `req_` + 32 random hex digits / the same with the first 12 the
    time in milliseconds (the ids before and after sqlite17, whatever the tree)."""
    names = variant.split("+")
    if "random_ids" in names:
        return lambda: f"req_{os.urandom(16).hex()}"
    if "ordered_ids" in names:
        return lambda: f"req_{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
    from llmroute.gateway import new_request_id
    return new_request_id


PARTS = ("rows", "delta", "rollups_prep", "rollups", "latency_prep", "latency", "tx_rest")


def _statements(variant: str) -> list[str]:
    """A variant's statements; `drop:INDEX` drops an index (to price it: measurement only)."""
    return [s for name in variant.split("+")
            for s in ([f"DROP INDEX {name[5:]}"] if name.startswith("drop:") else VARIANTS[name])]


# -- the child: one measured run ------------------------------------------------------------------
def _instrument(parts: dict[str, float], checked: bool) -> None:
    """Wrap the store module's functions so each adds its thread CPU to `parts`."""
    import llmroute.ledger.sqlite as m

    def timed(name: str, fn: Callable[..., T]) -> Callable[..., T]:
        def wrapper(*args: Any, **kwargs: Any) -> T:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                parts[name] += time.thread_time() - start
        return wrapper

    change = m._change

    def routed_change(conn: Any, sql: str, rows: Any) -> int:
        name = "rollups" if sql == m._UPSERT_ROLLUPS else "latency" if sql == m._MERGE_LATENCY else "other"
        return timed(name, change)(conn, sql, rows)

    m.insert_fresh = timed("rows", m.insert_fresh)  # type: ignore[assignment]
    if checked:
        from llmroute.ledger.sqlite_insert import _insert_checked
        m.insert_fresh = timed("rows", _insert_checked)
    m.delta_of_entries = timed("delta", m.delta_of_entries)
    m.delta_params = timed("rollups_prep", m.delta_params)
    m.latency_params = timed("latency_prep", m.latency_params)
    m._change = routed_change
    m.immediate = timed("tx", m.immediate)


def child(path: Path, variant: str, entries: int, batch: int) -> dict[str, Any]:
    from llmroute.ledger.sqlite import SQLiteStore

    parts: dict[str, float] = defaultdict(float)
    _instrument(parts, "checked" in variant.split("+"))
    new_id = _ids(variant)

    async def run() -> dict[str, Any]:
        store = SQLiteStore(path)
        t0 = time.perf_counter()
        applied = await store.migrate()
        migrate_s = time.perf_counter() - t0
        for sql in _statements(variant):
            await store.run(lambda conn, sql=sql: conn.execute(sql).fetchall())
        for _ in range(2):  # warm-up: the connection, the statements, the pages near the end
            await store.write([gateway_entry(request_id=new_id()) for _ in range(batch)])
        counted = [gateway_entry(request_id=new_id()) for _ in range(entries)]
        parts.clear()
        walls: list[float] = []
        thread0 = await store.run(lambda _: time.thread_time())
        cpu0 = time.process_time()
        for start in range(0, entries, batch):
            t = time.perf_counter()
            await store.write(counted[start:start + batch])
            walls.append(time.perf_counter() - t)
        thread_s = await store.run(lambda _: time.thread_time()) - thread0
        cpu_s = time.process_time() - cpu0
        ckpt_s, wal_pages = 0.0, 0.0
        if "ckpt_off" in variant.split("+"):  # the WAL holds every batch's frames: pages per batch
            wal = Path(f"{path}-wal")
            wal_pages = (wal.stat().st_size - 32) / (4096 + 24) / (entries / batch + 2)
            t = time.perf_counter()
            await store.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall())
            ckpt_s = time.perf_counter() - t
        rows = await store.count()
        cache = await store.run(lambda conn: conn.execute("PRAGMA cache_size").fetchone()[0])
        await store.close()
        work = sum(parts[p] for p in PARTS if p not in ("tx_rest",)) + parts["other"]
        parts["tx_rest"] = parts["tx"] - work
        per = {p: parts[p] / entries * 1e6 for p in PARTS}
        return {"thread_us": thread_s / entries * 1e6, "process_us": cpu_s / entries * 1e6,
                "wall_ms_mean": statistics.mean(walls) * 1e3, "wall_ms_max": max(walls) * 1e3,
                "parts_us": per, "rows_after": rows, "migrate_s": migrate_s, "applied": applied,
                "ckpt_after_s": ckpt_s, "wal_pages_per_batch": wal_pages, "cache_size": cache,
                "maxrss_mib": _maxrss_mib()}

    return asyncio.run(run())


def _maxrss_mib() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the parent ----------------------------------------------------------------------------------
def grown_template(tree: Path, rows: int, cache_dir: Path) -> Path:
    """The grown ledger (made once per row count and kept in `cache_dir`)."""
    path = cache_dir / f"grown-{rows}.db"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.db")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, str(HERE / "generate.py"), "--rows", str(rows), "--url",
                    f"sqlite:///{tmp}", "--replace", "--quiet"], check=True, env=env)
    import sqlite3
    conn = sqlite3.connect(tmp)
    conn.execute("UPDATE llmroute_requests SET latent = ?", ("A" * 92,))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    tmp.rename(path)
    return path


def run_one(tree: Path, variant: str, ledger: str, template: Path | None, entries: int,
            batch: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="llmroute-sqlite-cpu-"))
    try:
        db = work / "ledger.db"
        if ledger == "grown":
            assert template is not None
            shutil.copyfile(template, db)
        env = {**os.environ, "PYTHONPATH": str(tree)}
        out = subprocess.run([sys.executable, __file__, "--child", str(db), variant, str(entries),
                              str(batch)], check=True, env=env, capture_output=True, text=True)
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", default=str(HERE.parents[1] / "src"),
                   help="comma-separated src directories (the first is A)")
    p.add_argument("--variants", default="base")
    p.add_argument("--ledgers", default="fresh,grown")
    p.add_argument("--entries", type=int, default=20 * BATCH)
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--grown-rows", type=int, default=200_000)
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "llmroute-sqlite-cpu")
    p.add_argument("--json", type=Path, help="write every run's result here")
    args = p.parse_args()
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    for name in args.variants.split(","):
        _statements(name)  # a KeyError now, not after the template
    ledgers = args.ledgers.split(",")
    template = grown_template(trees[0], args.grown_rows, args.cache_dir) if "grown" in ledgers else None
    sides = list(itertools.product(ledgers, trees, args.variants.split(",")))
    results: dict[tuple[str, Path, str], list[dict[str, Any]]] = {side: [] for side in sides}
    for r in range(args.rounds):
        for ledger, tree, variant in sides if r % 2 == 0 else list(reversed(sides)):
            res = run_one(tree, variant, ledger, template, args.entries, args.batch)
            results[(ledger, tree, variant)].append(res)
            print(f"round {r + 1} {ledger} {tree} {variant}: thread {res['thread_us']:.1f} us/entry, "
                  f"process {res['process_us']:.1f} us/entry, write {res['wall_ms_mean']:.1f} ms mean "
                  f"{res['wall_ms_max']:.1f} max", flush=True)
    print("\nmedian over rounds (us of the store thread's CPU per entry; [min-max] of the thread's)")
    print(f"{'ledger':6} {'variant':24} {'thread':>16} {'process':>8} {'wall ms':>8} "
          + " ".join(f"{p:>12}" for p in PARTS) + "  tree")
    for (ledger, tree, variant), runs in results.items():
        thread = [x["thread_us"] for x in runs]
        med = {p: statistics.median(x["parts_us"][p] for x in runs) for p in PARTS}
        spread = f"[{min(thread):.0f}-{max(thread):.0f}]"
        print(f"{ledger:6} {variant:24} {statistics.median(thread):6.1f} {spread:9}"
              f" {statistics.median(x['process_us'] for x in runs):8.1f}"
              f" {statistics.median(x['wall_ms_mean'] for x in runs):8.1f} "
              + " ".join(f"{med[p]:12.1f}" for p in PARTS) + f"  {tree}")
    if args.json:
        args.json.write_text(json.dumps([{"ledger": k[0], "tree": str(k[1]), "variant": k[2], "runs": v}
                                         for k, v in results.items()], indent=1))


if __name__ == "__main__":
    main()

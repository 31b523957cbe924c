"""Instructions per entry of each part of the ledger write (issue 17), counted by valgrind
(callgrind) part by part, so that a cut in one part shows as that part's count:

    .venv/bin/python bench/ledger/part_instructions.py --trees /tmp/base/src,src \\
        [--parts line,row,fact,delta,insert,write] [--entries 2048] [--batch 256]

- line: the WAL line (`wal.encode`);
- row: the SQLite row (`rows.to_row(entry, SQLITE)`);
- fact: the rollups' view of an entry (`rollups.fact_of`);
- delta: a batch's rollup delta from its entries, as the stores take it (`rollup_delta.delta_of_entries`;
  before cpu17b: `fact_of` + `rollups.delta_of`), per entry;
- insert: `SQLiteStore.write` of the batches whose rows were built beforehand (the insert, the
  rollups and the transaction, in the store's thread; the rows' own cost is `row`);
- write: `SQLiteStore.write` of whole batches (rows, insert, rollups, transaction).

The entries are `writer_instructions.py`'s (what the bench gateway's cascade writes for a short
prompt), built before counting. A SQLite file store, fresh per run. Needs valgrind (~20 s a part).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared callgrind helper
import callgrind
from gateway_entry import gateway_entry

PARTS = ("line", "row", "fact", "delta", "insert", "write")


def child(entries: int, part: str, signals: Path, batch: int) -> None:
    """The counted process: build the entries, then count the part over all of them."""

    from llmroute.ledger import rows as rows_module
    from llmroute.ledger import sqlite as sqlite_module
    from llmroute.ledger.rollups import fact_of
    try:
        from llmroute.ledger.rollup_delta import delta_of_entries as batch_delta
    except ImportError:  # a tree before cpu17b: the facts, then their delta
        from llmroute.ledger.rollups import delta_of  # type: ignore[attr-defined]

        def batch_delta(entries: Any) -> Any:  # type: ignore[misc]
            return delta_of([fact_of(one) for one in entries])
    from llmroute.ledger.wal import encode

    entry = gateway_entry

    async def run() -> None:
        work = Path(tempfile.mkdtemp(prefix="llmroute-part-instr-"))
        store = sqlite_module.SQLiteStore(work / "ledger.db")
        await store.migrate()
        warm = [entry() for _ in range(2 * batch)]
        await store.write(warm[:batch])
        counted = [entry() for _ in range(entries)]
        batches = [counted[i:i + batch] for i in range(0, entries, batch)]
        sink: list[Any] = []
        to_row, sqlite = rows_module.to_row, rows_module.SQLITE
        if part == "insert":  # the rows ready: only the store's own work is counted
            real = rows_module.to_rows
            built = {id(b): [to_row(e, sqlite) for e in b] for b in [warm[batch:], *batches]}

            async def ready(entries: Any, dialect: Any) -> Any:
                return built[id(entries)] if id(entries) in built else await real(entries, dialect)
            sqlite_module.to_rows = ready  # type: ignore[attr-defined]
        for one in warm[batch:2 * batch]:  # warm each part's code paths once
            sink += (encode(one), to_row(one, sqlite), fact_of(one))
        await store.write(warm[batch:])
        (signals / "ready").touch()
        await asyncio.to_thread(callgrind.wait_for, signals / "go")
        if part == "line":
            sink += [encode(one) for one in counted]
        elif part == "row":
            sink += [to_row(one, sqlite) for one in counted]
        elif part == "fact":
            sink += [fact_of(one) for one in counted]
        elif part == "delta":
            sink += [batch_delta(b) for b in batches]
        else:
            for b in batches:
                await store.write(b)
        (signals / "done").touch()
        await asyncio.to_thread(callgrind.wait_for, signals / "stop")
        await store.close()
        shutil.rmtree(work, ignore_errors=True)

    asyncio.run(run())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), int(sys.argv[5]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", required=True, help="comma-separated src directories")
    p.add_argument("--parts", default=",".join(PARTS))
    p.add_argument("--entries", type=int, default=2048)
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    print("| part (k instructions per entry) | " + " | ".join(str(t) for t in trees) + " |", flush=True)
    for part in args.parts.split(","):
        counts = [callgrind.count(__file__, [str(args.entries), part, str(args.batch)], tree,
                                  "llmroute-part-instr-") / args.entries for tree in trees]
        print(f"| {part} | " + " | ".join(f"{c / 1e3:.1f}" for c in counts) + " |", flush=True)


if __name__ == "__main__":
    main()

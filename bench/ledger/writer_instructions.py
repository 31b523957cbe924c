"""Instructions the serving process spends per ledger entry (issue 17): `LedgerWriter.record` with its
write-ahead log, plus the writer's batches (rows, rollups, SQLite), counted by valgrind (callgrind).

    .venv/bin/python bench/ledger/writer_instructions.py --trees /tmp/base/src,src \\
        [--modes inline,process] [--entries 2048] [--batch 256] [--rounds 2]

Unlike `bench/gateway/instructions.py` (a whole request, whose count moves with how many batches
wall-clock time lets into the window), this one is deterministic: the counted child records
`--entries` gateway-like entries (built before counting) in one go, so the writer takes full batches
of `--batch` (256: a loaded gateway's; a few dozen: a quiet one's, where each batch's own work
counts more), then waits until the store holds them all (`WriterStats.written`). A SQLite file ledger, the
log with `fsync: interval` (the default). With `process` (`ledger.writes: process`) the batches are
written by the writer's child, which valgrind does not follow: the count is the serving process's
share. Each round runs every (tree, mode) once, the order reversed every other round.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/: the shared callgrind helper
sys.path.insert(0, str(Path(__file__).resolve().parent))
import callgrind
from gateway_entry import gateway_entry

BATCH = 256


def child(entries: int, mode: str, signals: Path, batch_size: int) -> None:
    """The counted process: warm up, say so, record the entries when told, wait for the store."""
    from llmroute.ledger import LedgerEntry
    from llmroute.ledger.sqlite import SQLiteStore
    from llmroute.ledger.wal import WalPolicy
    from llmroute.ledger.write_process import ProcessWrites
    from llmroute.ledger.writer import LedgerWriter

    entry = gateway_entry

    async def run() -> None:
        work = Path(tempfile.mkdtemp(prefix="llmroute-writer-instr-"))
        url = f"sqlite:///{work}/ledger.db"
        store = SQLiteStore(work / "ledger.db")
        await store.migrate()
        writes = ProcessWrites(url) if mode == "process" else None
        if writes is not None:
            await writes.ready()
        written = [0, 0]  # entries written, the count to wake `record` at
        all_written = asyncio.Event()

        def wrote(count: int) -> None:
            written[0] += count
            if written[0] >= written[1]:
                all_written.set()

        async def write(batch: Sequence[LedgerEntry]) -> None:  # the writer's seams, no polling
            await (writes.write(batch) if writes else store.write(batch))
            wrote(len(batch))

        async def write_lines(lines: Sequence[bytes]) -> None:
            assert writes is not None
            await writes.write_lines(lines)
            wrote(len(lines))

        seam = {"write": write}
        if writes is not None and hasattr(writes, "write_lines"):  # a tree before 17's lines: write
            seam = {"write_lines": write_lines}
        writer = LedgerWriter(store, spool_path=work / "spool.jsonl", batch_size=batch_size,
                              flush_interval_s=0.05, wal=WalPolicy(fsync="interval"),
                              **seam)  # type: ignore[arg-type]
        await writer.start()

        async def record(batch: list[LedgerEntry]) -> None:
            all_written.clear()
            written[1] = written[0] + len(batch)
            for one in batch:
                writer.record(one)
            await all_written.wait()

        await record([entry() for _ in range(2 * batch_size)])  # warm-up: the child, the caches
        counted = [entry() for _ in range(entries)]
        (signals / "ready").touch()
        await asyncio.to_thread(callgrind.wait_for, signals / "go")
        await record(counted)
        (signals / "done").touch()
        await asyncio.to_thread(callgrind.wait_for, signals / "stop")
        await writer.aclose()
        if writes is not None:
            await writes.aclose()
        await store.close()
        shutil.rmtree(work, ignore_errors=True)

    asyncio.run(run())


def count_per_entry(tree: Path, mode: str, entries: int, batch: int) -> float:
    """Instructions per entry in the serving process, `tree` first on PYTHONPATH (valgrind needed)."""
    return float(callgrind.count(__file__, [str(entries), mode, str(batch)], tree,
                                 "llmroute-writer-instr-")) / entries


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), int(sys.argv[5]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", required=True, help="comma-separated src directories (the first is A)")
    p.add_argument("--modes", default="inline,process", help="ledger.writes modes to count")
    p.add_argument("--entries", type=int, default=8 * BATCH)
    p.add_argument("--batch", type=int, default=BATCH, help="the writer's batch_size")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    sides = list(itertools.product([Path(t).resolve() for t in args.trees.split(",")],
                                   args.modes.split(",")))
    counts: dict[tuple[Path, str], list[float]] = {side: [] for side in sides}
    for r in range(args.rounds):
        for tree, mode in sides if r % 2 == 0 else list(reversed(sides)):
            per = count_per_entry(tree, mode, args.entries, args.batch)
            counts[(tree, mode)].append(per)
            print(f"round {r + 1} {tree} {mode}: {per / 1e3:.1f} k instructions per entry", flush=True)
    base = counts[sides[0]]
    for (tree, mode), values in counts.items():
        mean = sum(values) / len(values)
        print(f"mean {tree} {mode}: {mean / 1e3:.1f} k instructions per entry "
              f"({mean / (sum(base) / len(base)):.3f} of the first)")


if __name__ == "__main__":
    main()

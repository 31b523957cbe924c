"""CPU per request of two llmroute source trees, interleaved (A B A B ...) in one run.

    .venv/bin/python bench/gateway/ab_cpu.py --a /work/main/src --b src [--rounds 3] [--duration 6]
        [--concurrency 16] [--a-writes inline --b-writes process] [--children-cpus 1]

Each round starts the gateway (the `llmroute` row of run.py: gateway key, default cascade policy,
SQLite ledger, metrics) with PYTHONPATH set to the tree, checks with py-spy that it runs that tree's
code, warms it up for 2 s, then drives it with wrk and reads its CPU time from /proc: CPU ms per
request, req/s, p50/p99. Prints every run and the medians per tree. `--a-writes` / `--b-writes`
set `ledger.writes` in that side's config (both sides may name the same tree). The gateway is
pinned to CPU 0 and its children inherit that; `--children-cpus` pins them (the ledger's writer
and reader processes, every thread) elsewhere once the warm-up is done. Besides the CPU of the
whole process tree, the serving process's own CPU per request is printed (`serving`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import load
import peers
import procs

BIN = Path(sys.executable).parent


def _runs_tree(env: dict[str, str], tree: Path) -> bool:
    """Whether the gateway's interpreter, with the gateway's environment, imports llmroute from
    `tree` (the venv's `llmroute` entry point is an editable install of one checkout)."""
    found = subprocess.run([str(BIN / "python"), "-c", "import llmroute; print(llmroute.__file__)"],
                           env=env, capture_output=True, text=True, timeout=60, check=True)
    return found.stdout.strip() == str(tree / "llmroute" / "__init__.py")


def one_run(tree: Path, writes: str | None, args: argparse.Namespace, up_port: int, wrk: str
            ) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="llmroute-ab-"))
    port = procs.free_port()
    gw = peers.launch_llmroute(port, up_port, work, 1, wal=args.wal)
    if writes is not None:  # in the ledger block, after its spool_path line
        config = work / "llmroute.yaml"
        spool = f"  spool_path: {work}/ledger.spool.jsonl\n"
        config.write_text(config.read_text().replace(spool, spool + f"  writes: {writes}\n"))
    env = {**gw.env, "PYTHONPATH": str(tree)}
    if not _runs_tree(env, tree):
        raise SystemExit(f"the gateway would not run the code under {tree}")
    gateway = procs.start_server("llmroute", gw.argv, cpus="0", env=env, log_dir=work)
    try:
        procs.wait_http(gw.ready_url, gateway, gw.ready_timeout_s)
        script = load.write_lua(work / "request.lua", gw.body, gw.headers)
        load.run_wrk(wrk, gw.url, script, connections=args.concurrency, duration_s=2, cpus="1")
        if args.children_cpus:
            procs.pin_descendants(gateway.pid, {int(c) for c in args.children_cpus.split(",")})
        before, own = procs.tree_cpu_s(gateway.pid), procs.process_cpu_s(gateway.pid)
        result = load.run_wrk(wrk, gw.url, script, connections=args.concurrency,
                              duration_s=args.duration, cpus="1")
        per = 1000 / max(result.requests, 1)
        cpu_ms = (procs.tree_cpu_s(gateway.pid) - before) * per
        serving_ms = (procs.process_cpu_s(gateway.pid) - own) * per
        return {"cpu_ms": cpu_ms, "serving_ms": serving_ms, "rps": result.rps, "p50": result.p50_ms,
                "p99": result.p99_ms}
    finally:
        gateway.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", type=Path, required=True, help="the baseline's src directory")
    p.add_argument("--b", type=Path, required=True, help="the candidate's src directory")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=6)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--wal", default=None, help="ledger WAL setting passed to the generated config")
    p.add_argument("--a-writes", default=None, help="ledger.writes for A (default: not set)")
    p.add_argument("--b-writes", default=None, help="ledger.writes for B (default: not set)")
    p.add_argument("--children-cpus", default=None,
                   help="pin the gateway's child processes here after the warm-up (e.g. 1)")
    args = p.parse_args()
    wrk = load.ensure_wrk(install=True)
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    writes = {"A": args.a_writes, "B": args.b_writes}
    work = Path(tempfile.mkdtemp(prefix="llmroute-ab-up-"))
    up_port = procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    upstream = procs.start_server("upstream", up.argv, cpus="1", env=up.env, log_dir=work)
    results: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        for r in range(args.rounds):
            for name in ("A", "B") if r % 2 == 0 else ("B", "A"):
                row = one_run(trees[name], writes[name], args, up_port, wrk)
                results[name].append(row)
                print(f"round {r + 1} {name}: CPU {row['cpu_ms']:.3f} ms/req (serving "
                      f"{row['serving_ms']:.3f}), {row['rps']:,.0f} req/s, "
                      f"p50 {row['p50']:.2f} ms, p99 {row['p99']:.2f} ms", flush=True)
    finally:
        upstream.stop()
    for name, rows in results.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        side = f"{trees[name]}, writes {writes[name] or '-'}"
        print(f"median {name} ({side}): CPU {med['cpu_ms']:.3f} ms/req (serving "
              f"{med['serving_ms']:.3f}), {med['rps']:,.0f} req/s, "
              f"p50 {med['p50']:.2f} ms, p99 {med['p99']:.2f} ms")
    a, b = (statistics.median(r["cpu_ms"] for r in results[k]) for k in ("A", "B"))
    print(f"B / A CPU per request: {b / a:.3f}")


if __name__ == "__main__":
    main()

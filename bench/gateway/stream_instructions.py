"""Instructions per streamed chunk of the gateway's whole serving process (issue 17), counted by
valgrind (callgrind): load-independent, for A/B comparisons on a busy machine.

    .venv/bin/python bench/gateway/stream_instructions.py --trees /tmp/base/src,src [--streams 60]
        [--rounds 1]

For each round and tree (interleaved), `llmroute serve` (the `llmroute` row's config of run.py:
gateway key, default cascade, SQLite ledger with its batches held, metrics; uvicorn + uvloop) runs
under `valgrind --tool=callgrind --instr-atstart=no` with PYTHONPATH set to the tree, against the
fast upstream (not counted). After a warm-up, instrumentation goes on and `--streams` streams of one
content chunk are run (stream_client.py, one client, usage asked), a dump is taken, then as many
streams of 64 content chunks, and a second dump (`--gap-ms` spaces the upstream's chunks).
Per chunk: (second - first) / streams / 63.
Per 1-chunk stream: first / streams (the request path of a stream, its first-token work included).
Kernel work (syscalls) is not counted: callgrind counts user-space instructions only.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import load  # noqa: E402
import peers  # noqa: E402
import procs  # noqa: E402

HELD = "  batch_size: 100000\n  flush_interval_s: 3600\n"


def totals(out: Path, before: set[Path]) -> int:
    """The instruction total of the newest dump written next to `out`."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = sorted(set(out.parent.glob(out.name + "*")) - before)
        for path in new:
            text = path.read_text(errors="replace")
            found = re.search(r"^(?:totals|summary): (\d+)", text, re.M)
            if found and "\ntotals:" in text:
                before.add(path)
                return int(found.group(1))
        time.sleep(0.2)
    raise SystemExit(f"no callgrind dump appeared for {out}")


def dump(pid: int, out: Path, seen: set[Path]) -> int:
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    return totals(out, seen)


def count(tree: Path, up_port: int, args: argparse.Namespace) -> tuple[float, float]:
    """(instructions per chunk, per 1-chunk stream) of one gateway run on `tree`."""
    work = Path(tempfile.mkdtemp(prefix="llmroute-stream-instr-"))
    port = procs.free_port()
    gw = peers.launch_llmroute(port, up_port, work, 1)
    config = Path(gw.env["LLMROUTE_CONFIG"])
    spool = f"  spool_path: {work}/ledger.spool.jsonl\n"
    config.write_text(config.read_text().replace(spool, spool + HELD))
    out = work / "callgrind.out"
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
            sys.executable, "-m", "llmroute", *gw.argv[1:]]
    env = {**gw.env, "PYTHONPATH": str(tree)}
    server = procs.start_server("llmroute", argv, cpus=None, env=env, log_dir=work)
    body = {**gw.body, "stream": True, "stream_options": {"include_usage": True}}

    def streams(n: int, chunks: int) -> None:
        control(up_port, chunks, args.gap_ms)
        result = load.run_stream_client(gw.url, body, gw.headers, requests=n, concurrency=1,
                                        cpus=None, timeout_s=1800)
        assert result["errors"] == 0, result

    try:
        procs.wait_http(gw.ready_url, server, 600)
        streams(20, 8)  # warm-up
        pid = server.proc.pid
        seen = set(work.glob("callgrind.out*"))
        subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True,
                       capture_output=True)
        dump(pid, out, seen)  # zero the counters
        streams(args.streams, 1)
        one = dump(pid, out, seen)
        streams(args.streams, 64)
        many = dump(pid, out, seen)
        subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True,
                       capture_output=True)
    finally:
        server.stop()
        if args.keep:  # the dumps, for callgrind_annotate
            keep = Path(args.keep) / tree.parent.name
            keep.mkdir(parents=True, exist_ok=True)
            for path in work.glob("callgrind.out*"):
                shutil.copy(path, keep / path.name)
        shutil.rmtree(work, ignore_errors=True)
    return (many - one) / args.streams / 63, one / args.streams


def control(up_port: int, chunks: int, gap_ms: float) -> None:
    import json
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{up_port}/_control", method="POST",
                                 data=json.dumps({"chunks": chunks, "chunk_gap_ms": gap_ms,
                                                  "delay_ms": 0}).encode(),
                                 headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trees", required=True, help="comma-separated src directories (A first)")
    p.add_argument("--streams", type=int, default=60)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--gap-ms", type=float, default=0.0,
                   help="the upstream's pause between chunks (0: they arrive together, several "
                        "per read; 5: one per read, as from a model generating)")
    p.add_argument("--keep", default="", help="copy the callgrind dumps under this directory")
    args = p.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    trees = [Path(t).resolve() for t in args.trees.split(",")]
    work = Path(tempfile.mkdtemp(prefix="llmroute-stream-instr-up-"))
    up_port = procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    upstream = procs.start_server("upstream", up.argv, cpus=None, env=up.env, log_dir=work)
    results: dict[Path, list[tuple[float, float]]] = {t: [] for t in trees}
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        for r in range(args.rounds):
            for tree in trees if r % 2 == 0 else list(reversed(trees)):
                chunk, stream = count(tree, up_port, args)
                results[tree].append((chunk, stream))
                print(f"round {r + 1} {tree}: {chunk / 1e3:.1f} k instructions per chunk, "
                      f"{stream / 1e6:.3f} M per 1-chunk stream", flush=True)
    finally:
        upstream.stop()
    base = results[trees[0]]
    base_chunk = sum(c for c, _ in base) / len(base)
    base_stream = sum(s for _, s in base) / len(base)
    for tree, values in results.items():
        chunk = sum(c for c, _ in values) / len(values)
        stream = sum(s for _, s in values) / len(values)
        print(f"mean {tree}: {chunk / 1e3:.1f} k per chunk ({chunk / base_chunk:.3f} of A), "
              f"{stream / 1e6:.3f} M per 1-chunk stream ({stream / base_stream:.3f} of A)")


if __name__ == "__main__":
    main()

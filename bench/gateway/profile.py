"""Where a request's CPU goes inside `llmroute serve`: py-spy samples the gateway while a load generator
drives it, and the samples are grouped by the part of the hot path they fall in.

    .venv/bin/python bench/gateway/profile.py [--duration 10] [--concurrency 16] [--stream]

Same setup as run.py's `llmroute` row (peers.launch_llmroute: gateway key, the default cascade policy,
SQLite ledger, metrics; the fast upstream; the gateway pinned to CPU 0, the rest to CPU 1), driven by
wrk (or, with --stream, the streaming client). Prints the gateway's CPU per request (from /proc), then
samples it with py-spy (`pip install py-spy`, in the dev extra) and prints the share of samples per
part. Raw samples: `--raw FILE`.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import load
import peers
import procs

BIN = Path(sys.executable).parent

#: Part of the hot path -> substrings of a sampled stack that put a sample there (first match wins).
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("ledger write (its own thread)", ("LedgerWriter", "SQLiteStore", "sqlite3")),
    ("upstream call (h1 client; aiohttp before)", ("HTTPTransport", "providers/h1.py", "aiohttp/",
                                                  "StreamReply")),
    ("routing decision (engine.decide)", ("Engine.decide",)),
    ("ledger entry + metrics", ("Accountant", "Gateway._account", "_fan_out", "GatewayMetrics",
                                "prometheus_client")),
    ("request parsing + validation", ("chat_request", "parse_json", "read_body",
                                      "RouteRequest.from_messages")),
    ("auth", ("KeyRing",)),
    ("relaying stream chunks", ("Gateway._relay", "sse_events", "_chunks", "sse (llmroute")),
    ("gateway orchestration (plan, fallbacks, timeouts)", ("Gateway.", "call_with_fallbacks",
                                                           "_Run.", "new_request_id")),
    ("response writing (raw ASGI / starlette + uvicorn send)", ("Response.__call__", "StreamingResponse",
                                                     "RequestResponseCycle.send", "_send",
                                                     "send_json", "llmroute/server/asgi.py")),
    ("ASGI framework (starlette routing, middleware)", ("starlette/",)),
    ("raw ASGI endpoint (server/hot.py)", ("llmroute/server/hot.py",)),
    ("HTTP server (uvicorn + httptools parsing)", ("uvicorn/", "httptools")),
]


def part_of(stack: str) -> str:
    for name, needles in PARTS:
        if any(needle in stack for needle in needles):
            return name
    return "event loop and the rest"


def summarise(raw: Path) -> list[tuple[str, float]]:
    """Share of the gateway's samples per part (idle executor threads left out)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "Thread._bootstrap" in stack and not any(k in stack for k in PARTS[0][1]):
            continue  # an idle thread pool worker
        counts[part_of(stack)] += int(n)
    total = sum(counts.values()) or 1
    return [(name, count / total) for name, count in counts.most_common()]


def run_load(launch: peers.Launch, args: argparse.Namespace, script: Path, wrk: str | None) -> int:
    """One load run against the gateway; how many requests completed."""
    if args.stream:
        result = load.run_stream_client(launch.url, launch.body, launch.headers, requests=args.streams,
                                        concurrency=args.concurrency, cpus="1")
        return int(str(result["ok"]))
    assert wrk is not None
    return load.run_wrk(wrk, launch.url, script, connections=args.concurrency,
                        duration_s=args.duration, cpus="1").requests


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10, help="seconds per wrk run")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--stream", action="store_true", help="streaming requests (the streaming client)")
    p.add_argument("--streams", type=int, default=2000, help="streams per run with --stream")
    p.add_argument("--raw", type=Path, help="keep py-spy's raw samples here")
    args = p.parse_args()
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    wrk = None if args.stream else load.ensure_wrk(install=True)
    if not args.stream and wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="llmroute-profile-"))
    up_port, gw_port = procs.free_port(), procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    gw = peers.launch_llmroute(gw_port, up_port, work, 1)
    upstream = procs.start_server("upstream", up.argv, cpus="1", env=up.env, log_dir=work)
    gateway = procs.start_server("llmroute", gw.argv, cpus="0", env=gw.env, log_dir=work)
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        procs.wait_http(gw.ready_url, gateway, gw.ready_timeout_s)
        script = load.write_lua(work / "request.lua", gw.body, gw.headers)
        run_load(gw, argparse.Namespace(**{**vars(args), "duration": 2, "streams": 200}), script, wrk)
        before = procs.tree_cpu_s(gateway.pid)
        done = run_load(gw, args, script, wrk)
        cpu_ms = (procs.tree_cpu_s(gateway.pid) - before) * 1000 / max(done, 1)
        print(f"{done} requests at {args.concurrency} concurrent, "
              f"{'streaming' if args.stream else 'not streaming'}: gateway CPU {cpu_ms:.3f} ms per request")
        raw = args.raw or work / "samples.txt"
        sampler = subprocess.Popen([spy, "record", "-p", str(gateway.pid), "-r", "400", "-f", "raw",
                                    "-o", str(raw), "--nonblocking", "-d", "600"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run_load(gw, args, script, wrk)
        sampler.send_signal(signal.SIGINT)  # py-spy writes its samples and exits
        sampler.wait(timeout=30)
        print(f"\nwhere the gateway's CPU goes (py-spy samples, {raw}):")
        for name, share in summarise(raw):
            print(f"  {share * 100:5.1f}%  {name}")
    finally:
        gateway.stop()
        upstream.stop()


if __name__ == "__main__":
    main()

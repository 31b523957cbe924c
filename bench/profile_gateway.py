"""Where a request's CPU goes inside `llmroute serve`: py-spy samples the gateway while a load generator
drives it, and the samples are grouped by the part of the hot path they fall in.

    .venv/bin/python bench/profile_gateway.py [--requests 6000] [--concurrency 16] [--stream]

Starts the fast fake upstream (bench/gateway/fast_upstream.py) and `llmroute serve` with the full path
(gateway key, default cascade policy, SQLite ledger, metrics), pins the gateway to CPU 0 and the rest
to CPU 1 when `taskset` exists, measures the gateway's CPU per request from /proc, then samples it
with py-spy (`pip install py-spy`) and prints the share of samples per part. Raw samples: `--raw FILE`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
KEY = "bench-profile-key"

#: Part of the hot path -> substrings of a sampled stack that put a sample there (first match wins).
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("ledger write (its own thread)", ("LedgerWriter", "SQLiteStore", "sqlite3")),
    ("upstream call (aiohttp client)", ("HTTPTransport", "aiohttp/", "StreamReply")),
    ("routing decision (engine.decide)", ("Engine.decide",)),
    ("ledger entry + metrics", ("Accountant", "Gateway._account", "_fan_out", "GatewayMetrics",
                                "prometheus_client")),
    ("request parsing + validation", ("chat_request", "parse_json", "read_body",
                                      "RouteRequest.from_messages")),
    ("auth", ("KeyRing",)),
    ("relaying stream chunks", ("Gateway._relay", "sse_events", "_chunks", "app.py:sse")),
    ("gateway orchestration (plan, fallbacks, timeouts)", ("Gateway.", "call_with_fallbacks",
                                                           "_Run.", "new_request_id")),
    ("response writing (starlette + uvicorn send)", ("Response.__call__", "StreamingResponse",
                                                     "RequestResponseCycle.send", "_send")),
    ("ASGI framework (starlette routing, middleware)", ("starlette/",)),
    ("HTTP server (uvicorn + httptools parsing)", ("uvicorn/", "httptools")),
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpus: str, argv: list[str]) -> list[str]:
    return ["taskset", "-c", cpus, *argv] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else argv


def wait_ready(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout_s:.0f}s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(port: int, concurrency: int, total: int, stream: bool) -> tuple[int, int, float]:
    """Keep-alive HTTP/1.1 clients on raw sockets: (sent, failed, seconds)."""
    body = json.dumps({"model": "auto", "stream": stream, "messages": [
        {"role": "user", "content": "What is the capital of France? Answer briefly."}]}).encode()
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {KEY}"
               f"\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body
    sent = failed = 0

    async def client() -> None:
        nonlocal sent, failed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while sent < total:
            sent += 1
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).lower()
            failed += not head.startswith(b"http/1.1 200")
            if b"transfer-encoding: chunked" in head:
                while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                    await reader.readexactly(size + 2)
                await reader.readuntil(b"\r\n")
            else:
                length = int(head.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
                await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return sent, failed, time.perf_counter() - started


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=6000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--stream", action="store_true", help="streaming requests (8 content chunks)")
    p.add_argument("--raw", type=Path, help="keep py-spy's raw samples here")
    args = p.parse_args()
    spy = shutil.which("py-spy") or str(BIN / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy")
    from llmroute.server.auth import hash_key

    work = Path(tempfile.mkdtemp(prefix="llmroute-profile-"))
    up_port, gw_port = free_port(), free_port()
    config = {
        "providers": {name: {"type": "openai", "base_url": f"http://127.0.0.1:{up_port}/v1",
                             "api_key_env": "BENCH_UPSTREAM_KEY"} for name in ("openai", "anthropic")},
        "keys": [{"name": "bench", "hash": hash_key(KEY)}],
        "ledger": {"url": f"sqlite:///{work / 'ledger.db'}", "spool_path": str(work / "spool.jsonl")},
    }
    (work / "llmroute.yaml").write_text(json.dumps(config))
    env = {**os.environ, "BENCH_UPSTREAM_KEY": "sk-bench"}
    upstream = subprocess.Popen(pinned("1", [sys.executable, str(HERE / "gateway" / "fast_upstream.py"),
                                             "--port", str(up_port), "--chunks", "8"]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gateway = subprocess.Popen(pinned("0", [str(BIN / "llmroute"), "serve", "-c", str(work / "llmroute.yaml"),
                                            "--port", str(gw_port)]), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{gw_port}/health")
        asyncio.run(drive(gw_port, args.concurrency, 500, args.stream))  # warm-up
        before = cpu_seconds(gateway.pid)
        sent, failed, seconds = asyncio.run(drive(gw_port, args.concurrency, args.requests, args.stream))
        cpu_ms = (cpu_seconds(gateway.pid) - before) * 1000 / sent
        print(f"{sent} requests ({failed} failed) at {args.concurrency} concurrent, "
              f"{'streaming' if args.stream else 'not streaming'}: {sent / seconds:.0f} req/s, "
              f"gateway CPU {cpu_ms:.3f} ms per request")
        raw = args.raw or work / "samples.txt"
        sampler = subprocess.Popen([spy, "record", "-p", str(gateway.pid), "-r", "400", "-f", "raw",
                                    "-o", str(raw), "--nonblocking", "-d", "600"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        asyncio.run(drive(gw_port, args.concurrency, args.requests, args.stream))
        sampler.send_signal(2)  # SIGINT: py-spy writes its samples and exits
        sampler.wait(timeout=30)
        print(f"\nwhere the gateway's CPU goes (py-spy samples, {raw}):")
        for name, share in summarise(raw):
            print(f"  {share * 100:5.1f}%  {name}")
    finally:
        for proc in (gateway, upstream):
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()

"""The response cache's hit path against a miss and a bypass, through a real `llmroute serve`
(issue 15): FakeUpstream with no delay behind it, an aiohttp closed-loop load generator in this
process, the same gateway and run for every row.

    python bench/bench_cache.py [--duration 5] [--clients 1,16] [--warmup 1] [--json FILE]

Rows, each at 1 and at N concurrent clients:
- hit: the same request again and again (stored once before the row starts): no routing, no
  upstream call; the ledger entry and the limits' count still happen.
- miss: a new prompt every request (temperature 0): routed, called, answered and stored.
- bypass: a new prompt with `Cache-Control: no-store`: the path with the cache out of the way.

The gateway: one worker, the default policy (`auto`), SQLite ledger, metrics, no access log, no
gateway key. Reported per row: req/s, p50 and p99 latency (ms) as the client sees it, and the
gateway process's CPU time per request (user + system, from /proc). The upstream and the load
generator run on the same machine and their CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import yaml

from llmroute.testing.behaviours import Ok
from llmroute.testing.procfs import cpu_seconds
from llmroute.testing.upstream import FakeUpstream


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(up: FakeUpstream, folder: Path) -> dict[str, Any]:
    return {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url}},
        "models": {"fake/a": {"deployment": "fake", "input_per_m": 1, "output_per_m": 2},
                   "fake/b": {"deployment": "fake", "input_per_m": 5, "output_per_m": 10}},
        "tiers": {"simple": {"model": "fake/a"}, "medium": {"model": "fake/a"},
                  "complex": {"model": "fake/b"}},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "ledger": {"url": f"sqlite:///{folder / 'ledger.db'}",
                   "spool_path": str(folder / "spool.jsonl")},
        "cache": {"response": {"enabled": True}},
    }


def start(up: FakeUpstream, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    path = folder / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config(up, folder)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(path),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=(folder / "serve.log").open("wb"), stderr=subprocess.STDOUT,
                            env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"gateway did not start: {(folder / 'serve.log').read_text()}")


def body(text: str) -> bytes:
    return json.dumps({"model": "auto", "temperature": 0,
                       "messages": [{"role": "user", "content": text}]}).encode()


async def run_row(url: str, kind: str, clients: int, duration_s: float, pid: int,
                  fresh: count[int]) -> dict[str, Any]:
    """Closed loop: `clients` tasks each sending one request after the other for `duration_s`."""
    headers = {"content-type": "application/json"}
    if kind == "bypass":
        headers["cache-control"] = "no-store"
    same = body("What is the capital of Peru?")
    latencies: list[float] = []
    states: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(url, connector=connector) as session:
        async def one() -> None:
            payload = same if kind == "hit" else body(f"question number {next(fresh)}")
            started = time.perf_counter()
            async with session.post("/v1/chat/completions", data=payload,
                                    headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
                state = response.headers.get("x-llmroute-cache", "-")
            latencies.append(time.perf_counter() - started)
            states[state] = states.get(state, 0) + 1

        await one()  # the hit row's answer is stored (and every connection warm) first
        latencies.clear()
        states.clear()
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        stop = t0 + duration_s

        async def loop() -> None:
            while time.perf_counter() < stop:
                await one()

        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    ms = np.asarray(latencies) * 1000
    return {"row": kind, "clients": clients, "requests": len(latencies),
            "req_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "cpu_ms_per_request": round(cpu * 1000 / len(latencies), 3), "cache": states}


async def run_all(url: str, pid: int, clients: list[int], duration_s: float,
                  warmup_s: float) -> list[dict[str, Any]]:
    fresh = count()
    await run_row(url, "miss", 4, warmup_s, pid, fresh)  # imports, pools, the ledger's first writes
    rows = []
    for n in clients:
        for kind in ("hit", "miss", "bypass"):
            rows.append(await run_row(url, kind, n, duration_s, pid, fresh))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--clients", default="1,16")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream(record=False) as up:
        up.set_default("*", Ok())
        proc, url = start(up, Path(tmp))
        try:
            rows = asyncio.run(run_all(url, proc.pid, clients, args.duration, args.warmup))
        finally:
            proc.terminate()
            proc.wait(30)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""The Anthropic Messages API against chat completions through a real `llmroute serve`: the same
conversation, the same routing (`auto`), the same OpenAI-protocol FakeUpstream behind, asked on
`/v1/messages` or `/v1/chat/completions`, streamed or not (the response cache bypassed).

    python bench/bench_messages_http.py [--duration 2] [--rounds 6] [--clients 1]

The gateway of `bench_cache.py` (one worker, the rules policy, SQLite ledger). Reported per row:
req/s, p50 / p99 latency (ms) as the client sees it, and the gateway process's CPU per request
(from /proc), each the median over the rounds. What a row costs over its chat twin is the
translation both ways.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from itertools import count
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from bench_cache import start

from llmroute.testing.behaviours import Ok
from llmroute.testing.procfs import cpu_seconds
from llmroute.testing.upstream import FakeUpstream

PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages"}


def payload(api: str, text: str, stream: bool) -> bytes:
    body: dict[str, Any] = {"model": "auto", "max_tokens": 256, "stream": stream,
                            "messages": [{"role": "user", "content": text}]}
    if api == "chat" and stream:
        body["stream_options"] = {"include_usage": True}  # as the Messages API asks for it
    return json.dumps(body).encode()


async def run_row(url: str, api: str, stream: bool, clients: int, duration_s: float, pid: int,
                  fresh: count[int]) -> dict[str, Any]:
    headers = {"content-type": "application/json", "cache-control": "no-store"}
    latencies: list[float] = []
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=clients)) as s:
        async def one() -> None:
            data = payload(api, f"question number {next(fresh)}", stream)
            started = time.perf_counter()
            async with s.post(PATHS[api], data=data, headers=headers) as response:
                await response.read()
                assert response.status == 200, response.status
            latencies.append(time.perf_counter() - started)

        await one()
        latencies.clear()
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        stop = t0 + duration_s

        async def loop() -> None:
            while time.perf_counter() < stop:
                await one()

        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    ms = np.asarray(latencies) * 1000
    return {"api": api, "stream": stream, "clients": clients, "requests": len(latencies),
            "req_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "cpu_ms_per_request": round(cpu * 1000 / len(latencies), 3)}


async def run_all(url: str, pid: int, clients: int, duration_s: float, rounds: int) -> None:
    """`rounds` rounds of the four rows, in alternating order (a shared machine's load drifts);
    each row's medians over the rounds."""
    fresh = count()
    await run_row(url, "chat", False, 4, 1.0, pid, fresh)  # warm up
    await run_row(url, "messages", True, 4, 1.0, pid, fresh)
    rows = [(api, stream) for stream in (False, True) for api in ("chat", "messages")]
    seen: dict[tuple[str, bool], list[dict[str, Any]]] = {row: [] for row in rows}
    for i in range(rounds):
        for api, stream in (rows if i % 2 == 0 else rows[::-1]):
            seen[api, stream].append(await run_row(url, api, stream, clients, duration_s, pid,
                                                   fresh))
    for (api, stream), runs in seen.items():
        medians = {key: round(float(np.median([r[key] for r in runs])), 3)
                   for key in ("req_s", "p50_ms", "p99_ms", "cpu_ms_per_request")}
        print(json.dumps({"api": api, "stream": stream, "clients": clients, "rounds": rounds,
                          "requests": sum(r["requests"] for r in runs), **medians}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per row and round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream(record=False) as up:
        up.set_default("*", Ok())
        proc, url = start(up, Path(tmp))
        try:
            asyncio.run(run_all(url, proc.pid, args.clients, args.duration, args.rounds))
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()

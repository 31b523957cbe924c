"""An open-loop load: POST a body at a fixed rate, whatever the answers' pace, and report latency.

    python bench/ledger/open_loop.py --url http://127.0.0.1:8080/v1/chat/completions \\
        --rate 300 --duration 20 --header 'Authorization: Bearer KEY' --body '{...}'

A closed loop (wrk) slows down when the server does, hiding what a slow moment costs; here every
request is sent at its scheduled time (coordinated omission avoided: latency counts from the
schedule, not from when the client got round to it). Prints one JSON line: sent, ok, errors,
p50/p90/p99/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, default=300.0, help="requests per second")
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--body", required=True)
    p.add_argument("--header", action="append", default=[])
    return p.parse_args()


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-int(p * len(ordered)) // 100) - 1)] if ordered else 0.0


async def run(args: argparse.Namespace) -> dict[str, object]:
    headers = dict(h.split(": ", 1) for h in args.header)
    headers["Content-Type"] = "application/json"
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one(scheduled: float) -> None:
            nonlocal errors
            try:
                async with session.post(args.url, data=args.body, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append(time.perf_counter() - scheduled)

        start = time.perf_counter()
        tasks = []
        total = int(args.rate * args.duration)
        for i in range(total):
            scheduled = start + i / args.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
    ms = [1000 * v for v in latencies]
    return {"sent": total, "ok": len(ms), "errors": errors, "p50_ms": round(_pct(ms, 50), 3),
            "p90_ms": round(_pct(ms, 90), 3), "p99_ms": round(_pct(ms, 99), 3),
            "max_ms": round(max(ms), 3) if ms else None}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(parse_args()))))

"""Soak: a real gateway process at steady load against a faulty upstream, for an hour (issue 14).

    nice -n 10 .venv/bin/python bench/soak.py --duration 3600 --rate 50 --faults 0.1 \
        --out out/soak-$(date -u +%Y%m%d).json

Starts the fake upstream in chaos mode (`python -m llmroute.testing --chaos F`: every model fails
a request with probability F, spread over 429, 500, 503, reset, hang, slow and cut streams) and
`llmroute serve` over it (a tier of three models: two on the OpenAI-protocol provider, one on the
Anthropic one; SQLite ledger), then sends `--rate` requests per second (open loop, half of them
streamed) with aiohttp. Every `--sample-s` seconds it records the gateway's RSS, open file
descriptors and connections to the upstream, and the interval's answers and failures, and rewrites
the JSON file (samples + a summary: first vs last `--window-s` medians, slope per hour), so the
file is readable while it runs and whatever ends it. SIGTERM / SIGINT end it early, cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from llmroute.testing.procfs import cpu_seconds, open_fds, rss_bytes, tcp_connections

KEY = "sk-soak-upstream-key"
METRICS = ("rss_mib", "fds", "upstream_conns", "other_fds")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3600, help="seconds of load")
    parser.add_argument("--rate", type=float, default=50, help="requests per second")
    parser.add_argument("--faults", type=float, default=0.1, help="fault probability per call")
    parser.add_argument("--stream-share", type=float, default=0.5)
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--window-s", type=float, default=600.0,
                        help="first / last window compared (at most a third of the run)")
    parser.add_argument("--max-inflight", type=int, default=2000,
                        help="requests not sent (counted as shed) beyond this many in flight")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("out") / "soak.json")
    return parser.parse_args(argv)


# -- processes ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_upstream(args: argparse.Namespace, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [sys.executable, "-m", "llmroute.testing", "--port", str(port), "--api-key", KEY,
            "--no-record", "--chaos", str(args.faults), "--seed", str(args.seed)]
    proc = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return proc, port


def gateway_config(upstream_port: int, ledger: Path) -> dict[str, Any]:
    base = f"http://127.0.0.1:{upstream_port}"
    timeout = {"connect_s": 2, "first_byte_s": 2, "total_s": 20}
    tier = {"model": "soak/primary", "fallbacks": ["soak/second", "soak/claude"]}
    price = {"input_per_m": "1", "output_per_m": "2", "context_window": 100000}
    return {
        "providers": {
            "fake": {"type": "openai", "base_url": base + "/v1", "api_key_env": "SOAK_KEY",
                     "timeout": timeout},
            "fakeant": {"type": "anthropic", "base_url": base, "api_key_env": "SOAK_KEY",
                        "timeout": timeout},
        },
        "models": {
            "soak/primary": {"deployment": "fake", "upstream_name": "primary-up", **price},
            "soak/second": {"deployment": "fake", "upstream_name": "second-up", **price},
            "soak/claude": {"deployment": "fakeant", "upstream_name": "claude-up", **price},
        },
        "tiers": {"simple": tier, "medium": tier, "complex": tier},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "ledger": {"url": f"sqlite:///{ledger}", "spool_path": str(ledger.with_suffix(".spool"))},
        "resilience": {"deadline_s": 30,
                       "retry": {"max_attempts": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2,
                                 "max_retry_after_s": 1},
                       "cooldown": {"failures": 3, "cooldown_s": 5}},
    }


def start_gateway(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    env["SOAK_KEY"] = KEY
    argv = [sys.executable, "-m", "llmroute", "serve", "-c", str(config), "--host", "127.0.0.1",
            "--port", str(port)]
    return subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


async def wait_ready(url: str, procs: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                raise RuntimeError("a server exited at start (see the log)")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(url + "/health") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# -- load -----------------------------------------------------------------------------------------
@dataclass
class Tally:
    """Outcomes and latencies since the last sample."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    inflight: int = 0

    def take(self) -> tuple[Counter[str], list[float]]:
        out, lat = self.outcomes, self.latencies
        self.outcomes, self.latencies = Counter(), []
        return out, lat


def openai_error(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and {"message", "type", "param", "code"} <= set(error)


async def read_stream(response: aiohttp.ClientResponse) -> str:
    """ok (ended with [DONE]), stream_error (an OpenAI-shaped error event, no [DONE]),
    stream_cut (ended without either) or false_done ([DONE] after an error)."""
    errored = False
    async for raw in response.content:
        line = raw.decode().strip()
        if line == "data: [DONE]":
            return "false_done" if errored else "ok"
        if line.startswith("data: {\"error\""):
            errored = openai_error(json.loads(line[6:]))
            if not errored:
                return "bad_error"
    return "stream_error" if errored else "stream_cut"


async def one(session: aiohttp.ClientSession, url: str, number: int, stream: bool) -> str:
    body = {"model": "auto", "stream": stream,
            "messages": [{"role": "user", "content": f"soak request {number}: say hello"}]}
    async with session.post(url + "/v1/chat/completions", json=body) as response:
        if response.status == 200:
            if stream:
                return await read_stream(response)
            await response.read()
            return "ok"
        payload = await response.json(content_type=None)
        return f"error_{response.status}" if openai_error(payload) else "bad_error"


async def send(session: aiohttp.ClientSession, url: str, number: int, stream: bool,
               tally: Tally) -> None:
    started = time.monotonic()
    tally.inflight += 1
    try:
        outcome = await one(session, url, number, stream)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        outcome = f"client_{type(exc).__name__}"
    finally:
        tally.inflight -= 1
    tally.outcomes[outcome] += 1
    tally.latencies.append(time.monotonic() - started)


async def load(session: aiohttp.ClientSession, url: str, args: argparse.Namespace, tally: Tally,
               stopping: asyncio.Event) -> set[asyncio.Task[None]]:
    """Open loop: request i leaves at start + i / rate, until the duration is over."""
    tasks: set[asyncio.Task[None]] = set()
    start, number = time.monotonic(), 0
    every = max(1, round(1 / args.stream_share)) if args.stream_share > 0 else 0
    while not stopping.is_set() and time.monotonic() - start < args.duration:
        due = start + number / args.rate
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), max(0.0, due - time.monotonic()))
            break
        if tally.inflight >= args.max_inflight:
            tally.outcomes["shed"] += 1
        else:
            task = asyncio.create_task(send(session, url, number, bool(every and number % every == 0),
                                            tally))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        number += 1
    return tasks


# -- samples and summary --------------------------------------------------------------------------
def sample(t: float, gateway: int, upstream: int, upstream_port: int, tally: Tally
           ) -> dict[str, Any]:
    outcomes, latencies = tally.take()
    latencies.sort()
    done = sum(v for k, v in outcomes.items() if k != "shed")
    fds = open_fds(gateway)
    return {
        "t_s": round(t, 2), "rss_mib": round(rss_bytes(gateway) / 2**20, 2),
        "fds": fds, "upstream_conns": tcp_connections(gateway, upstream_port),
        # fds that are not TCP connections (inbound or upstream): files, pipes, the listener
        "other_fds": fds - tcp_connections(gateway),
        "cpu_s": round(cpu_seconds(gateway), 2),
        "upstream_rss_mib": round(rss_bytes(upstream) / 2**20, 2), "inflight": tally.inflight,
        "done": done, "ok": outcomes.get("ok", 0), "outcomes": dict(outcomes),
        "p50_s": round(latencies[len(latencies) // 2], 4) if latencies else None,
        "p99_s": round(latencies[int(len(latencies) * 0.99)], 4) if latencies else None,
    }


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (t_s, value), per hour."""
    if len(points) < 3:
        return None
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    return 3600 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var


def summarize(samples: Sequence[dict[str, Any]], window_s: float) -> dict[str, Any]:
    """First vs last window medians and the slope (after the first window) of each metric, and the
    run's outcome totals."""
    if not samples:
        return {}
    end = samples[-1]["t_s"]
    window = min(window_s, end / 3)
    first = [s for s in samples if s["t_s"] <= window]
    last = [s for s in samples if s["t_s"] >= end - window]
    settled = [s for s in samples if s["t_s"] >= window]
    metrics = {}
    for name in METRICS:
        head = statistics.median(s[name] for s in first) if first else None
        tail = statistics.median(s[name] for s in last) if last else None
        metrics[name] = {"first_median": head, "last_median": tail,
                         "max": max(s[name] for s in samples),
                         "slope_per_h": slope_per_hour([(s["t_s"], s[name]) for s in settled])}
    totals: Counter[str] = Counter()
    for s in samples:
        totals.update(s["outcomes"])
    done = sum(v for k, v in totals.items() if k != "shed")
    return {"duration_s": end, "window_s": window, "metrics": metrics, "outcomes": dict(totals),
            "requests": done, "answered_share": totals["ok"] / done if done else None}


def ledger_rows(db: Path) -> int | None:
    """Requests in the gateway's SQLite ledger (None when it cannot be read)."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=10)) as conn:
            return int(conn.execute("SELECT count(*) FROM llmroute_requests").fetchone()[0])
    except sqlite3.Error:
        return None


def write(path: Path, report: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)


# -- main -----------------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.with_suffix("")
    work.mkdir(exist_ok=True)
    log = out.with_suffix(".servers.log")
    upstream, upstream_port = start_upstream(args, log)
    config = work / "llmroute.yaml"
    config.write_text(yaml.safe_dump(gateway_config(upstream_port, work / "ledger.db"),
                                     sort_keys=False))
    port = free_port()
    gateway = start_gateway(config, port, log)
    url = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                              "argv": sys.argv, "started_utc": time.strftime("%FT%TZ", time.gmtime()),
                              "gateway_pid": gateway.pid, "samples": [], "summary": {}}
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await wait_ready(url, (upstream, gateway), 60)
        tally = Tally()
        timeout = aiohttp.ClientTimeout(total=60)
        connector = aiohttp.TCPConnector(limit=args.max_inflight)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            started = time.monotonic()
            loader = asyncio.create_task(load(session, url, args, tally, stopping))
            while not loader.done():
                await asyncio.wait({loader}, timeout=args.sample_s)
                report["samples"].append(sample(time.monotonic() - started, gateway.pid,
                                                upstream.pid, upstream_port, tally))
                report["summary"] = summarize(report["samples"], args.window_s)
                write(out, report)
            pending = loader.result()
            if pending:
                await asyncio.wait(pending, timeout=65)
            await asyncio.sleep(args.sample_s)  # let the gateway's pools settle
            report["samples"].append(sample(time.monotonic() - started, gateway.pid,
                                            upstream.pid, upstream_port, tally))
        report["summary"] = summarize(report["samples"], args.window_s)
        report["finished_utc"] = time.strftime("%FT%TZ", time.gmtime())
        return report
    finally:
        stop(gateway)
        stop(upstream)
        report["ledger_rows_after_stop"] = ledger_rows(work / "ledger.db")
        write(out, report)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    report = asyncio.run(run(args))
    print(json.dumps({**report["summary"], "ledger_rows": report["ledger_rows_after_stop"]},
                     indent=1))


if __name__ == "__main__":
    main()

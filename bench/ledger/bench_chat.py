"""Chat completions while a dashboard refreshes (issue 12): does reading the ledger move the p99?

    .venv/bin/python bench/ledger/bench_chat.py --url sqlite:///out/ledger-10m.db --json out/chat.json

One `llmroute serve` (pinned to --gateway-cpus) on the generated ledger, every model served by the
fast fake upstream (bench/gateway/fast_upstream.py); wrk (pinned with the upstream to --load-cpus)
sends chat completions at --connections for --duration seconds per phase (or, with --rate, the
open-loop client bench/ledger/open_loop.py at that many requests a second). Phases alternate, --rounds
times: "quiet" (no dashboard) and "dashboard" (a client GETs /dashboard/data?since=--window every
--poll-s seconds, as the page does, and records each refresh's time). The chat answers are written
to the same ledger (with their rollups), so ingest runs too. Alerts are off unless --alerts (as
in bench.py): their evaluation every minute reads the ledger on its own schedule. --reads picks
where the dashboard's and the alerts' reads run (`ledger.reads`: the low-priority reader process,
or inline in the gateway's process). Prints p50/p99
per phase, the refreshes' times, the gateway's RSS at start and end, and the writer's backlog at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "gateway"))
sys.path.insert(0, str(HERE))

import procs  # noqa: E402
from bench_measure import EXPERIMENTS_YAML, ROOT  # noqa: E402
from load import WrkResult, ensure_wrk, run_wrk, write_lua  # noqa: E402
from peers import DUMMY_UPSTREAM_KEY, GATEWAY_KEY, LLMROUTE_YAML, _base_env, _body  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="the generated ledger's URL")
    p.add_argument("--window", default="24h", help="the dashboard's window (24h)")
    p.add_argument("--poll-s", type=float, default=1.0, help="seconds between refreshes (1)")
    p.add_argument("--connections", type=int, default=8, help="wrk connections (8)")
    p.add_argument("--rate", type=float, default=0.0, help="an open-loop load at this many requests "
                   "a second (bench/ledger/open_loop.py) instead of wrk's closed loop")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per phase (20)")
    p.add_argument("--rounds", type=int, default=2, help="quiet/dashboard pairs (2)")
    p.add_argument("--gateway-cpus", default="0")
    p.add_argument("--load-cpus", default="1")
    p.add_argument("--alerts", action="store_true", help="leave the gateway's alerts on (their "
                   "evaluation every minute reads the ledger too)")
    p.add_argument("--reads", choices=("process", "inline"), default="process",
                   help="ledger.reads: where the dashboard's and alerts' reads run (process)")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def _config(work: Path, upstream_port: int, url: str, alerts: bool, reads: str) -> Path:
    text = LLMROUTE_YAML.format(upstream_port=upstream_port, work=work)
    head, _, _ = text.partition("ledger:")
    config = work / "llmroute.yaml"
    config.write_text(head + f'ledger:\n  url: "{url}"\n  spool_path: {work}/spool.jsonl\n'
                      + f"  reads: {reads}\n"
                      + f"alerts:\n  enabled: {str(alerts).lower()}\n" + EXPERIMENTS_YAML)
    return config


class Poller(threading.Thread):
    """GET the dashboard's data every `period_s` until stopped; each refresh's seconds."""

    def __init__(self, url: str, period_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.period_s = url, period_s
        self.times: list[float] = []
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {GATEWAY_KEY}"})
        while not self.halt.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(request, timeout=60) as resp:
                    resp.read()
                self.times.append(time.perf_counter() - started)
            except OSError as exc:
                self.failures.append(str(exc)[:200])
            self.halt.wait(max(0.0, self.period_s - (time.perf_counter() - started)))


def _open_loop(url: str, args: argparse.Namespace) -> WrkResult:
    """open_loop.py at --rate for --duration, pinned to the load CPUs, as a `WrkResult`."""
    argv = [*procs.taskset_prefix(args.load_cpus), sys.executable, str(HERE / "open_loop.py"),
            "--url", url, "--rate", str(args.rate), "--duration", str(args.duration),
            "--body", json.dumps(_body("auto")), "--header", f"Authorization: Bearer {GATEWAY_KEY}"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    d = json.loads(done.stdout.strip().splitlines()[-1])
    return WrkResult(requests=d["sent"], duration_s=args.duration, socket_errors=d["errors"],
                     non2xx=0, p50_ms=d["p50_ms"], p90_ms=d["p90_ms"], p99_ms=d["p99_ms"],
                     p999_ms=d["max_ms"] or 0.0, mean_ms=0.0)


def _count(url: str) -> int:
    """The ledger's rows (the gateway has flushed its writer when it stopped)."""
    import asyncio

    from llmroute.ledger import open_store

    async def count() -> int:
        store = open_store(url)
        try:
            return await store.count()
        finally:
            await store.close()

    return asyncio.run(count())


def _ledger_metrics(base: str) -> dict[str, float]:
    """The writer's gauges and counters from /metrics (queue depth, spooled, written...)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {line.split()[0]: float(line.split()[-1]) for line in text.splitlines()
            if line.startswith("llmroute_ledger")}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    wrk = ensure_wrk(True)
    if wrk is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    work = Path(tempfile.mkdtemp(prefix="llmroute-bench-chat-"))
    env = _base_env()
    env.update(BENCH_UPSTREAM_KEY=DUMMY_UPSTREAM_KEY, BENCH_GATEWAY_KEY=GATEWAY_KEY)
    upstream_port, port = procs.free_port(), procs.free_port()
    fake = HERE.parent / "gateway" / "fast_upstream.py"
    upstream = procs.start_server("upstream", [sys.executable, str(fake), "--port", str(upstream_port)],
                                  cpus=args.load_cpus, env=env, log_dir=work)
    config = _config(work, upstream_port, args.url, args.alerts, args.reads)
    count_before = _count(args.url)
    gateway = procs.start_server("gateway", [str(ROOT / ".venv/bin/llmroute"), "serve", "--config",
                                             str(config), "--host", "127.0.0.1", "--port", str(port)],
                                 cpus=args.gateway_cpus, env=env, log_dir=work)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "url": args.url.split("?")[0],
                              "args": {k: str(v) for k, v in vars(args).items()},
                              "phases": []}
    try:
        procs.wait_http(f"http://127.0.0.1:{upstream_port}/health", upstream, 30)
        procs.wait_http(f"{base}/health", gateway, 120)
        script = write_lua(work / "chat.lua", _body("auto"), {"Authorization": f"Bearer {GATEWAY_KEY}"})
        warm = run_wrk(wrk, f"{base}/v1/chat/completions", script, connections=args.connections,
                       duration_s=3, cpus=args.load_cpus)
        result["rss_start_mib"] = procs.tree_rss_mib(gateway.pid)
        for _ in range(args.rounds):
            for phase in ("quiet", "dashboard"):
                poller = Poller(f"{base}/dashboard/data?since={args.window}", args.poll_s)
                if phase == "dashboard":
                    poller.start()
                run = (_open_loop(f"{base}/v1/chat/completions", args) if args.rate else
                       run_wrk(wrk, f"{base}/v1/chat/completions", script, connections=args.connections,
                               duration_s=args.duration, cpus=args.load_cpus))
                poller.halt.set()
                if phase == "dashboard":
                    poller.join(60)
                times = poller.times
                row = {"phase": phase, "requests": run.requests, "rps": round(run.rps, 1),
                       "p50_ms": run.p50_ms, "p99_ms": run.p99_ms,
                       "errors": run.socket_errors + run.non2xx, "refreshes": len(times),
                       "refresh_p50_ms": round(1000 * statistics.median(times), 1) if times else None,
                       "refresh_max_ms": round(1000 * max(times), 1) if times else None,
                       "refresh_failures": poller.failures[:3]}
                result["phases"].append(row)
                print(json.dumps(row), flush=True)
        result["ledger_metrics_at_end"] = _ledger_metrics(base)
        time.sleep(3)
        result["rss_end_mib"] = procs.tree_rss_mib(gateway.pid)
    finally:
        gateway.stop()
        upstream.stop()
    result["ledger_rows_added"] = _count(args.url) - count_before
    result["requests_sent"] = sum(r["requests"] for r in result["phases"]) + warm.requests
    for phase in ("quiet", "dashboard"):
        rows = [r for r in result["phases"] if r["phase"] == phase]
        result[f"{phase}_p99_ms_median"] = statistics.median(r["p99_ms"] for r in rows)
        result[f"{phase}_p50_ms_median"] = statistics.median(r["p50_ms"] for r in rows)
    print(json.dumps({k: v for k, v in result.items() if k != "phases"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()

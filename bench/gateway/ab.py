"""A/B the gateway's CPU per request, time to first token and CPU per streamed chunk between code
trees (issue 17), interleaved in one run so that a loaded machine hurts every arm alike.

    .venv/bin/python bench/gateway/ab.py --arm main=/work/main/src --arm this=src [--rounds 3]
        [--duration 5] [--streams 400] [--arm this-granian=src:granian --granian-path DIR]

Each arm is NAME=SRC[:SERVER]: `llmroute serve` run as `python -m llmroute` with PYTHONPATH=SRC (the
script checks which `llmroute` that imports), or with SERVER `granian` the same app
(`llmroute.server.app:app_from_env`) under granian's ASGI interface. Per arm and round, a fresh
gateway (the `llmroute` row's config of run.py: gateway key, default cascade, SQLite ledger,
metrics) on CPU 0, the fast upstream (0 ms) and the load on CPU 1:

- CPU ms per request (gateway process tree CPU / requests) under wrk at 1 and 16 connections;
- TTFT p50 of streams (stream_client.py, 1 client, 8 chunks, no gap);
- CPU per chunk: (CPU per 64-chunk stream - CPU per 1-chunk stream) / 63, 4 clients.

Prints each round's numbers and the medians per arm as JSON lines, then a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import load
import peers
import procs


@dataclass(frozen=True)
class Arm:
    name: str
    src: Path
    server: str  # uvicorn | granian


def parse_arm(text: str) -> Arm:
    name, _, rest = text.partition("=")
    src, _, server = rest.partition(":")
    return Arm(name, Path(src).resolve(), server or "uvicorn")


def argv_of(arm: Arm, launch: peers.Launch, port: int) -> list[str]:
    if arm.server == "granian":  # granian on PYTHONPATH too (`--granian-path`)
        return [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host",
                "127.0.0.1", "--port", str(port), "--workers", "1", "--runtime-mode", "st",
                "--loop", "uvloop", "--no-ws", "--log-level", "warning",
                "llmroute.server.app:app_from_env"]
    return [sys.executable, "-m", "llmroute", *launch.argv[1:]]


def imported_from(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", "import llmroute; print(llmroute.__file__)"],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def control(up_port: int, **knobs: float) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{up_port}/_control", method="POST",
                                 data=json.dumps(knobs).encode(),
                                 headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()


def cpu_per(gateway: procs.Server, run: object) -> tuple[float, int]:
    """(ms of gateway CPU per unit of work, units) for `run()` -> units."""
    before = procs.tree_cpu_s(gateway.pid)
    done = run()  # type: ignore[operator]
    return (procs.tree_cpu_s(gateway.pid) - before) * 1000 / max(done, 1), done


def measure(arm: Arm, args: argparse.Namespace, wrk: str) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"llmroute-ab-{arm.name}-"))
    up_port, gw_port = procs.free_port(), procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    gw = peers.launch_llmroute(gw_port, up_port, work, 1)
    path = [str(arm.src), *([args.granian_path] if arm.server == "granian" else [])]
    env = {**gw.env, "PYTHONPATH": ":".join(path)}
    where = imported_from(env)
    assert where.startswith(str(arm.src)), f"{arm.name} imports llmroute from {where}"
    upstream = procs.start_server("upstream", up.argv, cpus="1", env=up.env, log_dir=work)
    gateway = procs.start_server("llmroute", argv_of(arm, gw, gw_port), cpus="0", env=env,
                                 log_dir=work)
    out: dict[str, float] = {}
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        procs.wait_http(gw.ready_url, gateway, gw.ready_timeout_s)
        script = load.write_lua(work / "request.lua", gw.body, gw.headers)

        def wrk_run(c: int, s: float) -> int:
            result = load.run_wrk(wrk, gw.url, script, connections=c, duration_s=s, cpus="1")
            assert result.non2xx == 0 and result.socket_errors == 0, result
            return result.requests

        def streams(n: int, c: int) -> int:
            result = load.run_stream_client(gw.url, gw.body, gw.headers, requests=n,
                                            concurrency=c, cpus="1")
            assert result["errors"] == 0, result
            out.setdefault("ttft_p50_ms", float(result["ttft_p50_ms"]))  # type: ignore[arg-type]
            return int(result["ok"])  # type: ignore[call-overload]

        wrk_run(16, 2)  # warm-up
        out["cpu_ms_1c"], _ = cpu_per(gateway, lambda: wrk_run(1, args.duration))
        out["cpu_ms_16c"], _ = cpu_per(gateway, lambda: wrk_run(16, args.duration))
        control(up_port, chunks=8, chunk_gap_ms=0, delay_ms=0)
        streams(50, 1)  # warm-up (its TTFT is dropped below)
        out.pop("ttft_p50_ms")
        streams(args.streams, 1)
        control(up_port, chunks=1)
        one, _ = cpu_per(gateway, lambda: streams(args.streams, 4))
        control(up_port, chunks=64)
        many, _ = cpu_per(gateway, lambda: streams(args.streams, 4))
        out["cpu_ms_stream_1"], out["cpu_ms_stream_64"] = one, many
        out["cpu_us_per_chunk"] = (many - one) * 1000 / 63
    finally:
        gateway.stop()
        upstream.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arm", action="append", type=parse_arm, required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--streams", type=int, default=400)
    p.add_argument("--granian-path", default="", help="where granian is installed (a --target dir)")
    args = p.parse_args()
    wrk = load.ensure_wrk(install=True)
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    runs: dict[str, list[dict[str, float]]] = {a.name: [] for a in args.arm}
    for round_ in range(args.rounds):
        for arm in args.arm:  # A B A B ...
            result = measure(arm, args, wrk)
            runs[arm.name].append(result)
            print(json.dumps({"round": round_, "arm": arm.name, **result}), flush=True)
    keys = list(next(iter(runs.values()))[0])
    print("\nmedians (" + ", ".join(f"{a.name}: {a.src} {a.server}" for a in args.arm) + ")")
    print("| arm | " + " | ".join(keys) + " |")
    for name, results in runs.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(r[k] for r in results):.3f}"
                                         for k in keys) + " |")


if __name__ == "__main__":
    main()

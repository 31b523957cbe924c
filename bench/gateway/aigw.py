"""ai-gateway-bench's methodology on our harness (issue 17): direct, llmroute and LiteLLM side by side.

The method of BerriAI/ai-gateway-bench, as far as this harness can follow it (bench/gateway/README.md
says where it deviates and why): a mock upstream with 20 ms to the first byte (non-streaming: the
whole answer after 20 ms; streaming: the first chunk after 20 ms, then 40 tokens 5 ms apart), the
bench's request (32 prompt tokens, ``max_tokens`` 40, not streaming), a closed loop of 1, 4, 16 and 64
persistent clients, a warm-up before each point, and

    added p50/p99 = gateway p50/p99 - direct (client -> mock) p50/p99, same client count, same run;

a client count is discarded when the direct p99 there exceeds twice its 1-client floor. Streaming:
time to the first SSE event at 16 clients, gateway minus direct. Each client count is measured for
every gateway back to back (direct, then each gateway), all servers up at once, gateways pinned to one
CPU and the mock and load generator to the other.

Run: ``.venv/bin/python bench/gateway/aigw.py [--quick] [--json out/aigw.json] [--markdown out/aigw.md]``
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import load
import peers
import procs
import run
from aigw_core import DIRECT, Point, TtftPoint, direct_floor, targets, ttft_with_added, with_added
from aigw_table import markdown, to_json
from report import num

console = run.console

MOCK_TTFT_MS = 20.0
MOCK_ITL_MS = 5.0
MOCK_TOKENS = 40
PROMPT_TOKENS = 32


def bench_body(model: str) -> dict[str, object]:
    """The bench's request (its ``common/payloads.py``), on the chat completions route."""
    return {"model": model, "max_tokens": MOCK_TOKENS, "stream": False,
            "messages": [{"role": "user", "content": "token " * PROMPT_TOKENS}]}


@dataclass
class Options:
    gateways: list[str]
    clients: list[int]
    duration_s: float
    warmup_s: float
    ttft_clients: int
    streams: int
    install: bool
    gateway_cpus: str | None
    load_cpus: str | None
    json_path: Path | None
    md_path: Path | None


@dataclass
class Subject:
    """One thing under test: its server process (direct: the mock itself), how to address it."""

    name: str
    server: procs.Server
    launch: peers.Launch
    script: Path


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--only", default="llmroute,litellm",
                   help="gateways besides direct, from: " + ", ".join(g for g in peers.GATEWAYS
                                                                     if g != "upstream"))
    p.add_argument("--quick", action="store_true", help="3 s per point, 160 streams")
    p.add_argument("--duration", type=float, default=None, help="seconds per point (default 10)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up seconds per point (default 2)")
    p.add_argument("--clients", default="1,4,16,64")
    p.add_argument("--ttft-clients", type=int, default=16)
    p.add_argument("--streams", type=int, default=None, help="streams per gateway (default 800)")
    p.add_argument("--gateway-cpus", default="0")
    p.add_argument("--load-cpus", default="1")
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--json", type=Path, default=None, metavar="FILE")
    p.add_argument("--markdown", type=Path, default=None, metavar="FILE")
    a = p.parse_args(argv)
    gateways = [g.strip() for g in a.only.split(",") if g.strip()]
    bad = [g for g in gateways if g not in peers.GATEWAYS or g == "upstream"]
    if bad:
        p.error(f"unknown gateway(s): {', '.join(bad)}")
    clients = sorted({int(c) for c in a.clients.split(",")})
    if 1 not in clients:
        p.error("--clients must include 1: its direct p99 is the floor of the discard rule")
    pin = not a.no_pin and procs.ncpus() >= 2
    return Options(gateways, clients, a.duration or (3.0 if a.quick else 10.0),
                   a.warmup or (1.0 if a.quick else 2.0), a.ttft_clients,
                   a.streams or (160 if a.quick else 800), not a.no_install,
                   a.gateway_cpus if pin else None, a.load_cpus if pin else None, a.json, a.markdown)


def run_options(opts: Options) -> run.Options:
    """run.py's options for the pieces reused from it (the upstream's start and pinning)."""
    argv = ["--only", "upstream"]
    if opts.gateway_cpus is None or opts.load_cpus is None:
        argv.append("--no-pin")
    else:
        argv += ["--gateway-cpus", opts.gateway_cpus, "--load-cpus", opts.load_cpus]
    if not opts.install:
        argv.append("--no-install")
    return run.parse_args(argv)


def start_gateway(name: str, opts: Options, upstream_port: int, work: Path) -> Subject:
    """Install (if needed), start, wait for and smoke-test one gateway; raise RuntimeError if not."""
    gw = peers.GATEWAYS[name]
    if gw.install is not None:
        if not opts.install and not gw.install.installed():
            raise RuntimeError(f"{name}: not installed ({gw.install.venv}); run without --no-install")
        gw.install.ensure(lambda m: console.print(f"  {m}"))
    port = procs.free_port()
    gwork = work / name
    gwork.mkdir(parents=True, exist_ok=True)
    launch = gw.launch(port, upstream_port, gwork, gw.workers)
    launch = dataclasses.replace(launch, body=bench_body(str(launch.body["model"])))
    cpus = opts.gateway_cpus if gw.workers == 1 else None
    server = procs.start_server(name, launch.argv, cpus=cpus, env=launch.env, log_dir=gwork)
    try:
        procs.wait_http(launch.ready_url, server, launch.ready_timeout_s, launch.headers)
        problem = run.smoke(launch)
    except RuntimeError:
        server.stop()
        raise
    if problem:
        server.stop()
        raise RuntimeError(f"{name}: smoke request failed: {problem}\n{server.log_tail()}")
    script = load.write_lua(gwork / "load.lua", launch.body, launch.headers)
    return Subject(name, server, launch, script)


def direct_subject(upstream: procs.Server, port: int, work: Path) -> Subject:
    url = f"http://127.0.0.1:{port}"
    launch = peers.Launch([], {}, f"{url}/v1/chat/completions", f"{url}/health", bench_body("bench-model"),
                          version="bench/gateway/fast_upstream.py")
    (work / DIRECT).mkdir(parents=True, exist_ok=True)
    return Subject(DIRECT, upstream, launch, load.write_lua(work / DIRECT / "load.lua", launch.body, {}))


def completions(upstream_port: int) -> float:
    return float(run.set_knobs(upstream_port)["completions"])


def measure_point(sub: Subject, clients: int, opts: Options, wrk: str, upstream_port: int) -> Point:
    """A warm-up run, then the measured one: wrk's latency percentiles, throughput, errors, the
    process tree's CPU per request, upstream calls per request, the machine's foreign load."""
    load.run_wrk(wrk, sub.launch.url, sub.script, connections=clients, duration_s=opts.warmup_s,
                 cpus=opts.load_cpus)
    calls0, cpu0 = completions(upstream_port), procs.tree_cpu_s(sub.server.pid)
    meter = procs.Meter()
    meter.start()
    res = load.run_wrk(wrk, sub.launch.url, sub.script, connections=clients, duration_s=opts.duration_s,
                       cpus=opts.load_cpus)
    foreign, _, _ = meter.stop()
    cpu = procs.tree_cpu_s(sub.server.pid) - cpu0
    calls = completions(upstream_port) - calls0
    n = res.requests
    return Point(sub.name, clients, n, res.rps, res.p50_ms, res.p99_ms, res.socket_errors + res.non2xx,
                 cpu * 1000 / n if n else None, calls / n if n else None, foreign)


def measure_ttft(sub: Subject, opts: Options) -> TtftPoint:
    """Streams at opts.ttft_clients clients (after a short warm-up): time to the first SSE event."""
    c = opts.ttft_clients
    try:
        load.run_stream_client(sub.launch.url, sub.launch.body, sub.launch.headers, requests=2 * c,
                               concurrency=c, cpus=opts.load_cpus)
        cpu0 = procs.tree_cpu_s(sub.server.pid)
        s = load.run_stream_client(sub.launch.url, sub.launch.body, sub.launch.headers,
                                   requests=opts.streams, concurrency=c, cpus=opts.load_cpus,
                                   timeout_s=max(300.0, opts.streams / c * 10))
        cpu = procs.tree_cpu_s(sub.server.pid) - cpu0
    except (RuntimeError, subprocess.SubprocessError) as exc:
        console.print(f"[bold red]{sub.name}: streams failed: {exc}[/]")
        return TtftPoint(sub.name, c, 0, 0, 0.0, 0.0, note=f"failed: {exc}"[:200])
    streams = int(num(s, "requests"))
    return TtftPoint(sub.name, c, streams, int(num(s, "errors")), num(s, "ttfb_p50_ms"),
                     num(s, "ttfb_p99_ms"), num(s, "ttft_p50_ms"),
                     cpu * 1000 / streams if streams else None)


def idle_cpu(subjects: list[Subject], seconds: float = 3.0) -> dict[str, float]:
    """CPU ms per second of each server's tree with no load (timers, flushers): at 1 client and a
    20 ms mock a gateway serves ~45 req/s, so 10 ms/s of idle work is ~0.2 ms per request."""
    before = {s.name: procs.tree_cpu_s(s.server.pid) for s in subjects}
    time.sleep(seconds)
    return {s.name: round((procs.tree_cpu_s(s.server.pid) - before[s.name]) * 1000 / seconds, 1)
            for s in subjects}


def sweep(subjects: list[Subject], opts: Options, wrk: str, upstream_port: int) -> list[Point]:
    points = []
    for clients in opts.clients:
        for sub in subjects:
            p = measure_point(sub, clients, opts, wrk, upstream_port)
            points.append(p)
            console.print(f"  {sub.name} c={clients}: {p.rps:,.0f} req/s p50 {p.p50_ms:.2f} ms "
                          f"p99 {p.p99_ms:.2f} ms cpu {p.cpu_ms_per_req or 0:.3f} ms/req "
                          f"err {p.errors} foreign {p.foreign_cores:.2f} load {procs.loadavg()[0]:.2f}")
    return points


def llmroute_import_path(python: Path) -> str:
    """Which llmroute the gateway's interpreter imports (the venv's entry point is an editable
    install of the main checkout unless PYTHONPATH says otherwise)."""
    done = subprocess.run([str(python), "-c", "import llmroute; print(llmroute.__file__)"],
                          capture_output=True, text=True, env=dict(os.environ), check=False)
    return done.stdout.strip() or done.stderr.strip()[-200:]


def machine_meta(opts: Options, wrk: str) -> dict[str, object]:
    meta = run.machine_meta(run_options(opts), wrk)
    meta.pop("duration_s", None)
    meta.pop("threshold_cores", None)
    meta.update(method=(f"ai-gateway-bench style: mock TTFB {MOCK_TTFT_MS:g} ms, {MOCK_TOKENS} tokens "
                        f"{MOCK_ITL_MS:g} ms apart when streaming; clients {opts.clients}; "
                        f"{opts.duration_s:g} s per point after {opts.warmup_s:g} s warm-up; "
                        f"{opts.streams} streams at {opts.ttft_clients} clients"),
                llmroute=llmroute_import_path(peers.ROOT / ".venv" / "bin" / "python"))
    return meta


@contextmanager
def servers(opts: Options, work: Path) -> Iterator[tuple[list[Subject], int, list[str]]]:
    """The mock (configured as the bench's) and every gateway that starts; stopped on exit."""
    upstream, port = run.start_upstream(run_options(opts), work)
    run.set_knobs(port, delay_ms=MOCK_TTFT_MS, chunks=MOCK_TOKENS, chunk_gap_ms=MOCK_ITL_MS,
                  words=MOCK_TOKENS)
    subjects, problems = [direct_subject(upstream, port, work)], []
    try:
        for name in opts.gateways:
            console.rule(name)
            try:
                subjects.append(start_gateway(name, opts, port, work))
            except RuntimeError as exc:
                problems.append(f"{name}: {exc}"[:400])
                console.print(f"[bold red]{problems[-1]}[/]")
        yield subjects, port, problems
    finally:
        for sub in subjects[1:]:
            sub.server.stop()
        upstream.stop()


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    wrk = load.ensure_wrk(opts.install)
    if wrk is None:
        console.print("[bold red]wrk is not installed: `apt-get install -y wrk` (Debian/Ubuntu).[/]")
        return 2
    work = Path(tempfile.mkdtemp(prefix="llmroute-aigw-"))
    meta = machine_meta(opts, wrk)
    try:
        with servers(opts, work) as (subjects, port, problems):
            meta["idle_cpu_ms_per_s"] = idle_cpu(subjects)
            console.rule("non-streaming sweep")
            points = with_added(sweep(subjects, opts, wrk, port))
            console.rule("streaming")
            ttft = ttft_with_added([measure_ttft(s, opts) for s in subjects])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    meta.update(loadavg_end=procs.loadavg(), problems=problems or "none",
                finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), platform=platform.platform())
    floor = direct_floor(points)
    goals = targets(points, ttft, opts.ttft_clients)
    text = markdown(points, ttft, goals, floor, meta)
    print(text)
    if opts.md_path:
        opts.md_path.write_text(text)
    if opts.json_path:
        opts.json_path.write_text(json.dumps(to_json(points, ttft, goals, floor, meta), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

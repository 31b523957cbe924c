"""Side-by-side gateway benchmark (issue 6): llmroute against LiteLLM's proxy and RouteLLM's server.

Starts a fast fake OpenAI upstream on loopback, then each gateway in turn (peers installed from PyPI
into bench/.venvs/<name>), drives each with wrk (non-streaming) and a streaming client at several
concurrencies and upstream delays, measures throughput, latency, CPU per request, memory and errors,
watches the machine for foreign load, and prints one table with the ratios against LiteLLM.

Run: ``.venv/bin/python bench/gateway/run.py [--quick] [--only llmroute,litellm] [--json out.json]``
(see bench/gateway/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import load
import peers
import procs
from report import GatewayInfo, Row, compare, from_json, num, print_tables, to_json
from rich.console import Console
from targets_view import add_verdict_arguments, print_verdict

console = Console(stderr=True, soft_wrap=True)


@dataclass
class Options:
    only: list[str]
    duration_s: float
    warmup_s: float
    concurrency: list[int]
    delays: list[float]
    stream_requests: int
    stream_chunks: int
    stream_gap_ms: float
    soak: int
    soak_max_s: float
    gateway_cpus: str | None
    load_cpus: str | None
    threshold: float
    retries: int
    wait_quiet_s: float
    install: bool
    keep: bool
    json_path: Path | None
    from_json: Path | None
    targets: bool = False
    profile: Path | None = None
    aigw: Path | None = None


@dataclass
class Bench:
    """The state of one harness run: the shared upstream, the wrk binary, results so far."""

    opts: Options
    wrk: str
    work: Path
    upstream: procs.Server
    upstream_port: int
    rows: list[Row] = field(default_factory=list)
    infos: dict[str, GatewayInfo] = field(default_factory=dict)


def parse_args(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--only", default="upstream,llmroute,llmroute-w2,litellm,routellm",
                   help=f"comma-separated gateways, from: {', '.join(peers.GATEWAYS)}")
    p.add_argument("--quick", action="store_true", help="short runs (3 s each, few streams)")
    p.add_argument("--duration", type=float, default=None, help="seconds per wrk run (default 10)")
    p.add_argument("--concurrency", default="1,16,64")
    p.add_argument("--delays", default="0,50", help="upstream delays in ms")
    p.add_argument("--stream-requests", type=int, default=None, help="streams per streaming run")
    p.add_argument("--stream-chunks", type=int, default=8)
    p.add_argument("--stream-gap-ms", type=float, default=20.0)
    p.add_argument("--soak", type=int, default=0, metavar="N",
                   help="also send N requests (e.g. 200000) and compare RSS after 10,000 and after N")
    p.add_argument("--soak-max-s", type=float, default=900.0, help="stop a soak after this long")
    p.add_argument("--gateway-cpus", default="0", help="taskset CPU list for the gateway under test")
    p.add_argument("--load-cpus", default="1", help="taskset CPU list for the upstream and load generator")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--foreign-threshold", type=float, default=0.15,
                   help="cores of foreign CPU above which a row is marked disturbed")
    p.add_argument("--retry-disturbed", type=int, default=1, help="reruns of a disturbed row")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each run, wait up to S seconds for the foreign load to drop")
    p.add_argument("--no-install", action="store_true", help="do not install peers or wrk")
    p.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE")
    p.add_argument("--from-json", type=Path, default=None, metavar="FILE",
                   help="measure nothing: print the tables of an earlier --json file")
    add_verdict_arguments(p)
    a = p.parse_args(argv)
    only = [g.strip() for g in a.only.split(",") if g.strip()]
    unknown = [g for g in only if g not in peers.GATEWAYS]
    if unknown:
        p.error(f"unknown gateway(s): {', '.join(unknown)}")
    pin = not a.no_pin and procs.ncpus() >= 2
    return Options(
        only=only, duration_s=a.duration or (3.0 if a.quick else 10.0), warmup_s=1.0 if a.quick else 3.0,
        concurrency=[int(c) for c in a.concurrency.split(",")],
        delays=[float(d) for d in a.delays.split(",")],
        stream_requests=a.stream_requests or (10 if a.quick else 40), stream_chunks=a.stream_chunks,
        stream_gap_ms=a.stream_gap_ms, soak=a.soak, soak_max_s=a.soak_max_s,
        gateway_cpus=a.gateway_cpus if pin else None, load_cpus=a.load_cpus if pin else None,
        threshold=a.foreign_threshold, retries=a.retry_disturbed,
        wait_quiet_s=a.wait_quiet, install=not a.no_install, keep=a.keep,
        json_path=a.json, from_json=a.from_json, targets=a.targets or bool(a.profile or a.aigw),
        profile=a.profile, aigw=a.aigw)


def set_knobs(port: int, **knobs: float) -> dict[str, float]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_control", data=json.dumps(knobs).encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:
        result: dict[str, float] = json.loads(resp.read())
        return result


def smoke(launch: peers.Launch) -> str | None:
    """One request through the gateway; None if it answered a valid chat completion, else why not."""
    req = urllib.request.Request(launch.url, data=json.dumps(launch.body).encode(),
                                 headers={**launch.headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:300]!r}"
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if data.get("object") != "chat.completion" or not data.get("choices"):
        return f"not a chat.completion: {str(data)[:200]}"
    return None


def measure(bench: Bench, server: procs.Server, row: Row, control_port: int,
            action: Callable[[Row], int]) -> Row:
    """Run `action` (fills the row's load numbers, returns completed requests) under the meters:
    the gateway tree's CPU, the machine's foreign load, the upstream's call count."""
    for attempt in range(1, bench.opts.retries + 2):
        wait_quiet(bench.opts.wait_quiet_s, bench.opts.threshold)
        row.note = ""
        before = set_knobs(control_port)
        cpu0 = procs.tree_cpu_s(server.pid)
        meter = procs.Meter()
        meter.start()
        requests = action(row)
        foreign, steal, _ = meter.stop()
        cpu = procs.tree_cpu_s(server.pid) - cpu0
        after = set_knobs(control_port)
        if os.environ.get("BENCH_DEBUG"):
            console.print(f"  upstream counters before {before} after {after}")
        calls = (after["completions"] + after["streams"]) - (before["completions"] + before["streams"])
        row.requests = requests
        row.cpu_ms_per_req = cpu * 1000 / requests if requests else 0.0
        row.upstream_calls_per_req = calls / requests if requests else 0.0
        row.foreign_cores, row.steal_cores, row.attempts = foreign, steal, attempt
        row.disturbed = foreign > bench.opts.threshold or steal > bench.opts.threshold
        row.rss_mib = procs.tree_rss_mib(server.pid)
        ticks = cpu * procs.CLK_TCK
        if ticks < 50:
            cpu_note = f"CPU from {ticks:.0f} ticks: ±{100 / max(ticks, 1):.0f}%"
            row.note = f"{row.note}; {cpu_note}" if row.note else cpu_note
        if not row.disturbed:
            break
        console.print(f"  [yellow]{row.gateway}/{row.scenario}: foreign load {foreign:.2f} cores "
                      f"(steal {steal:.2f}) > {bench.opts.threshold:.2f}"
                      f"{', rerunning' if attempt <= bench.opts.retries else ''}[/]")
    return row


def wait_quiet(budget_s: float, threshold: float) -> None:
    """Wait (1 s samples, up to budget_s) until the machine's foreign load is below threshold."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        meter = procs.Meter()
        meter.start()
        time.sleep(1.0)
        foreign, steal, _ = meter.stop()
        if foreign <= threshold and steal <= threshold:
            return


def wrk_row(bench: Bench, server: procs.Server, launch: peers.Launch, script: Path, name: str,
            delay: float, conc: int, control_port: int) -> Row:
    row = Row(name, f"{delay:g}ms c={conc}", "wrk", delay, conc)

    def action(r: Row) -> int:
        res = load.run_wrk(bench.wrk, launch.url, script, connections=conc,
                           duration_s=bench.opts.duration_s, cpus=bench.opts.load_cpus)
        r.rps, r.p50_ms, r.p99_ms = res.rps, res.p50_ms, res.p99_ms
        r.socket_errors, r.non2xx = res.socket_errors, res.non2xx
        return res.requests

    return measure(bench, server, row, control_port, action)


def stream_row(bench: Bench, server: procs.Server, launch: peers.Launch, name: str, conc: int,
               control_port: int) -> Row:
    row = Row(name, f"stream c={conc}", "stream", 0.0, conc)
    expected = (bench.opts.stream_chunks - 1) * bench.opts.stream_gap_ms

    def action(r: Row) -> int:
        n = bench.opts.stream_requests * (1 if conc == 1 else max(2, conc // 4))
        s = load.run_stream_client(launch.url, launch.body, launch.headers, requests=n, concurrency=conc,
                                   cpus=bench.opts.load_cpus)
        s["expected_spread_ms"] = expected
        r.stream = s
        r.rps = num(s, "streams_per_s")
        r.p50_ms, r.p99_ms = num(s, "ttft_p50_ms"), num(s, "ttft_p99_ms")
        r.non2xx = int(num(s, "errors"))
        if s.get("first_errors"):
            r.note = str(s["first_errors"])[:120]
        return int(num(s, "requests"))

    return measure(bench, server, row, control_port, action)


def soak(bench: Bench, server: procs.Server, launch: peers.Launch, script: Path, info: GatewayInfo) -> None:
    """Send about opts.soak requests at 64 connections; RSS after the first 10,000 and at the end."""
    total, t0, first = 0, time.monotonic(), 0.0
    first_at, slice_s = 0, 5.0
    while total < bench.opts.soak and time.monotonic() - t0 < bench.opts.soak_max_s:
        res = load.run_wrk(bench.wrk, launch.url, script, connections=64, duration_s=slice_s,
                           cpus=bench.opts.load_cpus)
        total += res.requests
        if not first_at and total >= 10_000:
            first, first_at = procs.tree_rss_mib(server.pid), total
        if res.rps > 0:  # aim the next slice at 10,000 first, then at N
            target = bench.opts.soak if first_at else min(10_000, bench.opts.soak)
            slice_s = max(1.0, min(30.0, (target - total) / res.rps + 0.5))
        console.print(f"  soak: {total:,} requests, RSS {procs.tree_rss_mib(server.pid):.0f} MiB")
    last = procs.tree_rss_mib(server.pid)
    if not first_at:
        first, first_at = last, total
    info.soak = {"first_requests": first_at, "rss_first_mib": first, "last_requests": total,
                 "rss_last_mib": last, "growth_pct": (last / first - 1) * 100 if first else 0.0,
                 "seconds": time.monotonic() - t0}


def run_gateway(bench: Bench, name: str) -> None:
    gw = peers.GATEWAYS[name]
    opts = bench.opts
    info = bench.infos[name] = GatewayInfo(name, workers=gw.workers)
    if gw.install is not None:
        if not opts.install and not gw.install.installed():
            info.status = f"not installed ({gw.install.venv}); run without --no-install"
            return
        try:
            gw.install.ensure(lambda m: console.print(f"  {m}"))
        except RuntimeError as exc:
            info.status = f"install failed: {exc}"
            console.print(f"[bold red]{name}: {info.status}[/]")
            return
    port = procs.free_port()
    work = bench.work / name
    work.mkdir(parents=True, exist_ok=True)
    launch = gw.launch(port, bench.upstream_port, work, gw.workers)
    cpus = opts.gateway_cpus if gw.workers == 1 or opts.gateway_cpus is None else f"0-{procs.ncpus() - 1}"
    info.version, info.cpus = launch.version, cpus or "any"
    t0 = time.monotonic()
    server = procs.start_server(name, launch.argv, cpus=cpus, env=launch.env, log_dir=work)
    try:
        procs.wait_http(launch.ready_url, server, launch.ready_timeout_s, launch.headers)
        info.startup_s = time.monotonic() - t0
        time.sleep(1.0)
        info.idle_rss_mib = procs.tree_rss_mib(server.pid)
        problem = smoke(launch)
        if problem:
            info.status = f"smoke request failed: {problem}"
            console.print(f"[bold red]{name}: {info.status}[/]\n{server.log_tail()}")
            return
        info.status = "ok"
        measure_all(bench, server, launch, name, port if name == "upstream" else bench.upstream_port, work)
        info.rss_after_load_mib = procs.tree_rss_mib(server.pid)
        if opts.soak:
            set_knobs(bench.upstream_port, delay_ms=0, chunk_gap_ms=0)
            try:
                soak(bench, server, launch, work / "load.lua", info)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                info.soak = {"error_at_requests": float(info.soak.get("last_requests", 0))}
                console.print(f"[bold red]{name}: soak failed: {exc}[/]")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        info.status = f"failed: {exc}"[:400]
        console.print(f"[bold red]{name}: {info.status}[/]")
    finally:
        server.stop()


def measure_all(bench: Bench, server: procs.Server, launch: peers.Launch, name: str, control: int,
                work: Path) -> None:
    opts = bench.opts
    script = load.write_lua(work / "load.lua", launch.body, launch.headers)
    for port in {control, bench.upstream_port}:
        set_knobs(port, delay_ms=0, chunk_gap_ms=0, chunks=opts.stream_chunks)
    load.run_wrk(bench.wrk, launch.url, script, connections=16, duration_s=opts.warmup_s,
                 cpus=opts.load_cpus)
    for delay in opts.delays:
        for port in {control, bench.upstream_port}:
            set_knobs(port, delay_ms=delay)
        for conc in opts.concurrency:
            row = wrk_row(bench, server, launch, script, name, delay, conc, control)
            bench.rows.append(row)
            console.print(f"  {name} {row.scenario}: {row.rps:,.0f} req/s p50 {row.p50_ms:.2f} ms "
                          f"p99 {row.p99_ms:.2f} ms cpu {row.cpu_ms_per_req:.2f} ms/req "
                          f"err {row.socket_errors + row.non2xx} foreign {row.foreign_cores:.2f}")
    for port in {control, bench.upstream_port}:
        set_knobs(port, delay_ms=0, chunk_gap_ms=opts.stream_gap_ms, chunks=opts.stream_chunks)
    for conc in (1, 16):
        row = stream_row(bench, server, launch, name, conc, control)
        bench.rows.append(row)
        console.print(f"  {name} {row.scenario}: TTFT p50 {row.p50_ms:.2f} ms, total p50 "
                      f"{num(row.stream, 'total_p50_ms'):.1f} ms, first→last "
                      f"{num(row.stream, 'spread_p50_ms'):.0f} ms, err {row.non2xx}")
    for port in {control, bench.upstream_port}:
        set_knobs(port, delay_ms=0, chunk_gap_ms=0)


def machine_meta(opts: Options, wrk: str) -> dict[str, object]:
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join([sys.executable, *sys.argv]), "host": platform.node(),
            "cpus": procs.ncpus(), "cpu_model": cpu_model, "loadavg_start": procs.loadavg(),
            "python": platform.python_version(),
            "wrk": (wrk_version.stdout + wrk_version.stderr).strip().splitlines()[0],
            "pinning": {"gateway": opts.gateway_cpus, "upstream_and_load": opts.load_cpus},
            "duration_s": opts.duration_s, "threshold_cores": opts.threshold}


def quiet_check(threshold: float) -> float:
    load1 = procs.loadavg()[0]
    meter = procs.Meter()
    meter.start()
    time.sleep(2.0)
    foreign, _, _ = meter.stop()
    msg = f"machine: {procs.ncpus()} CPUs, loadavg {load1:.2f}, foreign CPU over 2 s: {foreign:.2f} cores"
    if foreign > threshold or load1 > 1.0:
        console.print(f"[bold yellow]WARNING: the machine is busy before we start ({msg}); numbers will "
                      "be noisy and rows may be marked DISTURBED.[/]")
    else:
        console.print(msg)
    return foreign


def start_upstream(opts: Options, work: Path) -> tuple[procs.Server, int]:
    try:
        if opts.install:
            peers.UPSTREAM_VENV.ensure(lambda m: console.print(f"  {m}"))
    except RuntimeError as exc:
        console.print(f"[yellow]uvloop venv not available ({exc}); the upstream runs on stdlib asyncio[/]")
    python = peers.UPSTREAM_VENV.python if peers.UPSTREAM_VENV.installed() else Path(sys.executable)
    port = procs.free_port()
    server = procs.start_server("fast_upstream", [str(python), str(peers.HERE / "fast_upstream.py"),
                                                  "--port", str(port)],
                                cpus=opts.load_cpus, env=os.environ.copy(), log_dir=work)
    procs.wait_http(f"http://127.0.0.1:{port}/health", server, 15)
    return server, port


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.from_json:
        data = json.loads(opts.from_json.read_text())
        rows, infos = from_json(data)
        compare(rows)
        meta = data.get("meta", {})
        console.print(f"{opts.from_json}: {meta.get('date')}: {meta.get('command')}")
        out = Console(width=max(200, shutil.get_terminal_size().columns))
        print_tables(out, rows, infos, float(meta.get("threshold_cores", opts.threshold)))
        if opts.targets:
            cores = meta.get("cpus")  # the machine that ran it, not this one
            print_verdict(out, rows, infos, cores if isinstance(cores, int) else procs.ncpus(), opts.profile,
                          opts.aigw)
        return 0
    wrk = load.ensure_wrk(opts.install)
    if wrk is None:
        console.print("[bold red]wrk is not installed: `apt-get install -y wrk` (Debian/Ubuntu).[/]")
        return 2
    work = Path(tempfile.mkdtemp(prefix="llmroute-bench-"))
    meta = machine_meta(opts, wrk)
    meta["foreign_before_cores"] = quiet_check(opts.threshold)
    console.print(f"pinning: gateway on CPU {opts.gateway_cpus or 'any'}, upstream + load generator on CPU "
                  f"{opts.load_cpus or 'any'}; work dir {work}")
    upstream, port = start_upstream(opts, work)
    bench = Bench(opts, wrk, work, upstream, port)
    try:
        for name in opts.only:
            console.rule(name)
            run_gateway(bench, name)
    finally:
        upstream.stop()
    compare(bench.rows)
    meta["loadavg_end"] = procs.loadavg()
    meta["work_dir"] = str(work) if opts.keep else None
    out = Console(width=max(200, shutil.get_terminal_size().columns))
    print_tables(out, bench.rows, bench.infos, opts.threshold)
    verdict = print_verdict(out, bench.rows, bench.infos, procs.ncpus(), opts.profile, opts.aigw) \
        if opts.targets else []
    if opts.json_path:
        data = to_json(bench.rows, bench.infos, meta) | ({"targets": [asdict(v) for v in verdict]}
                                                         if verdict else {})
        opts.json_path.write_text(json.dumps(data, indent=2))
        console.print(f"wrote {opts.json_path}")
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The ledger at scale (issue 12): `llmroute report` and the dashboard's data endpoint against a
generated ledger (bench/ledger/generate.py).

    .venv/bin/python bench/ledger/bench.py --url sqlite:///out/ledger-1m.db --json out/ledger-1m.json

(a) `llmroute report --since 30d`, a subprocess: wall time and peak RSS (ru_maxrss from wait4);
(b) `llmroute serve` on the same ledger (embedded defaults, no gateway keys, the generator's
    experiments configured, alerts off unless --alerts): one GET /dashboard/data per --windows, then
    --refreshes more of the last window; the gateway's RSS at rest before and after, and its peak.
Runs are killed past --timeout or above --rss-cap-mib and reported as such. The machine's other
load (CPU not used by this benchmark's processes) is measured and printed with the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_measure import ROOT, Run, code_env, measure_dashboard, procs, run_report, write_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the generated ledger's URL")
    parser.add_argument("--since", default="30d", help="the report's window (30d)")
    parser.add_argument("--windows", default="24h,30d", help="dashboard windows, in order (24h,30d)")
    parser.add_argument("--refreshes", type=int, default=3, help="refreshes of the last window (3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per report run / request (s)")
    parser.add_argument("--rss-cap-mib", type=float, default=12_000.0, help="kill above this RSS")
    parser.add_argument("--skip-report", action="store_true")
    parser.add_argument("--skip-dashboard", action="store_true")
    parser.add_argument("--alerts", action="store_true", help="leave the gateway's alerts on")
    parser.add_argument("--no-experiments", action="store_true", help="configure no experiments")
    parser.add_argument("--src", type=Path, default=None, help="measure the llmroute source tree in "
                        "this directory (e.g. an earlier commit's `git archive`), not this checkout's")
    parser.add_argument("--label", default="", help="a name for this run in the output")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    return parser.parse_args(argv)


def machine() -> dict[str, Any]:
    return {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "host": platform.node(),
            "cpus": procs.ncpus(), "python": platform.python_version(),
            "loadavg_start": procs.loadavg(), "mem_total_gib": _mem_total_gib()}


def code(src: Path | None) -> dict[str, Any]:
    """Which llmroute was measured: a given source tree, or this checkout (its commit, and whether
    src/ has uncommitted changes)."""
    if src is not None:
        return {"src": str(src.resolve())}
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()
    return {"src": str(ROOT / "src"), "commit": git("rev-parse", "HEAD"),
            "src_dirty": bool(git("status", "--porcelain", "src"))}


def _mem_total_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return 0.0


def _run(run: Run | None) -> dict[str, Any] | None:
    return None if run is None else asdict(run)


def bench(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"label": args.label, "url": args.url, "code": code(args.src),
                              "machine": machine()}
    env = code_env(args.src)
    meter = procs.Meter()
    meter.start()
    with tempfile.TemporaryDirectory(prefix="llmroute-ledger-bench-") as tmp:
        work = Path(tmp)
        config = write_config(args.url, work, alerts=args.alerts, experiments=not args.no_experiments)
        if not args.skip_report:
            print(f"report --since {args.since} ...", file=sys.stderr, flush=True)
            result["report"] = _run(run_report(config, args.since, args.timeout, args.rss_cap_mib, work, env))
        if not args.skip_dashboard:
            print("dashboard ...", file=sys.stderr, flush=True)
            found = measure_dashboard(config, work, env, args.windows.split(","), args.refreshes,
                                      args.timeout, args.rss_cap_mib)
            result["dashboard"] = {k: _run(v) if isinstance(v, Run) else
                                   [_run(r) for r in v] if isinstance(v, list) else v
                                   for k, v in found.items()}
    foreign, steal, elapsed = meter.stop()
    result["machine"].update(foreign_cores=round(foreign, 2), steal_cores=round(steal, 2),
                             elapsed_s=round(elapsed, 1), loadavg_end=procs.loadavg())
    return result


def _cell(run: dict[str, Any] | None, key: str = "wall_s") -> str:
    if run is None:
        return "—"
    if run["outcome"] != "ok":
        return f"over ({run['outcome']})"
    return f"{run[key]:.2f} s" if key == "wall_s" else f"{run[key]:,.0f} MiB"


def table(result: dict[str, Any]) -> str:
    """The results as a few aligned lines."""
    where = result["code"]
    lines = [f"ledger {result['url']} {result['label']}".rstrip(),
             f"  code: {where.get('commit', where['src'])}" + (" + uncommitted src/ changes"
                                                                if where.get("src_dirty") else "")]
    report = result.get("report")
    if report is not None:
        lines.append(f"  llmroute report: {_cell(report)}, peak RSS {report['peak_rss_mib']:,.0f} MiB"
                     f" ({report['detail'].get('first_line', '')})")
    dash = result.get("dashboard")
    if dash is not None:
        lines.append(f"  gateway RSS at rest after start: {dash.get('rss_start_mib', 0):,.0f} MiB")
        for key, run in dash.items():
            if key.startswith("first_") and run is not None:
                lines.append(f"  GET /dashboard/data?since={key[6:]}: {_cell(run)} "
                             f"({run['detail'].get('requests')} requests), gateway RSS after "
                             f"{run['detail'].get('after_rss_mib', 0):,.0f} MiB, peak during "
                             f"{run['peak_rss_mib']:,.0f} MiB")
        refreshes = [r for r in dash.get("refreshes") or [] if r["outcome"] == "ok"]
        if refreshes:
            times = [r["wall_s"] for r in refreshes]
            lines.append(f"  {len(times)} refreshes: median {statistics.median(times):.2f} s, "
                         f"max {max(times):.2f} s; RSS after each "
                         + ", ".join(f"{r['detail']['after_rss_mib']:,.0f}" for r in refreshes) + " MiB")
        if "rss_end_mib" in dash:
            lines.append(f"  gateway RSS at rest at the end: {dash['rss_end_mib']:,.0f} MiB "
                         f"(peak {dash['peak_rss_mib']:,.0f} MiB)")
        if "gateway_cpu_ms_per_refresh" in dash:
            lines.append(f"  CPU per refresh: gateway {dash['gateway_cpu_ms_per_refresh']:.1f} ms, "
                         f"reader process {dash['reader_cpu_ms_per_refresh']:.1f} ms")
        if "own_rss_end_mib" in dash:
            lines.append(f"  process tree after the first windows: {dash['rss_after_first_mib']:,.0f} MiB; "
                         f"the gateway's own process: {dash['own_rss_start_mib']:,.0f} -> "
                         f"{dash['own_rss_end_mib']:,.0f} MiB")
    m = result["machine"]
    lines.append(f"  machine: {m['cpus']} CPUs, {m['mem_total_gib']} GiB; other load during the run "
                 f"{m['foreign_cores']} cores (steal {m['steal_cores']}), {m['elapsed_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.perf_counter()
    result = bench(args)
    result["bench_s"] = round(time.perf_counter() - started, 1)
    print(table(result))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return result


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

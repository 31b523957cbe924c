"""Results: one row per gateway × scenario, the comparisons against the upstream and LiteLLM, the table.

Added latency = the gateway's percentile minus the upstream-alone percentile of the same scenario.
Ratios against LiteLLM: throughput ×, added latency as a fraction of LiteLLM's added latency, and how
many times less CPU per request.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rich.console import Console
from rich.table import Table

REFERENCE = "litellm"
BASELINE = "upstream"


@dataclass
class Row:
    """One measured run of one gateway in one scenario."""

    gateway: str
    scenario: str
    kind: str                       # "wrk" or "stream"
    delay_ms: float
    concurrency: int
    requests: int = 0
    rps: float = 0.0
    p50_ms: float = 0.0             # for streams: time to first token
    p99_ms: float = 0.0
    socket_errors: int = 0
    non2xx: int = 0
    cpu_ms_per_req: float = 0.0
    upstream_calls_per_req: float = 0.0
    foreign_cores: float = 0.0
    steal_cores: float = 0.0
    disturbed: bool = False
    attempts: int = 1
    rss_mib: float = 0.0
    stream: dict[str, object] = field(default_factory=dict)
    note: str = ""
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None
    vs_ref_rps: float | None = None
    vs_ref_added_p50: float | None = None
    vs_ref_added_p99: float | None = None
    vs_ref_cpu: float | None = None

    @property
    def failed(self) -> bool:
        return self.socket_errors > 0 or self.non2xx > 0


@dataclass
class GatewayInfo:
    """What is known about one gateway apart from its scenario rows."""

    name: str
    status: str = "not run"          # "ok", or why it could not be measured
    version: str = ""
    workers: int = 1
    cpus: str = ""
    startup_s: float = 0.0
    idle_rss_mib: float = 0.0
    rss_after_load_mib: float = 0.0
    soak: dict[str, float] = field(default_factory=dict)


def compare(rows: list[Row]) -> None:
    """Fill in added latency (vs the upstream alone) and the ratios against LiteLLM, in place."""
    by_key = {(r.gateway, r.scenario): r for r in rows}
    for r in rows:
        base = by_key.get((BASELINE, r.scenario))
        if base is not None and r.gateway != BASELINE and base.requests:
            r.added_p50_ms = r.p50_ms - base.p50_ms
            r.added_p99_ms = r.p99_ms - base.p99_ms
    for r in rows:
        ref = by_key.get((REFERENCE, r.scenario))
        if ref is None or r.gateway == REFERENCE or not ref.requests or not r.requests:
            continue
        r.vs_ref_rps = r.rps / ref.rps if ref.rps else None
        r.vs_ref_cpu = ref.cpu_ms_per_req / r.cpu_ms_per_req if r.cpu_ms_per_req > 0 else None
        if r.added_p50_ms is not None and ref.added_p50_ms and ref.added_p50_ms > 0:
            r.vs_ref_added_p50 = r.added_p50_ms / ref.added_p50_ms
        if r.added_p99_ms is not None and ref.added_p99_ms and ref.added_p99_ms > 0:
            r.vs_ref_added_p99 = r.added_p99_ms / ref.added_p99_ms


def _f(value: float | None, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def num(d: dict[str, object], key: str) -> float:
    """A number from a JSON-ish dict (0.0 when missing or not a number)."""
    value = d.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _stream_note(r: Row) -> str:
    s = r.stream
    if not s:
        return ""
    expected, spread = num(s, "expected_spread_ms"), num(s, "spread_p50_ms")
    verdict = "incremental" if expected <= 0 or spread >= 0.5 * expected else "[bold red]BUFFERED[/]"
    text = (f"total p50 {num(s, 'total_p50_ms'):.0f} ms; first→last token {spread:.0f} ms "
            f"(upstream spaced them {expected:.0f} ms): {verdict}")
    return f"{text}; {r.note}" if r.note else text


def table(rows: list[Row], infos: dict[str, GatewayInfo], threshold: float) -> Table:
    t = Table(title="Gateways side by side (same machine, same upstream, same request)",
              header_style="bold", show_lines=False)
    for col, justify in [("gateway", "left"), ("scenario", "left"), ("req/s", "right"),
                         ("×LiteLLM", "right"), ("p50 ms", "right"), ("p99 ms", "right"),
                         ("+p50 ms", "right"), ("+p99 ms", "right"), ("+lat ÷LiteLLM p50/p99", "right"),
                         ("CPU ms/req", "right"), ("CPU ÷", "right"), ("up/req", "right"), ("err", "right"),
                         ("foreign", "right"), ("note", "left")]:
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    last = ""
    for r in rows:
        if r.gateway != last and last:
            t.add_section()
        last = r.gateway
        flag = f"{r.foreign_cores:.2f}"
        if r.disturbed:
            flag = f"[bold yellow]DISTURBED {flag}[/]"
        errs = r.socket_errors + r.non2xx
        err = f"[bold red]{errs}[/]" if errs else "0"
        note = _stream_note(r) if r.kind == "stream" else r.note
        ratio = ("–" if r.vs_ref_added_p50 is None and r.vs_ref_added_p99 is None else
                 f"{_f(r.vs_ref_added_p50, '{:.2f}')}/{_f(r.vs_ref_added_p99, '{:.2f}')}")
        calls = f"{r.upstream_calls_per_req:.2f}"
        if abs(r.upstream_calls_per_req - 1) > 0.05:
            calls = f"[bold yellow]{calls}[/]"
        t.add_row(r.gateway, r.scenario, _f(r.rps, "{:,.0f}"), _f(r.vs_ref_rps, "{:.1f}×"),
                  _f(r.p50_ms, "{:.2f}"), _f(r.p99_ms, "{:.2f}"), _f(r.added_p50_ms, "{:.2f}"),
                  _f(r.added_p99_ms, "{:.2f}"), ratio, _f(r.cpu_ms_per_req, "{:.2f}"),
                  _f(r.vs_ref_cpu, "{:.1f}× less"), calls, err, flag, note)
    for name, info in infos.items():
        if info.status != "ok":
            t.add_section()
            t.add_row(name, "[bold red]not measured[/]", *["–"] * 12, info.status[:160])
    t.caption = (f"foreign = mean CPU (cores) used by processes the harness did not start; above "
                 f"{threshold:.2f} the row is DISTURBED (its numbers are not clean). Streams: p50/p99 are "
                 "time to first token. up/req = upstream calls per completed request (1.00 expected).")
    return t


def memory_table(infos: dict[str, GatewayInfo]) -> Table:
    t = Table(title="Start-up and memory (RSS of the gateway's process tree)", header_style="bold")
    for col in ["gateway", "version", "workers", "CPUs", "status", "start s", "idle RSS MiB",
                "RSS after load MiB", "soak"]:
        t.add_column(col)
    for info in infos.values():
        soak = ""
        if info.soak:
            s = info.soak
            soak = (f"{s.get('rss_first_mib', 0):.0f} MiB @ {s.get('first_requests', 0):,.0f} → "
                    f"{s.get('rss_last_mib', 0):.0f} MiB @ {s.get('last_requests', 0):,.0f} "
                    f"({s.get('growth_pct', 0):+.1f}%)")
        status = info.status if info.status == "ok" else f"[bold red]{info.status[:80]}[/]"
        t.add_row(info.name, info.version, str(info.workers), info.cpus, status, f"{info.startup_s:.1f}",
                  f"{info.idle_rss_mib:.0f}", f"{info.rss_after_load_mib:.0f}", soak)
    return t


def _check(ok: bool | None) -> str:
    return "[dim]n/a[/]" if ok is None else ("[bold green]met[/]" if ok else "[bold red]NOT met[/]")


def targets(rows: list[Row], infos: dict[str, GatewayInfo], gateway: str = "llmroute") -> list[str]:
    """Issue 6's targets for one gateway, from this run's rows (n/a when a row is missing)."""
    by = {(r.gateway, r.scenario): r for r in rows}
    c1, c64 = by.get((gateway, "0ms c=1")), by.get((gateway, "0ms c=64"))
    s1 = by.get((gateway, "stream c=1"))
    out = []
    if c1 is not None:
        out.append(f"added latency at c=1: p50 {_f(c1.vs_ref_added_p50, '{:.3f}')} of LiteLLM's (≤ 0.10) "
                   f"{_check(None if c1.vs_ref_added_p50 is None else c1.vs_ref_added_p50 <= 0.10)}, "
                   f"p99 {_f(c1.vs_ref_added_p99, '{:.3f}')} (≤ 0.20) "
                   f"{_check(None if c1.vs_ref_added_p99 is None else c1.vs_ref_added_p99 <= 0.20)}")
    if c64 is not None:
        out.append(f"throughput at c=64, one worker: {_f(c64.vs_ref_rps, '{:.1f}')}× LiteLLM's (≥ 20×) "
                   f"{_check(None if c64.vs_ref_rps is None else c64.vs_ref_rps >= 20)}")
    cpu = [r.cpu_ms_per_req for r in rows if r.gateway == gateway and r.kind == "wrk" and r.concurrency >= 16]
    if cpu:
        out.append(f"CPU per request (full path, c≥16): {min(cpu):.2f}–{max(cpu):.2f} ms (≤ 1 ms) "
                   f"{_check(max(cpu) <= 1.0)}")
    if s1 is not None and s1.added_p50_ms is not None:
        spread, expected = num(s1.stream, "spread_p50_ms"), num(s1.stream, "expected_spread_ms")
        out.append(f"streaming: TTFT adds {s1.added_p50_ms:.2f} ms at p50 (≤ 1 ms) "
                   f"{_check(s1.added_p50_ms <= 1.0)}; chunks forwarded as they arrive "
                   f"{_check(expected <= 0 or spread >= 0.5 * expected)}")
    info = infos.get(gateway)
    if info is not None and info.status == "ok":
        out.append(f"idle RSS {info.idle_rss_mib:.0f} MiB (≤ 120) {_check(info.idle_rss_mib <= 120)}")
        if info.soak:
            growth = info.soak.get("growth_pct", 0.0)
            out.append(f"RSS growth from {info.soak.get('first_requests', 0):,.0f} to "
                       f"{info.soak.get('last_requests', 0):,.0f} requests: {growth:+.1f}% (≤ 10%) "
                       f"{_check(growth <= 10)}")
    w2 = by.get((f"{gateway}-w2", "0ms c=64"))
    if w2 is not None and c64 is not None and c64.rps:
        out.append(f"--workers 2 vs 1 at 0ms c=64: {w2.rps / c64.rps:.2f}× the throughput (on "
                   f"{(infos.get(gateway + '-w2') or GatewayInfo('')).cpus or 'any'} CPUs, shared with the "
                   "upstream and load generator on a 2-core machine)")
    return out


def print_tables(console: Console, rows: list[Row], infos: dict[str, GatewayInfo],
                 threshold: float) -> None:
    console.print(table(rows, infos, threshold))
    console.print(memory_table(infos))
    lines = targets(rows, infos)
    if lines:
        noisy = any(r.disturbed for r in rows if r.gateway in ("llmroute", REFERENCE, BASELINE))
        console.print("[bold]Issue 6 targets for llmroute (this run)" +
                      (", from DISTURBED rows: indicative only" if noisy else "") + ":[/]")
        for line in lines:
            console.print(f"  - {line}")
    disturbed = [r for r in rows if r.disturbed]
    failed = [r for r in rows if r.failed]
    if disturbed:
        console.print(f"[bold yellow]WARNING: {len(disturbed)} row(s) ran while other processes used more "
                      f"than {threshold:.2f} of a core: " +
                      ", ".join(f"{r.gateway}/{r.scenario} ({r.foreign_cores:.2f})" for r in disturbed) +
                      ". Treat those numbers as upper bounds on cost and lower bounds on speed; rerun "
                      "on a quiet machine.[/]")
    if failed:
        console.print("[bold red]ERRORS: " + ", ".join(
            f"{r.gateway}/{r.scenario} ({r.socket_errors} socket errors, {r.non2xx} non-2xx)"
            for r in failed) + "[/]")


def from_json(data: dict[str, object]) -> tuple[list[Row], dict[str, GatewayInfo]]:
    """Rows and gateway infos back from a `--json` file (to re-render its tables)."""
    fields = set(Row.__dataclass_fields__)
    raw_rows = data.get("rows")
    raw_infos = data.get("gateways")
    rows = [Row(**{k: v for k, v in r.items() if k in fields})
            for r in (raw_rows if isinstance(raw_rows, list) else [])]
    infos = {k: GatewayInfo(**v) for k, v in (raw_infos if isinstance(raw_infos, dict) else {}).items()}
    return rows, infos


def to_json(rows: list[Row], infos: dict[str, GatewayInfo], meta: dict[str, object]) -> dict[str, object]:
    return {"meta": meta, "gateways": {k: asdict(v) for k, v in infos.items()},
            "rows": [asdict(r) | {"failed": r.failed} for r in rows]}

"""The ai-gateway-bench methodology's arithmetic (issue 17): added latency, the discard rule, targets.

Pure functions over measured points; ``aigw.py`` measures them, ``aigw_table.py`` renders them.

- added latency at a client count = the gateway's percentile minus the direct (client -> mock)
  percentile at the same client count, in the same run;
- the direct p99 at 1 client is the floor; a client count whose direct p99 is above twice the floor is
  discarded (the mock or the load generator, not the gateway, is the bottleneck there): its points stay
  in the table, marked, and no target is computed from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

DIRECT = "direct"
SUBJECT = "llmroute"
REFERENCE = "litellm"
DISCARD_FACTOR = 2.0


@dataclass
class Point:
    """One gateway at one client count (non-streaming, closed loop)."""

    gateway: str
    clients: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    cpu_ms_per_req: float | None = None
    upstream_calls_per_req: float | None = None
    foreign_cores: float = 0.0
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None
    discarded: bool = False


@dataclass
class TtftPoint:
    """One gateway's streams at one client count: time to the first SSE event (as the bench does)."""

    gateway: str
    clients: int
    streams: int
    errors: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    first_token_p50_ms: float = 0.0
    cpu_ms_per_stream: float | None = None
    added_p50_ms: float | None = None
    added_p99_ms: float | None = None
    note: str = ""


@dataclass
class Target:
    """One of issue 17's targets, evaluated on this run (value None: not measurable here)."""

    name: str
    goal: str
    value: float | None
    met: bool | None
    detail: str = ""


@dataclass
class Run:
    points: list[Point]
    ttft: list[TtftPoint] = field(default_factory=list)


def added(gateway_ms: float, direct_ms: float) -> float:
    """Gateway minus direct, same percentile, same client count, same run (can be negative)."""
    return gateway_ms - direct_ms


def direct_floor(points: list[Point]) -> float | None:
    """The direct p99 at 1 client, or None when it was not measured (or failed)."""
    for p in points:
        if p.gateway == DIRECT and p.clients == 1 and p.requests > 0 and p.errors == 0:
            return p.p99_ms
    return None


def discarded_clients(points: list[Point], factor: float = DISCARD_FACTOR) -> set[int]:
    """Client counts whose direct p99 exceeds factor x the 1-client floor (none without a floor)."""
    floor = direct_floor(points)
    if floor is None:
        return set()
    return {p.clients for p in points
            if p.gateway == DIRECT and p.requests > 0 and p.p99_ms > factor * floor}


def with_added(points: list[Point], factor: float = DISCARD_FACTOR) -> list[Point]:
    """Copies of the points with added p50/p99 (vs direct at the same client count) and the discard
    mark; a gateway point without a usable direct point at its client count gets no added latency."""
    direct = {p.clients: p for p in points if p.gateway == DIRECT and p.requests > 0 and p.errors == 0}
    dropped = discarded_clients(points, factor)
    out = []
    for p in points:
        base = direct.get(p.clients)
        usable = base is not None and p.gateway != DIRECT and p.requests > 0
        out.append(replace(
            p, discarded=p.clients in dropped,
            added_p50_ms=added(p.p50_ms, base.p50_ms) if usable and base else None,
            added_p99_ms=added(p.p99_ms, base.p99_ms) if usable and base else None))
    return out


def ttft_with_added(points: list[TtftPoint]) -> list[TtftPoint]:
    """Copies with added TTFT p50/p99 against the direct streams at the same client count."""
    direct = {p.clients: p for p in points if p.gateway == DIRECT and p.streams > p.errors}
    out = []
    for p in points:
        base = direct.get(p.clients)
        ok = base is not None and p.gateway != DIRECT and p.streams > p.errors
        out.append(replace(
            p, added_p50_ms=added(p.ttft_p50_ms, base.ttft_p50_ms) if ok and base else None,
            added_p99_ms=added(p.ttft_p99_ms, base.ttft_p99_ms) if ok and base else None))
    return out


def unexpected_calls(p: Point) -> bool:
    """Whether the upstream saw other than one call per answered request: fewer (a cache answered)
    or more (retries). Requests in flight when wrk stops (its own, and the warm-up's) are answered by
    the upstream but not counted by wrk: up to 2 x clients calls more is expected."""
    if p.upstream_calls_per_req is None or p.requests == 0:
        return False
    calls = p.upstream_calls_per_req * p.requests
    return calls < 0.95 * p.requests or calls > 1.05 * p.requests + 2 * p.clients


def find(points: list[Point], gateway: str, clients: int) -> Point | None:
    """The retained (not discarded, error-free) point of gateway at clients, if any."""
    for p in points:
        if p.gateway == gateway and p.clients == clients and not p.discarded and p.errors == 0 \
                and p.requests > 0:
            return p
    return None


def ratio(subject: float | None, reference: float | None) -> float | None:
    """subject / reference; None when either is missing or the reference is not positive (an added
    latency at or below zero is noise, and a ratio against it means nothing)."""
    if subject is None or reference is None or reference <= 0:
        return None
    return subject / reference


def _at_most(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


def _latency_target(points: list[Point], which: str, goal: float) -> Target:
    s, r = find(points, SUBJECT, 1), find(points, REFERENCE, 1)
    attr = f"added_{which}_ms"
    sv = getattr(s, attr) if s else None
    rv = getattr(r, attr) if r else None
    value = ratio(sv, rv)
    detail = f"{SUBJECT} {_ms(sv)} / {REFERENCE} {_ms(rv)}"
    return Target(f"added {which} at 1 client, ÷ LiteLLM", f"≤ {goal:g}", value, _at_most(value, goal),
                  detail)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f} ms"


def targets(points: list[Point], ttft: list[TtftPoint], ttft_clients: int = 16) -> list[Target]:
    """Issue 17's targets on this run's retained points (ratios against LiteLLM in the same run)."""
    out = [_latency_target(points, "p99", 0.12), _latency_target(points, "p50", 0.05)]
    s64, r64 = find(points, SUBJECT, 64), find(points, REFERENCE, 64)
    tput = ratio(s64.rps if s64 else None, r64.rps if r64 else None)
    out.append(Target("throughput at 64 clients, × LiteLLM", "≥ 30", tput,
                      None if tput is None else tput >= 30,
                      "closed loop on a 20 ms mock: at most 64 / 20 ms = 3,200 req/s for anyone"))
    cpu = max((p.cpu_ms_per_req for p in points if p.gateway == SUBJECT and p.cpu_ms_per_req is not None
               and not p.discarded and p.clients == 64), default=None)
    out.append(Target(f"{SUBJECT} CPU per request at 64 clients (ms)", "≤ 0.2", cpu, _at_most(cpu, 0.2),
                      "gateway process CPU time / requests served"))
    st = next((t for t in ttft if t.gateway == SUBJECT and t.clients == ttft_clients), None)
    tv = st.added_p50_ms if st else None
    out.append(Target(f"streaming TTFT added p50 at {ttft_clients} clients (ms)", "≤ 0.5", tv,
                      _at_most(tv, 0.5), "first SSE event, gateway minus direct"))
    return out

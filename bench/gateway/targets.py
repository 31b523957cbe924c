"""Issue 17's targets as a verdict computed from one run's rows (pure: no I/O, no printing).

Each target gets: the measured value, the goal in absolute terms in this run (a ratio against
LiteLLM becomes milliseconds or req/s of this run's LiteLLM), met or not, and for a miss the split
from the same run: what the floor pays (`floor-canned`: uvicorn + the JSON parse and answer;
`floor`: + llmroute's upstream client, `bench/gateway/floor_app.py`), what is llmroute's own work
(llmroute minus the floor), and what that own work would have to fall to (the factor). The profile
(`profile_parts.py`: instruction counts per part) then says which parts that own work is made of.
Rendering is `targets_view.py`; run.py calls both with `--targets`.
"""

from __future__ import annotations

from dataclasses import dataclass

from report import BASELINE, REFERENCE, GatewayInfo, Row

SUBJECT = "llmroute"
FLOOR = "floor"
FLOOR_CANNED = "floor-canned"
C1, C16, C64 = "0ms c=1", "0ms c=16", "0ms c=64"
S1 = "stream c=1"
WORKER_LEVELS = (1, 2, 4, 8)


@dataclass(frozen=True)
class Split:
    """A miss taken apart, in the target's unit (ms of latency or CPU ms per request)."""

    floor_canned: float | None   # the server and the JSON alone
    floor: float | None          # + the upstream client: what any gateway on this stack pays
    own: float | None            # llmroute minus the floor
    own_goal: float | None       # what llmroute's own work would have to fall to (None: unknown)
    note: str = ""

    @property
    def factor(self) -> float | None:
        """own_goal / own: 0.36 means llmroute's own work would have to fall to 0.36 of today's."""
        if self.own is None or self.own_goal is None or self.own <= 0:
            return None
        return max(self.own_goal, 0.0) / self.own

    @property
    def floor_alone_misses(self) -> bool:
        return self.own_goal is not None and self.own_goal <= 0


@dataclass(frozen=True)
class Verdict:
    """One target on one run. status: "met", "not met", "n/a" (not decidable here: `why`),
    "recorded" (a measurement with no threshold) or "not measurable" (this machine cannot)."""

    target: str
    source: str
    unit: str
    measured: float | None
    goal: float | None
    goal_text: str
    status: str
    split: Split | None = None
    why: str = ""
    own_cpu: bool = False         # the miss is in CPU per request: the profile's parts apply


def _ok(value: float | None, goal: float | None, *, at_most: bool = True) -> str:
    if value is None or goal is None:
        return "n/a"
    return "met" if (value <= goal if at_most else value >= goal) else "not met"


def _rows(rows: list[Row]) -> dict[tuple[str, str], Row]:
    return {(r.gateway, r.scenario): r for r in rows if r.requests > 0 and not r.failed}


def _split(by: dict[tuple[str, str], Row], scenario: str, attr: str, subject: float,
           goal: float | None) -> Split:
    """llmroute's `attr` in `scenario` taken apart against the floor rows of the same scenario."""
    canned, floor = by.get((FLOOR_CANNED, scenario)), by.get((FLOOR, scenario))
    # a canned stream answers without the upstream's pacing: its TTFT is not comparable, left out
    fc = getattr(canned, attr) if canned is not None and canned.kind != "stream" else None
    fl = getattr(floor, attr) if floor is not None else None
    if fl is None:
        return Split(fc, None, None, None, f"no `{FLOOR}` row in this run: add it to --only to split "
                                           "the miss into the floor and llmroute's own work")
    note = ""
    if fl < 0:  # an added latency below the upstream's own: noise, and not a credit to own work
        note = f"the floor's {fl:+.2f} is below the upstream's own (noise): counted as 0"
        fl_used = 0.0
    else:
        fl_used = fl
    own = subject - fl_used
    own_goal = None if goal is None else goal - fl_used
    if own_goal is not None and own_goal <= 0:
        note = (f"{note}; " if note else "") + (
            f"the floor alone ({fl_used:.3f}) is at or over the goal ({goal:.3f}): no cut in "
            "llmroute's own work closes it on this server and client")
    return Split(fc, fl, own, own_goal, note)


def latency(by: dict[tuple[str, str], Row], which: str, fraction: float) -> Verdict:
    """Added p50/p99 at 1 client (0 ms upstream) ≤ fraction of LiteLLM's added in the same run."""
    name = f"added {which} at 1 client ≤ {fraction:g} × LiteLLM's"
    attr = f"added_{which}_ms"
    s, r = by.get((SUBJECT, C1)), by.get((REFERENCE, C1))
    sv = getattr(s, attr) if s is not None else None
    rv = getattr(r, attr) if r is not None else None
    if sv is None:
        return Verdict(name, "run.py", "ms", None, None, "–", "n/a",
                       why=f"no error-free `{SUBJECT}` and `{BASELINE}` rows at {C1}")
    if rv is None:
        return Verdict(name, "run.py", "ms", sv, None, "–", "n/a",
                       why=f"no error-free `{REFERENCE}` row at {C1}: the goal is a ratio against "
                           "LiteLLM in the same run")
    if rv <= 0:
        base = by.get((BASELINE, C1))
        return Verdict(name, "run.py", "ms", sv, None, "–", "n/a",
                       why=f"LiteLLM's added {which} is {rv:+.2f} ms: the upstream's own {which} "
                           f"({getattr(base, f'{which}_ms', 0.0):.2f} ms) was above it (noise): no "
                           "ratio; rerun quieter")
    goal = fraction * rv
    status = _ok(sv, goal)
    split = _split(by, C1, attr, sv, goal) if status == "not met" else None
    return Verdict(name, "run.py", "ms", sv, goal,
                   f"≤ {fraction:g} × {rv:.2f} = {goal:.3f} ms (ratio now {sv / rv:.3f})", status, split)


def _cpu_row(by: dict[tuple[str, str], Row], gateway: str) -> Row | None:
    return by.get((gateway, C64)) or by.get((gateway, C16))


def throughput(by: dict[tuple[str, str], Row], times: float = 30.0) -> Verdict:
    """req/s at 64 clients, one worker, ≥ times × LiteLLM's. The miss is split in CPU per request:
    on one core a CPU-bound gateway's rate scales with 1 / CPU per request, so the CPU per request
    that gives the goal at today's utilisation is CPU × rate / goal."""
    name = f"throughput at 64 clients, one worker ≥ {times:g}× LiteLLM's"
    s, r = by.get((SUBJECT, C64)), by.get((REFERENCE, C64))
    if s is None:
        return Verdict(name, "run.py", "req/s", None, None, "–", "n/a",
                       why=f"no error-free `{SUBJECT}` row at {C64}")
    if r is None or r.rps <= 0:
        return Verdict(name, "run.py", "req/s", s.rps, None, "–", "n/a",
                       why=f"no error-free `{REFERENCE}` row at {C64}: the goal is a ratio against LiteLLM")
    goal = times * r.rps
    status = _ok(s.rps, goal, at_most=False)
    cpu_goal = s.cpu_ms_per_req * s.rps / goal if s.cpu_ms_per_req > 0 else None
    busy = s.rps * s.cpu_ms_per_req / 1000  # cores the gateway used: below 1, it was not CPU-bound
    text = f"≥ {times:g} × {r.rps:,.0f} = {goal:,.0f} req/s (× {s.rps / r.rps:.1f} now)"
    if cpu_goal is not None:
        text += f"; in CPU: ≤ {cpu_goal:.3f} ms per request at this run's {busy:.2f} cores busy"
    split = None
    if status == "not met":
        split = _split(by, C64, "cpu_ms_per_req", s.cpu_ms_per_req, cpu_goal)
    return Verdict(name, "run.py", "req/s", s.rps, goal, text, status, split, own_cpu=True)


def cpu(by: dict[tuple[str, str], Row], limit: float = 0.2) -> Verdict:
    """CPU per request (the gateway's process tree, 0 ms upstream, 64 clients, else 16) ≤ limit."""
    name = f"CPU per request ≤ {limit:g} ms"
    s = _cpu_row(by, SUBJECT)
    if s is None or s.cpu_ms_per_req <= 0:
        return Verdict(name, "run.py", "ms", None, limit, f"≤ {limit:g} ms", "n/a",
                       why=f"no error-free `{SUBJECT}` row at {C64} or {C16}")
    status = _ok(s.cpu_ms_per_req, limit)
    split = _split(by, s.scenario, "cpu_ms_per_req", s.cpu_ms_per_req, limit) if status == "not met" \
        else None
    return Verdict(name, "run.py", "ms", s.cpu_ms_per_req, limit, f"≤ {limit:g} ms ({s.scenario})",
                   status, split, own_cpu=True)


def ttft(by: dict[tuple[str, str], Row], limit: float = 0.5) -> Verdict:
    """Time to first token added at p50, one streaming client, ≤ limit ms."""
    name = f"TTFT added p50 ≤ {limit:g} ms"
    s = by.get((SUBJECT, S1))
    if s is None or s.added_p50_ms is None:
        return Verdict(name, "run.py", "ms", None, limit, f"≤ {limit:g} ms", "n/a",
                       why=f"no error-free `{SUBJECT}` and `{BASELINE}` rows at {S1}")
    status = _ok(s.added_p50_ms, limit)
    split = _split(by, S1, "added_p50_ms", s.added_p50_ms, limit) if status == "not met" else None
    return Verdict(name, "run.py", "ms", s.added_p50_ms, limit, f"≤ {limit:g} ms ({S1})", status, split)


def per_chunk(by: dict[tuple[str, str], Row]) -> Verdict:
    """Per-chunk CPU halved: a target relative to the code before issue 17's streaming work, which
    one run of one tree cannot decide (and run.py's few 8-chunk streams give CPU in whole ticks)."""
    s = by.get((SUBJECT, "stream c=16")) or by.get((SUBJECT, S1))
    ticks = f"CPU per stream {s.cpu_ms_per_req:.2f} ms over {s.requests} streams, " if s else ""
    return Verdict("per-chunk CPU halved", "run.py", "µs/chunk", None, None,
                   "½ of the base's CPU per chunk", "n/a",
                   why="relative to another tree: `ab.py --arm base=<b5961e4>/src --arm now=src` counts "
                       "(CPU per 64-chunk stream − per 1-chunk stream) / 63 for both; this run has "
                       f"only {ticks}not a per-chunk figure")


def workers(by: dict[tuple[str, str], Row], infos: dict[str, GatewayInfo], cores: int) -> Verdict:
    """`--workers N` scaling: each worker needs a core of its own and the upstream and the load
    generator one more, so N workers are measurable with N + 1 cores, scaling with 3 or more."""
    name = "--workers N scaling (1, 2, 4, 8)"
    levels = [w for w in WORKER_LEVELS if w + 1 <= cores]
    if len(levels) < 2:
        return Verdict(name, "run.py", "×", None, None, "record 1, 2, 4, 8 workers", "not measurable",
                       why=f"not measurable with < 3 cores (this machine: {cores}): a worker needs a core "
                           "and the upstream and load generator another; 1, 2, 4, 8 workers need 9")
    one, two = by.get((SUBJECT, C64)), by.get((f"{SUBJECT}-w2", C64))
    if one is None or two is None or one.rps <= 0:
        return Verdict(name, "run.py", "×", None, None, "record 1, 2, 4, 8 workers", "n/a",
                       why=f"measurable here up to {levels[-1]} workers, but this run has no "
                           f"`{SUBJECT}-w2` and `{SUBJECT}` rows at {C64}: add llmroute-w2 to --only")
    w2 = infos.get(f"{SUBJECT}-w2")
    return Verdict(name, "run.py", "×", two.rps / one.rps, None, "record 1, 2, 4, 8 workers", "recorded",
                   why=f"2 workers = {two.rps / one.rps:.2f}× 1 worker at {C64} (CPUs "
                       f"{w2.cpus if w2 else '?'}; {cores} cores: up to {levels[-1]} measurable)")


def verdicts(rows: list[Row], infos: dict[str, GatewayInfo], cores: int) -> list[Verdict]:
    """Every target of issue 17 on one run's rows (run `report.compare` on them first)."""
    by = _rows(rows)
    return [latency(by, "p99", 0.12), latency(by, "p50", 0.05), throughput(by), cpu(by), ttft(by),
            per_chunk(by), workers(by, infos, cores)]

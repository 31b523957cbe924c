"""What the 1-client latency tail is made of: every request's latency, next to what the gateway
was doing meanwhile (garbage collections, the ledger writer's batches, its SQLite thread, other
worker threads).

    .venv/bin/python bench/gateway/tail.py [--arm NAME=SRC[,OPTION=VALUE]...]... [--rounds 3]
        [--duration 8] [--wal interval]

Each round runs the bare upstream at 1 client (the baseline), then each arm in turn (the order
alternates between rounds): the gateway (run.py's `llmroute` row: key, cascade policy, SQLite
ledger, metrics) from SRC, pinned to CPU 0, with `tail_trace/` on its PYTHONPATH and
LLMROUTE_TAIL_TRACE set, so it records its collections, writer batches and thread calls; this
process is the client (one keep-alive connection, raw socket, CPU 1): it sends the next request as
soon as the answer is in and keeps each one's start and end on the same monotonic clock.
`switch=S` sets the interpreter's GIL switch interval to S seconds at start (through the trace
hook; the gateway may set its own later); `nice=N` the SQLite thread's nice value (trace hook),
`child_nice=N` that of the `writes: process` child; `main_slice=NS` / `helper_slice=NS` the
scheduler slice the main thread (at start) / the SQLite thread asks for (sched_setattr);
`helper_cpus=1` (or 0+1) moves the SQLite thread to those CPUs, `child_cpus=` the ledger's
child processes, `child_group_nice=N` puts them in a session of their own whose autogroup
(Linux's per-session CPU share) gets nice N;
`writes=` sets `ledger.writes`; `LLMROUTE__A__B=V` is passed to the gateway's environment (a
config override, e.g. `LLMROUTE__LEDGER__ENABLED=false`).
Per arm and round it prints p50/p99/p99.9 of the latency, the added p50/p99 (minus the
upstream's own), and how the slowest 1% overlap each kind of event, against the share
of all requests that do: a kind the tail overlaps far more often than the rest is its cause.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import peers
import procs

HERE = Path(__file__).resolve().parent
KINDS = ("gc0", "gc1", "gc2", "flush", "rows", "sqlite", "thread")
RUNQ_NS = 200_000
MARKS = (*KINDS, "helper", "foreign")
Span = tuple[int, int]
#: start, end (ns); ns runnable but off the CPU meanwhile: the other processes' (upstream, client),
#: the gateway's main thread's; ns the gateway's helper threads and children ran
Req = tuple[int, int, int, int, int]


class Sched:
    """The scheduler's per-thread counters (/proc/<pid>/task/<tid>/schedstat: ns on the CPU, ns
    runnable but waiting for it), read with one pread per thread (~1 µs each): the gateway's main
    thread, its other threads and child processes (the SQLite writer's thread, worker threads,
    the ledger's reader and writer children: the "helpers") and other processes (upstream, this
    client). The threads are those alive when this is built."""

    def __init__(self, gateway: int | None, others: Iterable[int]) -> None:
        self._main: list[int] = []
        self._helpers: list[int] = []
        self._others: list[int] = []
        for pid in procs.tree(gateway) if gateway is not None else ():  # with its child processes
            for tid in os.listdir(f"/proc/{pid}/task"):
                group = self._main if int(tid) == gateway else self._helpers
                group.append(os.open(f"/proc/{pid}/task/{tid}/schedstat", os.O_RDONLY))
        for pid in others:
            for tid in os.listdir(f"/proc/{pid}/task"):
                self._others.append(os.open(f"/proc/{pid}/task/{tid}/schedstat", os.O_RDONLY))

    @staticmethod
    def _sum(fds: list[int], field: int) -> int:
        total = 0
        for fd in fds:
            try:
                total += int(os.pread(fd, 128, 0).split()[field])
            except (OSError, IndexError):
                continue
        return total

    def sample(self) -> tuple[int, int, int]:
        """(main thread's wait, helpers' CPU time, the other processes' wait), ns."""
        return self._sum(self._main, 1), self._sum(self._helpers, 0), self._sum(self._others, 1)

    def close(self) -> None:
        for fd in (*self._main, *self._helpers, *self._others):
            os.close(fd)


def foreign_bounds(r: Req) -> tuple[int, int]:
    """(least, most) of a request's wait that foreign load explains: the other processes' wait
    plus the main thread's wait beyond what our own helpers ran (they share its CPU: they may have
    run while it waited), or plus all of it."""
    _, _, others, main, helpers = r
    return others + max(0, main - helpers), others + main


@dataclass(frozen=True)
class Arm:
    name: str
    src: Path
    switch: str | None = None
    writes: str | None = None
    nice: str | None = None
    child_nice: str | None = None
    main_slice: str | None = None
    helper_slice: str | None = None
    helper_cpus: str | None = None
    child_cpus: str | None = None
    child_group_nice: str | None = None
    env: tuple[tuple[str, str], ...] = ()  # LLMROUTE__… overrides of the generated config


def parse_arm(text: str) -> Arm:
    name, _, rest = text.partition("=")
    src, *opts = rest.split(",")
    kv = dict(opt.split("=", 1) for opt in opts)
    env = tuple((k, v) for k, v in kv.items() if k.startswith("LLMROUTE__"))
    return Arm(name, Path(src).resolve(), kv.get("switch"), kv.get("writes"), kv.get("nice"),
               kv.get("child_nice"), kv.get("main_slice"), kv.get("helper_slice"),
               kv.get("helper_cpus"), kv.get("child_cpus"),
               kv.get("child_group_nice"), env)


# -- the client ----------------------------------------------------------------------------------
def request_bytes(url: str, body: dict[str, object], headers: dict[str, str]) -> bytes:
    parts = urlsplit(url)
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json",
             f"Content-Length: {len(payload)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def read_answer(sock: socket.socket, buf: bytearray) -> bytearray:
    """Read one Content-Length-framed answer; return what is left over (nothing, at 1 client)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"not a 200: {head[:80]!r}")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    body = bytearray(rest)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-body")
        body += chunk
    return body[length:]


def drive(url: str, body: dict[str, object], headers: dict[str, str], seconds: float,
          sched: Sched | None = None) -> list[Req]:
    """Requests one after another on one connection for `seconds`: each one's start and end ns and
    the scheduler's split of it (zeros without `sched`)."""
    parts = urlsplit(url)
    raw = request_bytes(url, body, headers)
    out: list[Req] = []
    sample = sched.sample if sched is not None else (lambda: (0, 0, 0))
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        stop = time.monotonic_ns() + int(seconds * 1e9)
        while True:
            s0 = sample()
            t0 = time.monotonic_ns()
            if t0 >= stop:
                return out
            sock.sendall(raw)
            buf = read_answer(sock, buf)
            t1 = time.monotonic_ns()
            main, helpers, others = (a - b for a, b in zip(sample(), s0, strict=True))
            out.append((t0, t1, others, main, helpers))


# -- the analysis --------------------------------------------------------------------------------
def load_events(path: Path) -> dict[str, list[Span]]:
    spans: dict[str, list[Span]] = {k: [] for k in KINDS}
    if not path.exists():
        return spans
    for line in path.read_text().splitlines():
        kind, t0, t1, detail = json.loads(line)
        key = f"gc{detail}" if kind == "gc" else kind
        spans[key].append((t0, t1))
    return {k: sorted(v) for k, v in spans.items()}


def overlaps(req: Req, spans: list[Span]) -> bool:
    """Whether any span overlaps the request (spans sorted by start; linear, small lists)."""
    import bisect

    i = bisect.bisect_left(spans, (req[1], req[1]))
    return any(s[1] > req[0] for s in spans[max(0, i - 64):i])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(reqs: list[Req], events: dict[str, list[Span]], window_ns: int | None = None
              ) -> dict[str, object]:
    """Latency quantiles; per kind of event (and `foreign`: ≥ 0.2 ms of foreign wait during the
    request; `helper`: the gateway's helper threads ran ≥ 0.2 ms), the share of the slowest 1% and
    of all requests overlapping it; p99 of the requests that overlap nothing ("clean"); the same
    without the foreign wait ("own"): what a quiet machine would show, roughly."""
    events = {k: [e for e in v if reqs and reqs[0][0] <= e[1] and e[0] <= reqs[-1][1]]
              for k, v in events.items()}
    if window_ns is not None:  # the events of the measured window only
        reqs = [r for r in reqs if r[0] >= window_ns]
    lat = [(r[1] - r[0]) / 1e6 for r in reqs]
    cut = quantile(lat, 0.99)
    slow = [r for r, v in zip(reqs, lat, strict=True) if v >= cut]
    marks = {k: [overlaps(r, spans) for r in reqs] for k, spans in events.items()}
    slow_marks = {k: [overlaps(r, spans) for r in slow] for k, spans in events.items()}
    for name, of in (("foreign", lambda r: foreign_bounds(r)[0]), ("helper", lambda r: r[4])):
        marks[name] = [of(r) >= RUNQ_NS for r in reqs]
        slow_marks[name] = [of(r) >= RUNQ_NS for r in slow]
    clean = [v for i, v in enumerate(lat) if not any(m[i] for m in marks.values())]
    # without the time the servers sat runnable but off the CPU (foreign load): the gateway's own tail
    own = [(r[1] - r[0] - foreign_bounds(r)[0]) / 1e6 for r in reqs]
    # less all of the main thread's wait too: what is left is CPU work and waits off the run queue
    # (the GIL, I/O): the gateway's own tail can be no smaller than this
    least = [(r[1] - r[0] - foreign_bounds(r)[1]) / 1e6 for r in reqs]
    own_cut = quantile(own, 0.99)
    own_slow = [r for r, v in zip(reqs, own, strict=True) if v >= own_cut]
    return {
        "n": len(lat), "p50": quantile(lat, 0.5), "p99": cut, "p999": quantile(lat, 0.999),
        "slow_foreign_ms": statistics.median(foreign_bounds(r)[0] for r in slow) / 1e6,
        "clean_p99": quantile(clean, 0.99) if clean else float("nan"), "clean_share": len(clean) / len(lat),
        "own_p50": quantile(own, 0.5), "own_p99": own_cut,
        "least_p50": quantile(least, 0.5), "least_p99": quantile(least, 0.99),
        "own_slow": {**{k: sum(overlaps(r, spans) for r in own_slow) / len(own_slow)
                        for k, spans in events.items()},
                     "helper": sum(r[4] >= RUNQ_NS for r in own_slow) / len(own_slow)},
        "events": {k: len(v) for k, v in events.items()},
        "longest_ms": {k: max(((s[1] - s[0]) / 1e6 for s in v), default=0.0) for k, v in events.items()},
        "slow": {k: sum(m) / len(m) for k, m in slow_marks.items()},
        "all": {k: sum(m) / len(m) for k, m in marks.items()},
    }


# -- the runs ------------------------------------------------------------------------------------
def run_arm(arm: Arm, args: argparse.Namespace, up_port: int, up_pid: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="llmroute-tail-"))
    port = procs.free_port()
    gw = peers.launch_llmroute(port, up_port, work, 1, wal=args.wal)
    if arm.writes is not None:
        config = work / "llmroute.yaml"
        spool = f"  spool_path: {work}/ledger.spool.jsonl\n"
        config.write_text(config.read_text().replace(spool, spool + f"  writes: {arm.writes}\n"))
    trace = work / "trace.jsonl"
    env = {**gw.env, "PYTHONPATH": f"{arm.src}{os.pathsep}{HERE / 'tail_trace'}",
           "LLMROUTE_TAIL_TRACE": str(trace)}
    if arm.switch is not None:
        env["LLMROUTE_TAIL_SWITCH_S"] = arm.switch
    if arm.nice is not None:
        env["LLMROUTE_TAIL_HELPER_NICE"] = arm.nice
    for knob, value in (("MAIN_SLICE_NS", arm.main_slice), ("HELPER_SLICE_NS", arm.helper_slice),
                        ("HELPER_CPUS", arm.helper_cpus), ("CHILD_CPUS", arm.child_cpus),
                        ("CHILD_GROUP_NICE", arm.child_group_nice)):
        if value is not None:
            env[f"LLMROUTE_TAIL_{knob}"] = value
    if arm.child_nice is not None:
        env["LLMROUTE_TAIL_CHILD_NICE"] = arm.child_nice
    env.update(arm.env)
    gateway = procs.start_server("llmroute", gw.argv, cpus="0", env=env, log_dir=work)
    try:
        procs.wait_http(gw.ready_url, gateway, gw.ready_timeout_s)
        drive(gw.url, gw.body, gw.headers, args.warmup)
        sched = Sched(gateway.pid, [up_pid, os.getpid()])
        start = time.monotonic_ns()
        reqs = drive(gw.url, gw.body, gw.headers, args.duration, sched)
        sched.close()
    finally:
        gateway.stop()
    events = load_events(trace)
    if not trace.exists():
        raise SystemExit(f"no trace from the gateway:\n{gateway.log_tail()}")
    shutil.rmtree(work, ignore_errors=True)
    return summarise(reqs, events, start)


def show(name: str, s: dict[str, object], base: dict[str, object] | None) -> str:
    add = ""
    if base is not None:
        add = (f" added p50 {float(s['p50']) - float(base['p50']):+.2f} p99 "  # type: ignore[arg-type]
               f"{float(s['p99']) - float(base['p99']):+.2f}")  # type: ignore[arg-type]
    slow, every, own, longest = s["slow"], s["all"], s["own_slow"], s["longest_ms"]
    assert isinstance(slow, dict) and isinstance(every, dict)
    assert isinstance(own, dict) and isinstance(longest, dict)
    shares = " ".join(f"{k} {slow[k]:.0%}/{every[k]:.0%}" for k in MARKS if every[k] or slow[k])
    return (f"{name:>10}: n {s['n']} p50 {s['p50']:.2f} p99 {s['p99']:.2f} p99.9 {s['p999']:.2f} ms{add};"
            f" clean p99 {s['clean_p99']:.2f} ({s['clean_share']:.0%} of requests); slowest 1%'s median"
            f" foreign wait {s['slow_foreign_ms']:.2f} ms; "
            f"slowest 1% / all overlapping: {shares}\n{'':>12}own (less foreign wait): p50 {s['own_p50']:.2f}"
            f" p99 {s['own_p99']:.2f} ms, its slowest 1% overlapping: "
            + " ".join(f"{k} {own[k]:.0%}" for k in (*KINDS, "helper") if every[k] or own[k])
            + f"; less all run-queue wait: p50 {s['least_p50']:.2f} p99 {s['least_p99']:.2f} ms"
            + "; longest: " + " ".join(f"{k} {longest[k]:.1f}" for k in KINDS if longest[k]) + " ms")


def medians(rows: Iterable[dict[str, object]], key: str) -> float:
    return statistics.median(float(r[key]) for r in rows)  # type: ignore[arg-type]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arm", action="append", type=parse_arm,
                   help="NAME=SRC[,OPTION=VALUE]... (default: this tree's src as 'now')")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--wal", default=None, help="ledger WAL setting for the generated config")
    p.add_argument("--json", type=Path, default=None, help="write every round's summary here")
    args = p.parse_args()
    arms: list[Arm] = args.arm or [Arm("now", (HERE.parent.parent / "src").resolve())]
    os.sched_setaffinity(0, {1 % procs.ncpus()})
    work = Path(tempfile.mkdtemp(prefix="llmroute-tail-up-"))
    up_port = procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    upstream = procs.start_server("upstream", up.argv, cpus="1", env=up.env, log_dir=work)
    results: dict[str, list[dict[str, object]]] = {"upstream": [], **{a.name: [] for a in arms}}
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        for r in range(args.rounds):
            drive(up.url, up.body, {}, args.warmup)
            sched = Sched(None, [upstream.pid, os.getpid()])
            base = summarise(drive(up.url, up.body, {}, args.duration, sched), {k: [] for k in KINDS})
            sched.close()
            results["upstream"].append(base)
            print(f"round {r + 1}, load {procs.loadavg()[0]:.2f}", flush=True)
            print(show("upstream", base, None), flush=True)
            for arm in arms if r % 2 == 0 else arms[::-1]:
                row = run_arm(arm, args, up_port, upstream.pid)
                row["added_p50"] = float(row["p50"]) - float(base["p50"])  # type: ignore[arg-type]
                row["added_p99"] = float(row["p99"]) - float(base["p99"])  # type: ignore[arg-type]
                results[arm.name].append(row)
                print(show(arm.name, row, base), flush=True)
    finally:
        upstream.stop()
    for arm in arms:
        rows = results[arm.name]
        spread = ", ".join(f"{float(r['added_p99']):.2f}" for r in rows)  # type: ignore[arg-type]
        own = ", ".join(f"{float(r['own_p99']):.2f}" for r in rows)  # type: ignore[arg-type]
        least = ", ".join(f"{float(r['least_p99']):.2f}" for r in rows)  # type: ignore[arg-type]
        print(f"median {arm.name}: added p50 {medians(rows, 'added_p50'):.2f} ms, added p99 "
              f"{medians(rows, 'added_p99'):.2f} ms (rounds: {spread}), p99.9 {medians(rows, 'p999'):.2f} ms;"
              f" own p50 {medians(rows, 'own_p50'):.2f} p99 {medians(rows, 'own_p99'):.2f} ms"
              f" (rounds: {own}); less all run-queue wait p99 {medians(rows, 'least_p99'):.2f} ms"
              f" (rounds: {least})")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Where a request's added latency goes at one client (issue 17): the gateway's own stage
boundaries next to the client's send and receive, on one monotonic clock.

    .venv/bin/python bench/gateway/stages.py [--arm NAME=SRC]... [--delays 0,20] [--duration 6]
        [--rounds 1] [--no-stream] [--limits] [--chunks 8] [--gap-ms 0]

Per round, delay and arm (arms alternate order between rounds): the fast upstream at that delay
(CPU 1) is first driven directly (the baseline), then the gateway (run.py's `llmroute` row: key,
cascade policy, SQLite ledger, metrics) from SRC, pinned to CPU 0, with `stage_trace/` on its
PYTHONPATH, is driven by this process (CPU 1, one keep-alive connection, raw socket): non-streaming
requests, then streaming ones. The trace hook marks each stage's end (see its docstring); this
prints, per stage, the median and mean µs of every request's interval, the client's view (added
latency against the direct baseline, and for streams the first byte), and the main thread's CPU
time from the endpoint's start to the answer written against the wall time of the same span.
`--gap-ms 20` paces the upstream's content chunks as run.py's streaming rows do: every stream then
ends after a 20 ms pause, so the next request meets a gateway that has been idle (runs cold).
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
from pathlib import Path
from urllib.parse import urlsplit

import peers
import procs
from run import set_knobs
from tail import read_answer, request_bytes

HERE = Path(__file__).resolve().parent
Timing = tuple[int, int, int]  # client's send, first byte of the body (streams), end
#: the marks shown, in the order they are taken by time (stages are named by the marks they
#: lie between, so work moved after the answer shows as stages after `sent1` / the first `body`)
PLAIN = ("serve0", "gw0", "admit1", "up0", "connect1", "acquire1", "data0", "parsed1", "head1",
         "up1", "settle1", "entry1", "record1", "metrics1", "account1", "keep1", "durable1", "gw1", "sent1",
         "serve1")
STREAM = ("serve0", "gw0", "admit1", "connect1", "acquire1", "data0", "parsed1", "head1", "first",
          "gw1", "body")


def read_stream(sock: socket.socket) -> tuple[int, int]:
    """Read one chunked SSE answer: the ns its first `data:` arrived, and its end."""
    buf, first = b"", 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
        if not first and b"data:" in buf:
            first = time.monotonic_ns()
        if buf.endswith(b"0\r\n\r\n") and b"[DONE]" in buf:
            return first, time.monotonic_ns()


def drive(url: str, body: dict[str, object], headers: dict[str, str], seconds: float,
          stream: bool) -> list[Timing]:
    parts = urlsplit(url)
    raw = request_bytes(url, {**body, "stream": True} if stream else body, headers)
    out: list[Timing] = []
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        stop = time.monotonic_ns() + int(seconds * 1e9)
        while (t0 := time.monotonic_ns()) < stop:
            sock.sendall(raw)
            if stream:
                first, t1 = read_stream(sock)
            else:
                buf = read_answer(sock, buf)
                first = t1 = time.monotonic_ns()
            out.append((t0, first, t1))
    return out


def requests_of(path: Path) -> list[list[tuple[str, int, int]]]:
    """The trace's marks, one list per request (split at `serve0`)."""
    reqs: list[list[tuple[str, int, int]]] = []
    for line in path.read_text().splitlines():
        name, t, c = json.loads(line)
        if name == "serve0":
            reqs.append([])
        if reqs:
            reqs[-1].append((name, t, c))
    return reqs


def stages(client: list[Timing], marks: list[list[tuple[str, int, int]]], order: tuple[str, ...],
           stream: bool) -> dict[str, list[float]]:
    """Per stage, every request's µs; the request's marks are matched to the client's by time."""
    out: dict[str, list[float]] = {}
    i = 0
    for t0, first, t1 in client:
        while i < len(marks) and marks[i][0][1] < t0:
            i += 1
        if i >= len(marks) or marks[i][0][1] > t1:
            continue
        seen: dict[str, tuple[int, int]] = {}
        for name, t, c in marks[i]:
            seen.setdefault(name, (t, c))
        last_body = max((t for name, t, _ in marks[i] if name == "body"), default=0)
        prev, prev_name = t0, "client send"
        for name in sorted((n for n in order if n in seen), key=lambda n: seen[n][0]):
            out.setdefault(f"{prev_name} → {name}", []).append((seen[name][0] - prev) / 1e3)
            prev, prev_name = seen[name][0], name
        if not stream and "sent1" in seen:
            prev = seen["sent1"][0]
        if stream:
            out.setdefault("body → client first data", []).append((first - seen["body"][0]) / 1e3)
            out.setdefault("last body → client end", []).append((t1 - last_body) / 1e3)
            out.setdefault("[client send → stream end]", []).append((t1 - t0) / 1e3)
            if "gw0" in seen and "relay1" in seen:
                out.setdefault("[first body → relay ended]", []).append(
                    (seen["relay1"][0] - seen["body"][0]) / 1e3)
        else:
            out.setdefault("sent1 → client end", []).append((t1 - prev) / 1e3)
            if "sent1" in seen:
                cpu = (seen["sent1"][1] - seen["serve0"][1]) / 1e3
                out.setdefault("[main-thread CPU serve0 → sent1]", []).append(cpu)
        out.setdefault("[client total]", []).append(((first if stream else t1) - t0) / 1e3)
        i += 1
    return out


#: per arm, delay and mode: each request's (request sent, bytes reach the connection) ns
HOPS: dict[str, list[tuple[int, int]]] = {}


def upstream_split(path: Path) -> None:
    """Split each request's wait for the upstream with the upstream's own trace: request sent →
    the upstream's read of it → its first write → the bytes reach the gateway's connection."""
    import bisect

    recv, sent = [], []
    for line in path.read_text().splitlines():
        kind, ns = line.split()
        if kind in ("recv", "sent"):  # not ttft_legs.py's "chunk" marks
            (recv if kind == "recv" else sent).append(int(ns))
    print("the wait for the upstream, split by its own trace (µs: median)")
    for label, hops in HOPS.items():
        parts: list[tuple[float, float, float]] = []
        for t_sent, t_data in hops:
            i = bisect.bisect_left(recv, t_sent)
            j = bisect.bisect_left(sent, recv[i]) if i < len(recv) else len(sent)
            if i < len(recv) and j < len(sent) and sent[j] <= t_data:
                parts.append(((recv[i] - t_sent) / 1e3, (sent[j] - recv[i]) / 1e3,
                              (t_data - sent[j]) / 1e3))
        if parts:
            a, b, c = (statistics.median(p[k] for p in parts) for k in range(3))
            print(f"  {label:<40} n {len(parts):5}: sent → upstream reads {a:7.1f}, upstream "
                  f"reads → writes {b:7.1f}, writes → our connection has it {c:7.1f}")


def show(title: str, rows: dict[str, list[float]], direct: float) -> None:
    print(f"  {title}  (µs: median / mean; n {len(rows.get('[client total]', []))})")
    for name, values in rows.items():
        print(f"    {name:<34} {statistics.median(values):9.1f} {statistics.fmean(values):9.1f}")
    total = statistics.median(rows["[client total]"])
    print(f"    {'added vs direct (median)':<34} {total - direct:9.1f}", flush=True)


def run_arm(name: str, src: Path, up_port: int, args: argparse.Namespace, delay: float,
            direct: dict[bool, float]) -> None:
    work = Path(tempfile.mkdtemp(prefix="llmroute-stages-"))
    port = procs.free_port()
    gw = peers.launch_llmroute(port, up_port, work, 1, state="memory://" if args.limits else None)
    trace = work / "trace.jsonl"
    env = {**gw.env, "PYTHONPATH": f"{src}{os.pathsep}{HERE / 'stage_trace'}",
           "LLMROUTE_STAGE_TRACE": str(trace)}
    gateway = procs.start_server("llmroute", gw.argv, cpus="0", env=env, log_dir=work)
    runs: dict[bool, list[Timing]] = {}
    try:
        procs.wait_http(gw.ready_url, gateway, gw.ready_timeout_s)
        for stream in (False, True) if args.stream else (False,):
            drive(gw.url, gw.body, gw.headers, args.warmup, stream)
            runs[stream] = drive(gw.url, gw.body, gw.headers, args.duration, stream)
    finally:
        gateway.stop()
    marks = requests_of(trace)
    print(f"{name} at {delay:g} ms upstream (load {procs.loadavg()[0]:.2f})")
    for stream, client in runs.items():
        label = f"{name}, {delay:g} ms, {'stream' if stream else 'plain'}"
        for req in marks:
            seen = {m: t for m, t, _ in reversed(req)}
            if "acquire1" in seen and "data0" in seen \
                    and client[0][0] <= seen["serve0"] <= client[-1][2]:  # this mode's window
                HOPS.setdefault(label, []).append((seen["acquire1"], seen["data0"]))
        show("stream, to first data" if stream else "non-streaming", stages(
            client, marks, STREAM if stream else PLAIN, stream), direct[stream])
    shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arm", action="append", default=None, help="NAME=SRC (default: now=src)")
    p.add_argument("--delays", default="0,20")
    p.add_argument("--duration", type=float, default=6.0)
    p.add_argument("--warmup", type=float, default=1.5)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--no-stream", dest="stream", action="store_false")
    p.add_argument("--chunks", type=int, default=8, help="content chunks per upstream stream")
    p.add_argument("--gap-ms", type=float, default=0.0,
                   help="the upstream's pause before each content chunk (run.py's streams: 20)")
    p.add_argument("--limits", action="store_true",
                   help="run.py's control-plane limits (a budget, a rate and a token limit)")
    args = p.parse_args()
    arms = [(a.partition("=")[0], Path(a.partition("=")[2]).resolve()) for a in args.arm or
            [f"now={HERE.parent.parent / 'src'}"]]
    os.sched_setaffinity(0, {1 % procs.ncpus()})
    work = Path(tempfile.mkdtemp(prefix="llmroute-stages-up-"))
    up_port = procs.free_port()
    up = peers.launch_upstream(up_port, 0, work, 1)
    up_trace = work / "upstream-trace.txt"
    upstream = procs.start_server("upstream", up.argv, cpus="1",
                                  env={**up.env, "FAST_UPSTREAM_TRACE": str(up_trace)}, log_dir=work)
    try:
        procs.wait_http(up.ready_url, upstream, up.ready_timeout_s)
        for r in range(args.rounds):
            for delay in (float(d) for d in args.delays.split(",")):
                set_knobs(up_port, delay_ms=delay, chunk_gap_ms=args.gap_ms, chunks=args.chunks)
                direct = {}
                for stream in (False, True) if args.stream else (False,):
                    drive(up.url, up.body, {}, args.warmup, stream)
                    timings = drive(up.url, up.body, {}, args.duration / 2, stream)
                    direct[stream] = statistics.median(
                        ((f if stream else t1) - t0) / 1e3 for t0, f, t1 in timings)
                print(f"round {r + 1}, upstream {delay:g} ms, direct p50 µs: "
                      + ", ".join(f"{'stream first data' if s else 'plain'} {v:.1f}"
                                  for s, v in direct.items()), flush=True)
                for name, src in arms if r % 2 == 0 else arms[::-1]:
                    run_arm(name, src, up_port, args, delay, direct)
    finally:
        upstream.stop()
        if up_trace.exists():
            upstream_split(up_trace)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Where a paced stream's first token spends its time in a gateway (issue 17): the upstream's write
of the first content chunk → the gateway's upstream client has the bytes → the gateway's body
send returned → the client has the token, on one monotonic clock, arms interleaved.

    .venv/bin/python bench/gateway/ttft_legs.py --arm base=/tmp/base/src --arm now=src
        [--arm floor=src] [--gap-ms 20] [--streams 30] [--rounds 4]

Each arm is NAME=SRC: `llmroute serve` (run.py's `llmroute` row config) with PYTHONPATH=SRC, or,
for a NAME starting with `floor`, `floor_app.py` (the bare relay) on SRC's h1 client; each with
`ttft_trace/` first on its PYTHONPATH (marks `d`: bytes handed to h1, `b`: a body message sent).
The fast upstream (CPU 1, `FAST_UPSTREAM_TRACE`: each content chunk's write) spaces the role chunk
and the content chunks `--gap-ms` apart, so the first token reaches a gateway that has been idle
that long (a model's pace; run.py's streaming rows use 20 ms). Gateways on CPU 0; this process
(the client, stream_client.py's parser, one connection) on CPU 1. Per round and arm the upstream
alone (`direct`) and the arm are driven; printed: client TTFT minus the gap (median per round) and
the median of each leg over every stream's first token.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import peers
import procs
import stream_client
from run import set_knobs

HERE = Path(__file__).resolve().parent
Legs = tuple[float, float, float]


def legs(chunks: list[int], marks: list[tuple[str, int]], tokens: list[int]) -> list[Legs]:
    """Per first token the client saw at ns `t`: (the upstream's last chunk write before the
    gateway's bytes → those bytes handed to h1, → the gateway's last body send before `t`, → `t`),
    in µs. `marks`: the gateway's (`d`|`b`, ns) in time order; `chunks`: the upstream's sorted."""
    data = [ns for kind, ns in marks if kind == "d"]
    sent = [ns for kind, ns in marks if kind == "b"]
    out = []
    for t in tokens:
        j = bisect.bisect_right(sent, t) - 1
        if j < 0:
            continue
        i = bisect.bisect_right(data, sent[j]) - 1
        k = bisect.bisect_right(chunks, data[i]) - 1 if i >= 0 else -1
        if k >= 0:
            out.append(((data[i] - chunks[k]) / 1e3, (sent[j] - data[i]) / 1e3, (t - sent[j]) / 1e3))
    return out


def drive(url: str, headers: dict[str, str], body: bytes, n: int) -> tuple[float, list[int]]:
    """n streams one after another: TTFT p50 (ms) and each first token's ns."""
    tokens: list[int] = []
    plain = stream_client._OnData._event

    def event(self: stream_client._OnData, payload: bytes, now: float) -> None:
        had = self.result.ttft
        plain(self, payload, now)
        if not had and self.result.ttft:
            tokens.append(int((self.t0 + self.result.ttft) * 1e9))  # perf_counter: CLOCK_MONOTONIC

    stream_client._OnData._event = event  # type: ignore[method-assign]
    try:
        summary = asyncio.run(stream_client.run(url, headers, body, n, 1))
    finally:
        stream_client._OnData._event = plain  # type: ignore[method-assign]
    return float(summary["ttft_p50_ms"]), tokens  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arm", action="append", required=True, help="NAME=SRC")
    p.add_argument("--gap-ms", type=float, default=20.0)
    p.add_argument("--streams", type=int, default=30)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--chunks", type=int, default=8)
    a = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ttft-legs-"))
    python = str(peers.ROOT / ".venv" / "bin" / "python")
    up_port, up_trace = procs.free_port(), work / "upstream.trace"
    up = procs.start_server("upstream", [python, str(HERE / "fast_upstream.py"), "--port", str(up_port)],
                            cpus="1", env={**os.environ, "FAST_UPSTREAM_TRACE": str(up_trace)}, log_dir=work)
    arms = []
    try:
        procs.wait_http(f"http://127.0.0.1:{up_port}/health", up, 15)
        for name, src in (arm.split("=", 1) for arm in a.arm):
            port, trace = procs.free_port(), work / f"{name}.trace"
            path = {"PYTHONPATH": f"{HERE / 'ttft_trace'}:{Path(src).resolve()}", "TTFT_TRACE": str(trace)}
            if name.startswith("floor"):
                launch = peers.launch_floor(port, up_port, work, 1)
            else:
                (work / name).mkdir()
                launch = peers.launch_llmroute(port, up_port, work / name, 1)
            server = procs.start_server(name, launch.argv, cpus="0", env={**launch.env, **path}, log_dir=work)
            arms.append((name, launch, server, trace))
            procs.wait_http(launch.ready_url, server, 60, launch.headers)
        os.sched_setaffinity(0, {1})
        def body(launch: peers.Launch) -> bytes:  # each arm's own (the model it serves)
            asked = {**launch.body, "stream": True, "stream_options": {"include_usage": True}}
            return json.dumps(asked).encode()

        direct = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        set_knobs(up_port, delay_ms=0, chunk_gap_ms=0, chunks=a.chunks)
        for _, launch, _, _ in arms:  # warm-up
            drive(launch.url, launch.headers, body(launch), 20)
        set_knobs(up_port, chunk_gap_ms=a.gap_ms)
        ttft: dict[str, list[float]] = {}
        tokens: dict[str, list[int]] = {}
        for r in range(a.rounds):
            for name, launch, _, _ in (arms if r % 2 == 0 else arms[::-1]):
                ttft.setdefault("direct", []).append(drive(direct, {}, body(launch), a.streams)[0] - a.gap_ms)
                t, seen = drive(launch.url, launch.headers, body(launch), a.streams)
                ttft.setdefault(name, []).append(t - a.gap_ms)
                tokens.setdefault(name, []).extend(seen)
    finally:
        for _, _, server, _ in arms:
            server.stop()
        up.stop()
    time.sleep(0.5)
    chunks = sorted(int(ns) for kind, ns in (line.split() for line in up_trace.read_text().splitlines())
                    if kind == "chunk")
    print(f"gap {a.gap_ms:g} ms, {a.streams} streams x {a.rounds} rounds per arm; ms, µs")
    for name, values in ttft.items():
        print(f"{name:>10} TTFT - gap p50 per round: {' '.join(f'{v:.3f}' for v in values)}; "
              f"median {statistics.median(values):.3f} ms")
    for name, _, _, trace in arms:
        marks = [(kind, int(ns)) for kind, ns, _ in (line.split() for line in trace.read_text().splitlines())]
        found = legs(chunks, marks, tokens[name])
        if found:
            med = [statistics.median(x[i] for x in found) for i in range(3)]
            print(f"{name:>10} first token, {len(found)} streams: upstream write → h1 has it {med[0]:.0f} µs"
                  f" → body sent {med[1]:.0f} µs → client has it {med[2]:.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

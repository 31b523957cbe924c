"""bench/gateway/tail.py's analysis (issue 17): how requests are matched to the gateway's events and
how the scheduler's counters bound the gateway's own latency."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GATEWAY_BENCH = str(Path(__file__).resolve().parents[2] / "bench" / "gateway")
sys.path.insert(0, GATEWAY_BENCH)
try:
    import tail
finally:
    sys.path.remove(GATEWAY_BENCH)

MS = 1_000_000


def requests(n: int, *, slow_every: int, slow_ms: int) -> list[tail.Req]:
    """n back-to-back 1 ms requests; every `slow_every`th takes `slow_ms` instead."""
    out, t = [], 0
    for i in range(n):
        length = slow_ms * MS if i % slow_every == 0 else MS
        out.append((t, t + length, 0, 0, 0))
        t += length
    return out


def test_the_slowest_requests_are_matched_to_the_events_they_overlap() -> None:
    reqs = requests(1000, slow_every=100, slow_ms=5)
    flushes = [(r[0] + MS, r[0] + 2 * MS) for r in reqs[::100]]  # inside each slow request
    events: dict[str, list[tail.Span]] = {k: [] for k in tail.KINDS} | {"flush": flushes}
    summary = tail.summarise(reqs, events)

    assert summary["p50"] == pytest.approx(1.0)
    assert summary["p99"] == pytest.approx(5.0)
    assert summary["slow"]["flush"] == 1.0  # type: ignore[index]
    assert summary["all"]["flush"] == pytest.approx(0.01)  # type: ignore[index]
    assert summary["clean_p99"] == pytest.approx(1.0)


def test_events_outside_the_measured_window_are_left_out() -> None:
    reqs = requests(200, slow_every=1000, slow_ms=1)
    events: dict[str, list[tail.Span]] = {k: [] for k in tail.KINDS}
    events["gc2"] = [(-50 * MS, -40 * MS)]  # at startup
    assert tail.summarise(reqs, events)["events"]["gc2"] == 0  # type: ignore[index]


def test_the_bounds_of_the_gateways_own_wait() -> None:
    # others waited 1 ms; the loop thread 3 ms, while our own helpers ran 2 ms
    req = (0, 10 * MS, 1 * MS, 3 * MS, 2 * MS)
    least, most = tail.foreign_bounds(req)
    assert (least, most) == (2 * MS, 4 * MS)  # 1 ms of the loop's wait may be foreign, or all 3
    assert tail.foreign_bounds((0, MS, 0, MS, 5 * MS)) == (0, MS)  # helpers ran more: none foreign

    reqs = [(i * 20 * MS, i * 20 * MS + 10 * MS, 0, 8 * MS, 0) for i in range(100)]  # all foreign
    summary = tail.summarise(reqs, {k: [] for k in tail.KINDS})
    assert summary["p99"] == pytest.approx(10.0)
    assert summary["own_p99"] == pytest.approx(2.0)
    assert summary["least_p99"] == pytest.approx(2.0)


def test_trace_lines_load_by_kind(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    lines = [["gc", 5, 6, 0], ["gc", 1, 2, 2], ["flush", 3, 9, 256], ["thread", 4, 5, "Wal.sync"]]
    trace.write_text("".join(json.dumps(line) + "\n" for line in lines))
    events = tail.load_events(trace)
    assert events["gc0"] == [(5, 6)] and events["gc2"] == [(1, 2)]
    assert events["flush"] == [(3, 9)] and events["thread"] == [(4, 5)]
    assert tail.load_events(tmp_path / "missing.jsonl")["flush"] == []


def test_arms_parse_their_options() -> None:
    arm = tail.parse_arm("b=src,nice=19,writes=process,LLMROUTE__LEDGER__ENABLED=false")
    assert (arm.name, arm.src, arm.nice, arm.writes) == ("b", Path("src").resolve(), "19", "process")
    assert arm.env == (("LLMROUTE__LEDGER__ENABLED", "false"),)


def test_the_trace_hook_leaves_the_ledger_writing(tmp_path: Path) -> None:
    """The hook wraps the store's own functions: a change of their signature must not break the
    writes it watches (it once did, silently: every batch was spooled and the bench read nothing)."""
    import os
    import subprocess

    script = f"""
import asyncio, sys
sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / "ledger")!r})
from ledger_factories import make_entry
from llmroute.ledger import SQLiteStore

async def main():
    store = SQLiteStore({str(tmp_path / "ledger.db")!r})
    await store.migrate()
    await store.write([make_entry(1)])
    await store.write_idle([make_entry(2)])
    await store.write_behind([make_entry(3)])
    print(await store.count())
    await store.close()

asyncio.run(main())
"""
    trace = tmp_path / "trace.jsonl"
    env = {**os.environ, "LLMROUTE_TAIL_TRACE": str(trace),
           "PYTHONPATH": os.pathsep.join([str(Path(GATEWAY_BENCH) / "tail_trace"),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == ["3"]
    kinds = [json.loads(line)[0] for line in trace.read_text().splitlines()]
    assert kinds.count("rows") == 3 and kinds.count("sqlite") >= 3

"""bench/gateway/aigw*.py's pure parts (issue 17): added latency against direct at the same client count,
the discard rule (direct p99 above twice its 1-client floor), the targets and the rendered tables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# bench/gateway holds modules named profile, run, load, report: on sys.path only while these import
GATEWAY_BENCH = str(Path(__file__).resolve().parents[2] / "bench" / "gateway")
sys.path.insert(0, GATEWAY_BENCH)
try:
    import aigw_core as core
    import aigw_table as table
    import fast_upstream
    from aigw_core import Point, TtftPoint
finally:
    sys.path.remove(GATEWAY_BENCH)


def pt(gateway: str, clients: int, p50: float, p99: float, *, rps: float = 100.0, errors: int = 0,
       cpu: float | None = 0.5, calls: float | None = 1.0) -> Point:
    return Point(gateway, clients, 1000, rps, p50, p99, errors, cpu, calls)


def sweep(direct_p99: dict[int, float]) -> list[Point]:
    """direct at each client count with the given p99; llmroute 1 ms and litellm 10 ms slower."""
    out = []
    for c, p99 in direct_p99.items():
        out += [pt("direct", c, 20.0, p99, rps=50.0 * c), pt("llmroute", c, 21.0, p99 + 1.0, rps=48.0 * c),
                pt("litellm", c, 30.0, p99 + 10.0, rps=10.0 * c)]
    return out


def by(points: list[Point], gateway: str, clients: int) -> Point:
    return next(p for p in points if p.gateway == gateway and p.clients == clients)


def test_added_latency_is_the_gateway_minus_direct_at_the_same_client_count() -> None:
    points = core.with_added(sweep({1: 22.0, 4: 23.5, 16: 25.0}))
    for c, direct_p99 in ((1, 22.0), (4, 23.5), (16, 25.0)):
        lr, ll = by(points, "llmroute", c), by(points, "litellm", c)
        assert (lr.added_p50_ms, lr.added_p99_ms) == pytest.approx((1.0, 1.0))
        assert (ll.added_p50_ms, ll.added_p99_ms) == pytest.approx((10.0, 10.0))
        assert ll.p99_ms - ll.added_p99_ms == pytest.approx(direct_p99)
        assert by(points, "direct", c).added_p99_ms is None


def test_added_latency_can_be_negative_and_needs_a_usable_direct_point() -> None:
    points = [pt("direct", 1, 20.0, 22.0), pt("llmroute", 1, 19.5, 21.9),
              pt("direct", 4, 20.0, 23.0, errors=3), pt("llmroute", 4, 21.0, 24.0),
              pt("llmroute", 16, 21.0, 24.0)]
    out = core.with_added(points)
    assert by(out, "llmroute", 1).added_p99_ms == pytest.approx(-0.1)
    assert by(out, "llmroute", 1).added_p50_ms == pytest.approx(-0.5)
    assert by(out, "llmroute", 4).added_p99_ms is None      # direct failed there
    assert by(out, "llmroute", 16).added_p99_ms is None     # direct not measured there
    assert points[1].added_p99_ms is None                    # the input is not mutated


def test_a_client_count_whose_direct_p99_exceeds_twice_the_floor_is_discarded() -> None:
    points = core.with_added(sweep({1: 22.0, 4: 30.0, 64: 44.0, 256: 44.5}))
    assert core.direct_floor(points) == 22.0
    assert core.discarded_clients(points) == {256}           # 44.0 is exactly 2x: kept
    assert all(p.discarded == (p.clients == 256) for p in points)
    assert core.find(points, "llmroute", 256) is None
    assert core.find(points, "llmroute", 64) is by(points, "llmroute", 64)
    assert core.discarded_clients(points, factor=1.3) == {4, 64, 256}


def test_without_a_1_client_floor_nothing_is_discarded() -> None:
    assert core.discarded_clients(sweep({4: 22.0, 64: 90.0})) == set()
    failed_floor = [pt("direct", 1, 20.0, 22.0, errors=1), pt("direct", 64, 20.0, 90.0)]
    assert core.direct_floor(failed_floor) is None
    assert core.discarded_clients(failed_floor) == set()


def test_ttft_added_against_direct_streams() -> None:
    ttft = core.ttft_with_added([TtftPoint("direct", 16, 800, 0, 21.0, 25.0),
                                 TtftPoint("llmroute", 16, 800, 0, 21.4, 26.5),
                                 TtftPoint("litellm", 16, 800, 800, 0.0, 0.0)])
    assert (ttft[1].added_p50_ms, ttft[1].added_p99_ms) == pytest.approx((0.4, 1.5))
    assert ttft[0].added_p50_ms is None and ttft[2].added_p50_ms is None  # every stream failed


def test_targets_are_ratios_against_litellm_on_retained_points() -> None:
    points = core.with_added(sweep({1: 22.0, 64: 40.0}))
    ttft = core.ttft_with_added([TtftPoint("direct", 16, 800, 0, 21.0, 25.0),
                                 TtftPoint("llmroute", 16, 800, 0, 21.4, 26.5)])
    got = {t.name: t for t in core.targets(points, ttft)}
    p99 = got["added p99 at 1 client, ÷ LiteLLM"]
    assert p99.value == pytest.approx(0.1) and p99.met is True
    assert "+1.00 ms" in p99.detail and "+10.00 ms" in p99.detail
    assert got["added p50 at 1 client, ÷ LiteLLM"].met is False  # 1 / 10 > 0.05
    tput = got["throughput at 64 clients, × LiteLLM"]
    assert tput.value == pytest.approx(4.8) and tput.met is False
    cpu = got["llmroute CPU per request at 64 clients (ms)"]
    assert cpu.value == pytest.approx(0.5) and cpu.met is False
    assert got["streaming TTFT added p50 at 16 clients (ms)"].value == pytest.approx(0.4)


def test_targets_are_not_computed_from_discarded_or_meaningless_points() -> None:
    points = core.with_added(sweep({1: 22.0, 64: 60.0}))     # 64 discarded
    got = {t.name: t for t in core.targets(points, [])}
    assert got["throughput at 64 clients, × LiteLLM"].value is None
    assert got["throughput at 64 clients, × LiteLLM"].met is None
    assert got["llmroute CPU per request at 64 clients (ms)"].value is None
    assert got["streaming TTFT added p50 at 16 clients (ms)"].met is None
    assert core.ratio(0.5, -0.2) is None and core.ratio(0.5, 0.0) is None and core.ratio(None, 1.0) is None


def test_unexpected_upstream_calls() -> None:
    assert not core.unexpected_calls(pt("llmroute", 64, 1, 1, calls=1.0))
    assert not core.unexpected_calls(pt("llmroute", 64, 1, 1, calls=(1000 + 128) / 1000))  # in flight
    assert core.unexpected_calls(pt("llmroute", 64, 1, 1, calls=0.5))    # a cache answered half
    assert core.unexpected_calls(pt("llmroute", 1, 1, 1, calls=2.0))     # retries
    assert not core.unexpected_calls(pt("llmroute", 1, 1, 1, calls=None))


def test_the_rendered_report_marks_discarded_points_and_keeps_the_published_table() -> None:
    points = core.with_added(sweep({1: 22.0, 256: 50.0}))
    points.append(pt("llmroute", 1, 1, 1, calls=0.5))
    ttft = core.ttft_with_added([TtftPoint("direct", 16, 800, 0, 21.0, 25.0)])
    text = table.markdown(points, ttft, core.targets(points, ttft), core.direct_floor(points),
                          {"date": "2026-12-06", "loadavg_start": "(3.1, 2.9, 2.5)"})
    rows = [ln for ln in text.splitlines() if ln.startswith("| ")]
    discarded = [r for r in rows if "DISCARDED" in r]
    assert len(discarded) == 3 and all("| 256 |" in r for r in discarded)
    assert "2 × its 1-client floor (22.00 ms)" in discarded[0]
    assert "| llmroute | 1 | 1,000 | 48 | 21.00 | 23.00 | +1.00 | +1.00 | 0.500 | 0.00 |  |" in rows
    assert any("0.50 upstream calls per request" in r for r in rows)
    silent = table.points_table([Point("litellm", 64, 0, 0.0, 0.0, 0.0)], 22.0)
    assert "| litellm | 64 | 0 | 0 | 0.00 | 0.00 | n/a | n/a | n/a | 0.00 | no request completed" in silent
    assert "- loadavg_start: (3.1, 2.9, 2.5)" in text
    assert "| litellm-rust | 1 | 21.98 | 22.87 | +0.89 | 46 | 45 |" in rows
    assert "| bifrost | 2.66 | 8.29 | +0.47 | +0.35 |" in rows
    assert text.index("This run: non-streaming") < text.index("Published")


def test_the_published_rows_are_consistent() -> None:
    for p in table.PUBLISHED:
        assert p.gateway_p99_ms - p.direct_p99_ms == pytest.approx(p.added_p99_ms, abs=0.011)
    directs = {p.clients: p.direct_p99_ms for p in table.PUBLISHED}
    assert all(v <= 2 * directs[1] for v in directs.values())  # every published point was retained


def test_the_mock_answers_the_bench_s_40_tokens_when_asked() -> None:
    import json

    body = json.loads(fast_upstream._completion_body(40))
    assert body["choices"][0]["message"]["content"] == "token " * 40
    assert body["usage"] == {"prompt_tokens": 14, "completion_tokens": 40, "total_tokens": 54}
    default = json.loads(fast_upstream._completion_body())
    assert default["choices"][0]["message"]["content"] == "4. Two plus two is four."
    assert default["usage"]["completion_tokens"] == 9
    head, _, payload = fast_upstream._completion_response(40).partition(b"\r\n\r\n")
    assert f"Content-Length: {len(payload)}".encode() in head

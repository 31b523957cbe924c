"""bench/gateway/targets.py, profile_parts.py and targets_view.py (issue 17): the verdict from one
run's rows — each target met or not, the goal in absolute terms of the run, the split of a miss into
the floor and llmroute's own work, the parts profile, and run.py's `--targets` on a saved JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rich.console import Console

GATEWAY_BENCH = str(Path(__file__).resolve().parents[2] / "bench" / "gateway")
sys.path.insert(0, GATEWAY_BENCH)
try:
    import profile_parts as pp
    import run
    import targets as tg
    import targets_view as tv
    from report import GatewayInfo, Row, compare, to_json
finally:
    sys.path.remove(GATEWAY_BENCH)


def row(gateway: str, scenario: str, *, rps: float = 1000.0, p50: float = 1.0, p99: float = 2.0,
        cpu: float = 0.5) -> Row:
    kind = "stream" if scenario.startswith("stream") else "wrk"
    conc = int(scenario.rsplit("=", 1)[1])
    return Row(gateway, scenario, kind, 0.0, conc, requests=1000, rps=rps, p50_ms=p50, p99_ms=p99,
               cpu_ms_per_req=cpu)


def run_rows(*, litellm: bool = True, floor: bool = True, fast: bool = False) -> list[Row]:
    """upstream, floor-canned, floor, llmroute, litellm at 1 and 64 clients and one stream, shaped
    like session 13's run; `fast`: an llmroute that meets every target."""
    rows = [row("upstream", "0ms c=1", p50=0.1, p99=0.3), row("upstream", "0ms c=64", rps=20000),
            row("upstream", "stream c=1", p50=1.0)]
    if floor:
        rows += [row("floor-canned", "0ms c=1", p50=0.2, p99=0.4, cpu=0.05),
                 row("floor-canned", "0ms c=64", rps=19000, cpu=0.05),
                 row("floor", "0ms c=1", p50=0.3, p99=0.5, cpu=0.1),
                 row("floor", "0ms c=64", rps=10000, cpu=0.1),
                 row("floor", "stream c=1", p50=1.2)]
    if fast:
        rows += [row("llmroute", "0ms c=1", p50=0.5, p99=1.3, cpu=0.15),
                 row("llmroute", "0ms c=64", rps=4000, cpu=0.15),
                 row("llmroute", "stream c=1", p50=1.4)]
    else:  # added p50 0.7 ms, p99 3.3 ms, TTFT +0.8 ms; CPU 0.6 ms at 1,500 req/s
        rows += [row("llmroute", "0ms c=1", p50=0.8, p99=3.6, cpu=0.8),
                 row("llmroute", "0ms c=64", rps=1500, cpu=0.6),
                 row("llmroute", "stream c=1", p50=1.8, cpu=1.0)]
    if litellm:  # added p50 12.9 ms, p99 79.3 ms; 100 req/s at 10 ms CPU
        rows += [row("litellm", "0ms c=1", p50=13.0, p99=79.6, cpu=12.0),
                 row("litellm", "0ms c=64", rps=100, cpu=10.0),
                 row("litellm", "stream c=1", p50=13.0)]
    compare(rows)
    return rows


def by_target(rows: list[Row], cores: int = 2) -> dict[str, tg.Verdict]:
    return {v.target.split(" ")[0] + " " + v.target.split(" ")[1]: v
            for v in tg.verdicts(rows, {}, cores)}


def test_every_target_met_when_llmroute_is_fast() -> None:
    got = tg.verdicts(run_rows(fast=True), {}, 2)
    status = {v.target: v.status for v in got}
    assert status["added p99 at 1 client ≤ 0.12 × LiteLLM's"] == "met"
    assert status["added p50 at 1 client ≤ 0.05 × LiteLLM's"] == "met"
    assert status["throughput at 64 clients, one worker ≥ 30× LiteLLM's"] == "met"
    assert status["CPU per request ≤ 0.2 ms"] == "met"
    assert status["TTFT added p50 ≤ 0.5 ms"] == "met"
    assert all(v.split is None for v in got)


def test_misses_are_split_into_floor_and_own_work_with_the_factor() -> None:
    v = by_target(run_rows())
    p50 = v["added p50"]
    assert p50.status == "not met"
    assert p50.goal == pytest.approx(0.05 * 12.9)  # absolute goal from this run's LiteLLM
    assert p50.measured == pytest.approx(0.7)
    assert p50.split is not None
    assert p50.split.floor_canned == pytest.approx(0.1)
    assert p50.split.floor == pytest.approx(0.2)
    assert p50.split.own == pytest.approx(0.5)
    assert p50.split.own_goal == pytest.approx(0.645 - 0.2)
    assert p50.split.factor == pytest.approx(0.445 / 0.5)
    tput = v["throughput at"]
    assert tput.status == "not met" and tput.goal == pytest.approx(3000)
    assert "≤ 0.300 ms per request at this run's 0.90 cores busy" in tput.goal_text
    assert tput.split is not None  # CPU that gives 3,000 req/s at today's utilisation: 0.6 * 1500 / 3000
    assert tput.split.own == pytest.approx(0.5)
    assert tput.split.own_goal == pytest.approx(0.3 - 0.1)
    assert tput.split.factor == pytest.approx(0.4)
    cpu = v["CPU per"]
    assert cpu.status == "not met" and cpu.measured == pytest.approx(0.6)
    assert cpu.split is not None and cpu.split.factor == pytest.approx(0.1 / 0.5)
    assert v["added p99"].status == "met"  # 3.3 ≤ 0.12 × 79.3


def test_the_floor_alone_over_the_goal_is_said_so() -> None:
    rows = run_rows()
    next(r for r in rows if r.gateway == "floor" and r.scenario == "stream c=1").p50_ms = 1.55
    compare(rows)
    t = by_target(rows)["TTFT added"]
    assert t.status == "not met" and t.split is not None
    assert t.split.floor_alone_misses and t.split.factor == 0.0
    assert "no cut in llmroute's own work" in t.split.note
    assert tv.split_text(t.split, t.unit) == ("floor (+ upstream client) 0.550, llmroute's own 0.250 ms "
                                              f"[{t.split.note}]")


def test_a_negative_floor_latency_is_counted_as_zero() -> None:
    rows = run_rows()
    next(r for r in rows if r.gateway == "floor" and r.scenario == "0ms c=1").p50_ms = 0.05
    compare(rows)
    p50 = by_target(rows)["added p50"]
    assert p50.split is not None and p50.split.floor == pytest.approx(-0.05)
    assert p50.split.own == pytest.approx(0.7) and "noise" in p50.split.note


def test_without_litellm_the_ratio_targets_are_not_decided() -> None:
    v = by_target(run_rows(litellm=False))
    for name in ("added p99", "added p50", "throughput at"):
        assert v[name].status == "n/a" and v[name].goal is None
        assert "litellm" in v[name].why
    assert v["added p50"].measured == pytest.approx(0.7)
    assert v["CPU per"].status == "not met"  # absolute targets still decided
    assert v["TTFT added"].status == "not met"


def test_litellm_below_its_upstream_is_noise_not_a_ratio() -> None:
    rows = run_rows()
    next(r for r in rows if r.gateway == "upstream" and r.scenario == "0ms c=1").p99_ms = 90.0
    compare(rows)
    p99 = by_target(rows)["added p99"]
    assert p99.status == "n/a" and p99.goal is None
    assert "LiteLLM's added p99 is -10.40 ms" in p99.why and "90.00 ms" in p99.why


def test_a_canned_stream_is_not_part_of_the_ttft_split() -> None:
    rows = run_rows()
    rows.append(row("floor-canned", "stream c=1", p50=0.2))
    compare(rows)
    t = by_target(rows)["TTFT added"]
    assert t.split is not None and t.split.floor_canned is None and t.split.floor == pytest.approx(0.2)


def test_disturbed_rows_mark_the_verdict_indicative() -> None:
    rows = run_rows()
    rows[0].disturbed, rows[0].foreign_cores = True, 1.63
    console = Console(record=True, width=700)
    tv.print_verdict(console, rows, {}, 2)
    text = console.export_text()
    assert "1 DISTURBED row(s) of 14" in text and "1.63 cores" in text


def test_without_the_floor_a_miss_says_what_to_add() -> None:
    v = by_target(run_rows(floor=False))
    cpu = v["CPU per"]
    assert cpu.status == "not met" and cpu.split is not None
    assert cpu.split.floor is None and cpu.split.own is None and cpu.split.factor is None
    assert "--only" in cpu.split.note


def test_workers_line() -> None:
    rows = run_rows()
    w = by_target(rows, cores=2)["--workers N"]
    assert w.status == "not measurable" and "< 3 cores (this machine: 2)" in w.why
    assert by_target(rows, cores=16)["--workers N"].status == "n/a"
    rows.append(row("llmroute-w2", "0ms c=64", rps=2700, cpu=0.6))
    w16 = {v.target: v for v in tg.verdicts(rows, {"llmroute-w2": GatewayInfo("llmroute-w2", cpus="0-15")},
                                             16)}["--workers N scaling (1, 2, 4, 8)"]
    assert w16.status == "recorded" and w16.measured == pytest.approx(1.8)
    assert "up to 8 measurable" in w16.why


def test_per_chunk_is_not_decided_by_one_tree() -> None:
    v = by_target(run_rows())["per-chunk CPU"]
    assert v.status == "n/a" and "ab.py" in v.why and v.measured is None
    assert "CPU per stream 1.00 ms over 1000 streams" in v.why


def test_failed_rows_are_not_used() -> None:
    rows = run_rows()
    for r in rows:
        if r.gateway == "llmroute":
            r.non2xx = 5
    assert {v.status for v in tg.verdicts(rows, {}, 2)} <= {"n/a", "not measurable"}


PROFILE = pp.Profile(1000.0, {pp.LEDGER: 250.0, pp.DECISION: 300.0, "entry": 80.0, "auth": 20.0})


def test_profile_shares_and_other() -> None:
    shares = {name: (value, share) for name, value, share in PROFILE.shares()}
    assert PROFILE.own == 1250.0
    assert shares[pp.OTHER][0] == pytest.approx(600.0)  # 1000 − 300 − 80 − 20 (the ledger is outside)
    assert sum(s for _, s in shares.values()) == pytest.approx(1.0)
    assert [n for n, _, _ in PROFILE.shares()][:2] == [pp.OTHER, pp.DECISION]
    assert pp.Profile(10.0, {"decision": 50.0}).shares()[1] == (pp.OTHER, 0.0, 0.0)


def test_needed_parts_takes_the_fewest_largest() -> None:
    cut, chosen = pp.needed_parts(PROFILE, 0.4)
    assert cut == pytest.approx(0.6)
    assert [n for n, _ in chosen] == [pp.OTHER, pp.DECISION]  # 48% + 24% ≥ 60%
    cut, chosen = pp.needed_parts(PROFILE, 0.9)
    assert [n for n, _ in chosen] == [pp.OTHER]
    assert pp.needed_parts(PROFILE, -1.0)[0] == 1.0


def test_profile_json_round_trip_and_refusal(tmp_path: Path) -> None:
    f = tmp_path / "parts.json"
    f.write_text(json.dumps({"meta": {"tree": "src"}, "path": 1000, "parts": {"decision": 300}}))
    assert pp.load(f) == pp.Profile(1000.0, {"decision": 300.0}, {"tree": "src"})
    with pytest.raises(ValueError):
        pp.from_json({"parts": {}})


def test_rendered_verdict_names_the_floor_own_work_and_parts(tmp_path: Path) -> None:
    f = tmp_path / "parts.json"
    f.write_text(json.dumps({"path": PROFILE.path, "parts": PROFILE.parts}))
    console = Console(record=True, width=700)
    tv.print_verdict(console, run_rows(), {}, 2, f)
    text = console.export_text()
    assert "NOT met" in text and "met" in text
    assert "own work must fall to 0.200 ms CPU (0.40× today's)" in text
    assert "own work must lose 60%: no single part is that large; the fewest that add up to it: " \
        "orchestration/other 48% + decision 24% = 72%" in text
    assert "not measurable with < 3 cores" in text
    assert "share of own" in text


def test_closing_text_one_part_or_none() -> None:
    rows = run_rows()
    v = next(v for v in tg.verdicts(rows, {}, 2) if v.target.startswith("throughput"))
    assert v.split is not None
    small = tg.Verdict(v.target, v.source, v.unit, v.measured, v.goal, v.goal_text, v.status,
                       tg.Split(0.05, 0.1, 0.5, 0.4, ""), own_cpu=True)  # 20% to lose
    assert tv.closing_text(small, PROFILE).endswith("orchestration/other alone is 48%")
    floor_over = tg.Verdict(v.target, v.source, v.unit, v.measured, v.goal, v.goal_text, v.status,
                            tg.Split(0.05, 0.1, 0.5, -0.1, ""), own_cpu=True)
    assert "the floor alone is over the goal" in tv.closing_text(floor_over, PROFILE)


def test_aigw_targets_join_the_table(tmp_path: Path) -> None:
    points = [{"gateway": g, "clients": c, "requests": 100, "rps": rps, "p50_ms": p50, "p99_ms": p99,
               "cpu_ms_per_req": 0.5}
              for g, c, rps, p50, p99 in [("direct", 1, 48, 20.5, 22.7), ("llmroute", 1, 45, 21.9, 22.8),
                                          ("litellm", 1, 29, 34.8, 52.4), ("direct", 64, 2862, 22.1, 26.5),
                                          ("llmroute", 64, 1642, 36.2, 67.8), ("litellm", 64, 79, 499, 2100)]]
    got = tv.aigw_verdicts({"points": points, "ttft": []})
    assert all(v.source == "aigw.py" for v in got)
    by = {v.target: v for v in got}
    assert by["added p99 at 1 client, ÷ LiteLLM"].status == "met"
    assert by["added p50 at 1 client, ÷ LiteLLM"].status == "not met"
    assert by["throughput at 64 clients, × LiteLLM"].measured == pytest.approx(1642 / 79)


def test_run_py_targets_from_a_saved_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_rows()
    infos = {g: GatewayInfo(g, status="ok") for g in ("upstream", "floor", "floor-canned", "llmroute")}
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(to_json(rows, infos, {"cpus": 2, "date": "x", "command": "y"})))
    opts = run.parse_args(["--from-json", str(saved), "--targets"])
    assert opts.targets and opts.profile is None
    assert run.parse_args(["--from-json", str(saved), "--profile", str(saved)]).targets
    assert run.main(["--from-json", str(saved), "--targets"]) == 0
    out = capsys.readouterr().out
    assert "Issue 17 targets on this run" in out and "NOT met" in out

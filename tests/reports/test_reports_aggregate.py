"""Report numbers over hand-built ledger entries; every expected value is worked by hand in a comment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from helpers import REPORT_BASE, hand_worked_report, report_entry
from llmroute.reports.aggregate import build_report, group_by, nearest_rank, summarise
from llmroute.reports.page import render_html
from llmroute.reports.render import fmt_pct, fmt_usd, headline, report_dict
from llmroute.reports.window import parse_when

BASE = REPORT_BASE
D = Decimal
entry = report_entry
fixture = hand_worked_report


def test_totals_match_the_hand_worked_numbers() -> None:
    s = summarise("all", fixture())
    assert (s.requests, s.errors) == (6, 1)
    # judged: 1, 2, 3, 4 (task_success set); successes: 1, 3, 4 → 3/4
    assert (s.judged, s.successes, s.success_rate) == (4, 3, 0.75)
    # priced: 1, 2, 3, 6 → 0.10 + 0.20 + 0.90 + 0.05 = 1.25; no cost: 4 and 5 (not counted as $0);
    # unpriced: 4 only (answered, cost unknown; 5 failed without a paid call: issue 16)
    assert s.cost_usd == D("1.25") and str(s.cost_usd) == "1.25"
    assert (s.priced, s.unpriced) == (4, 1)
    # compared (both prices): 1, 2, 3 → cost 1.20, baseline 1.00 + 1.00 + 0.90 = 2.90
    assert (s.compared, s.compared_cost_usd, s.baseline_cost_usd) == (3, D("1.20"), D("2.90"))
    # savings 2.90 - 1.20 = 1.70; 1.70 / 2.90 = 58.620689...% → 58.62
    assert s.savings_usd == D("1.70") and s.savings_pct == D("58.62")
    # latencies sorted: 0.2 0.3 0.4 1.5 2.0 5.0; p50 k = ceil(3.0) = 3 → 0.4; p95 k = ceil(5.7) = 6 → 5.0
    assert (s.latency_p50_s, s.latency_p95_s) == (0.4, 5.0)
    # ratings 4, 2, 5, 3 → 14 / 4 = 3.5
    assert (s.rated, s.mean_rating) == (4, 3.5)
    # priced and rated: 1, 2, 3 → $1.20 over 4 + 2 + 5 = 11 points = 0.10909… (28 digits)
    assert s.cost_per_quality_point_usd == D("0.1090909090909090909090909091")
    # priced and judged: 1, 2, 3 → $1.20 over 2 successes (1 and 3) = 0.60
    assert s.cost_per_success_usd == D("0.60")
    # mix: small 1, 2, 6; big 3, 4; no model 5 → 3/6, 2/6, 1/6
    assert s.model_mix == (("m/small", 3), ("m/big", 2), ("(none)", 1))
    assert s.model_shares() == {"m/small": 0.5, "m/big": 2 / 6, "(none)": 1 / 6}


def test_grouped_by_model() -> None:
    small, big, none = group_by(fixture(), "model")  # by requests: 3, 2, 1
    assert (small.label, big.label, none.label) == ("m/small", "m/big", "(none)")
    # small: 1, 2, 6 → cost 0.35; compared 1, 2: baseline 2.00 - 0.30 = 1.70 → 85%
    assert (small.cost_usd, small.compared, small.savings_usd, small.savings_pct) == (
        D("0.35"), 2, D("1.70"), D("85.00"))
    # latencies 0.2 0.3 0.4: p50 k = ceil(1.5) = 2 → 0.3; p95 k = ceil(2.85) = 3 → 0.4
    assert (small.latency_p50_s, small.latency_p95_s) == (0.3, 0.4)
    assert small.cost_per_success_usd == D("0.30")  # $0.30 over 1 success (entry 1)
    # big: 3 priced (0.90), 4 unpriced; compared only 3: 0.90 vs 0.90 → 0%
    assert (big.cost_usd, big.unpriced, big.savings_pct) == (D("0.90"), 1, D("0.00"))
    assert big.success_rate == 1.0 and big.mean_rating == 4.0  # (5 + 3) / 2
    # the failed request: nothing priced (and no paid call: not unpriced), no baseline → no
    # percentage, nothing per success
    assert (none.priced, none.unpriced, none.savings_pct, none.cost_per_success_usd) == (0, 0, None, None)
    assert none.success_rate is None and none.mean_rating is None


def test_grouped_by_day_key_tier_and_policy() -> None:
    day1, day2 = group_by(fixture(), "day")
    # 2025-01-01: 1 (12:00), 2 (13:00); 2025-01-02: 3 (00:30), 4, 5, 6 → 0.90 + 0.05
    assert (day1.label, day1.requests, day1.cost_usd) == ("2025-01-01", 2, D("0.30"))
    assert (day2.label, day2.requests, day2.cost_usd) == ("2025-01-02", 4, D("0.95"))
    assert [(g.label, g.requests) for g in group_by(fixture(), "key")] == [
        ("team-a", 3), ("team-b", 2), ("(none)", 1)]
    assert [(g.label, g.requests) for g in group_by(fixture(), "tier")] == [
        ("simple", 4), ("complex", 2)]
    assert [(g.label, g.requests) for g in group_by(fixture(), "policy")] == [("default", 6)]
    with pytest.raises(ValueError, match="cannot group by 'colour'"):
        group_by(fixture(), "colour")


def test_day_is_the_utc_date() -> None:
    late = entry(1, 0, ts=datetime(2025, 3, 1, 23, 30, tzinfo=UTC) + timedelta(hours=1))
    assert group_by([late], "day")[0].label == "2025-03-02"


def test_money_is_exact_decimal() -> None:
    # ten times 0.1 is exactly 1.0 (as floats it would be 0.9999999999999999)
    tenths = [entry(i, 0, cost_usd=D("0.1"), baseline_cost_usd=D("0.3")) for i in range(10)]
    s = summarise("x", tenths)
    assert s.cost_usd == D("1.0") and s.baseline_cost_usd == D("3.0") and s.savings_pct == D("66.67")
    tiny = summarise("x", [entry(i, 0, cost_usd=D("0.0000001234")) for i in range(3)])
    assert report_dict(build_report(tenths), {})["total"]["cost_usd"] == "1.0"
    assert str(tiny.cost_usd) == "3.702E-7" and fmt_usd(tiny.cost_usd) == "$0.0000003702"


def test_unpriced_requests_are_never_zero_dollars() -> None:
    s = summarise("x", [entry(1, 0, cost_usd=None), entry(2, 0, cost_usd=None)])
    assert (s.priced, s.unpriced, s.compared) == (0, 2, 0)
    assert s.cost_per_quality_point_usd is None and s.cost_per_success_usd is None
    text = headline(build_report([entry(1, 0)]))
    assert text == "This traffic (1 request) is unpriced: no cost was recorded."


def test_failures_without_a_paid_call_are_not_unpriced() -> None:
    failed = [entry(1, 0, status="error", http_status=502, model=None),
              entry(2, 0, status="error", http_status=429, model=None)]
    assert summarise("x", failed).unpriced == 0
    assert headline(build_report(failed)) == "This traffic (2 requests) made no paid call: it cost nothing."
    # the upstream reported usage before the failure: a paid call whose cost is unknown
    paid = entry(3, 0, status="error", http_status=502, model=None, input_tokens=10)
    assert summarise("x", [*failed, paid]).unpriced == 1
    assert headline(build_report([*failed, paid])) == (
        "This traffic (3 requests) is unpriced: no cost was recorded.")


@pytest.mark.parametrize(("p", "expected"), [(5, 15), (30, 20), (40, 20), (50, 35), (100, 50)])
def test_nearest_rank_percentile(p: int, expected: float) -> None:
    # n = 5: k = ceil(p * 5 / 100): p5 → 1, p30 → 2 (1.5 up), p40 → 2, p50 → 3 (2.5 up), p100 → 5
    assert nearest_rank([50, 15, 40, 20, 35], p) == expected


def test_nearest_rank_edges() -> None:
    assert nearest_rank([], 50) is None
    assert nearest_rank([7.0], 95) == 7.0
    assert nearest_rank(list(range(1, 21)), 95) == 19  # k = ceil(19.0) = 19
    with pytest.raises(ValueError):
        nearest_rank([1.0], 0)


def test_headline_as_in_the_brief() -> None:
    # $4,500 spent where the baseline would have cost $15,000: 10,500 / 15,000 = 70%
    entries = [entry(1, 0, cost_usd=D("4500"), baseline_cost_usd=D("15000"), baseline_model="b/top")]
    assert headline(build_report(entries)) == (
        "This traffic cost $4,500.00; always using b/top would have cost $15,000.00 (70% saved).")


def test_the_llm_routers_cost_is_told_apart() -> None:
    entries = [entry(1, 0, cost_usd=D("4500"), routing_cost_usd=D("12.5"),
                     baseline_cost_usd=D("15000"), baseline_model="b/top"),
               entry(2, 0, cost_usd=D("1"), routing_cost_usd=D("0.0000001")),
               entry(3, 0, cost_usd=D("2"))]
    report = build_report(entries)
    assert report.total.routing_cost_usd == D("12.5000001")  # part of cost_usd, summed exactly
    assert report.total.cost_usd == D("4503")
    assert headline(report).startswith(
        "This traffic cost $4,503.00, $12.50 of it routing (the LLM router's calls); on the 1 ")
    assert report_dict(report, {})["total"]["routing_cost_usd"] == "12.5000001"
    assert headline(build_report(entries[2:])) == (
        "This traffic cost $2.00; no baseline price was recorded to compare with.")


def test_headline_names_the_compared_subset_and_unpriced() -> None:
    assert headline(build_report(fixture())) == (
        "This traffic cost $1.25 (plus 1 unpriced request: cost unknown); on the 3 requests priced "
        "both ways "
        "($1.20), always using m/big would have cost $2.90 (58.62% saved).")


def test_headline_when_routing_cost_more_or_has_no_baseline() -> None:
    dearer = [entry(1, 0, cost_usd=D("2"), baseline_cost_usd=D("1"), baseline_model="b")]
    assert build_report(dearer).total.savings_pct == D("-100.00")
    assert headline(build_report(dearer)).endswith("would have cost $1.00 (100% more).")
    alone = build_report([entry(1, 0, cost_usd=D("2"))], baseline_fallback="cfg/base")
    assert alone.baseline == "cfg/base"
    assert headline(alone) == ("This traffic cost $2.00; no baseline price was recorded to "
                               "compare with.")
    free = summarise("x", [entry(1, 0, cost_usd=D("0"), baseline_cost_usd=D("0"))])
    assert free.savings_pct is None


def test_formats() -> None:
    assert fmt_usd(D("1234567.891")) == "$1,234,567.89"
    assert fmt_usd(D("0.0000225")) == "$0.000022"  # sub-cent: six decimals, half-even
    assert fmt_usd(D("0.0000235")) == "$0.000024" and fmt_usd(D("0")) == "$0.00"
    assert fmt_usd(D("-3")) == "-$3.00" and fmt_usd(None) == "—"
    assert fmt_pct(D("70.00")) == "70%" and fmt_pct(D("66.70")) == "66.7%" and fmt_pct(None) == "—"


def test_json_view_keeps_money_as_strings() -> None:
    data = report_dict(build_report(fixture(), "day"), {"since": "a", "until": "b"})
    total = data["total"]
    assert (total["cost_usd"], total["baseline_cost_usd"], total["savings_usd"]) == ("1.25", "2.90", "1.70")
    assert total["savings_pct"] == "58.62" and total["cost_per_success_usd"] == "0.60"
    assert [g["label"] for g in data["groups"]] == ["2025-01-01", "2025-01-02"]
    assert data["baseline"] == "m/big" and data["since"] == "a"


def test_html_without_matplotlib_says_so() -> None:
    page = render_html(build_report(fixture()), "six requests", None)
    assert "matplotlib" in page and "58.62% saved" in page and "<td>m/small</td>" in page
    assert "data:image/png" not in page


NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", NOW - timedelta(minutes=30)), ("12h", NOW - timedelta(hours=12)),
    ("7d", NOW - timedelta(days=7)), ("4w", NOW - timedelta(weeks=4)),
    ("2025-01-31", datetime(2025, 1, 31, tzinfo=UTC)),
    ("2025-01-31T12:00:00", datetime(2025, 1, 31, 12, tzinfo=UTC)),  # naive → UTC
    ("2025-01-31T12:00:00+02:00", datetime(2025, 1, 31, 10, tzinfo=UTC)),
    ("2025-01-31T12:00:00Z", datetime(2025, 1, 31, 12, tzinfo=UTC)),
])
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "7x", "", "-3d", "2025-13-01"])
def test_parse_when_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="use a duration like 30m"):
        parse_when(text, NOW)

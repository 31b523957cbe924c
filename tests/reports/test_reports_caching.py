"""The report's caching numbers as people and programs read them: the savings sentence (routing
beside caching), the "Caching" table, the JSON and the HTML block, over the hand-worked
`helpers.hand_worked_caching` (its numbers: tests/ledger/test_ledger_caching.py)."""

from __future__ import annotations

import dataclasses

from helpers import CACHING_SAVINGS, hand_worked_caching, hand_worked_report
from llmroute.reports.aggregate import build_report
from llmroute.reports.caching import CACHE_COLUMNS, cache_row, cache_table, savings_text
from llmroute.reports.page import render_html
from llmroute.reports.render import COLUMNS, headline, report_dict

SAVINGS = CACHING_SAVINGS


def test_the_savings_sentence_tells_routing_and_caching_apart() -> None:
    assert savings_text(build_report(hand_worked_caching())) == SAVINGS
    assert savings_text(build_report(hand_worked_report())) is None  # no cache in that traffic
    # the headline's comparison says the cache's hits are left out of it
    assert headline(build_report(hand_worked_caching())) == (
        "This traffic cost $1.25; on the 3 requests priced both ways and "
        "not served by the response cache ($1.20), always using m/big would have cost $2.90 "
        "(58.62% saved).")
    # a window with caching and no baseline price
    bare = [dataclasses.replace(e, baseline_cost_usd=None) for e in hand_worked_caching()]
    assert (savings_text(build_report(bare)) or "").startswith(
        "Savings: routing not compared (no request priced both ways); $1.00 from caching: ")


def test_the_caching_table_per_model() -> None:
    report = build_report(hand_worked_caching(), "model")
    assert len(CACHE_COLUMNS) < len(COLUMNS)  # its own block; the main table is not wider
    small, big, none = report.groups
    # hits, semantic, misses, bypass, hit rate, cached, written, response cache, prompt, routing
    assert cache_row(small) == ["1", "0", "1", "1", "50.0%", "1,512", "0", "$0.10", "$0.001284",
                                "$1.70"]
    assert cache_row(big) == ["0", "1", "1", "0", "50.0%", "0", "2,048", "$0.90", "-$0.000768",
                              "$0.00"]
    assert cache_row(none) == ["0", "0", "1", "0", "0.0%", "0", "0", "$0.00", "$0.00", "—"]
    assert cache_row(report.total) == ["1", "1", "3", "1", "40.0%", "1,512", "2,048", "$1.00",
                                       "$0.000516", "$1.70"]
    table = cache_table(report)
    assert table is not None and table.row_count == 4
    assert cache_table(build_report(hand_worked_report())) is None


def test_json_carries_every_caching_number_exactly() -> None:
    data = report_dict(build_report(hand_worked_caching(), "policy"), {})
    assert data["total"]["caching"] == {
        "hits": 1, "semantic_hits": 1, "misses": 3, "bypasses": 1, "lookups": 5,
        "hit_rate": 0.4, "exact_hit_rate": 0.2, "semantic_hit_rate": 0.2,
        "cached_tokens": 1512, "cache_write_tokens": 2048,
        "response_cache_saved_usd": "1.00", "prompt_cache_saved_usd": "0.000516",
        "caching_saved_usd": "1.000516", "routing_saved_usd": "1.70"}
    assert data["total"]["savings_usd"] == "1.70" and data["total"]["compared"] == 3
    groups = {g["label"]: g["caching"] for g in data["groups"]}
    assert groups["p-best"]["semantic_hit_rate"] == 0.5
    assert groups["p-best"]["prompt_cache_saved_usd"] == "-0.000768"
    assert groups["(none)"]["hit_rate"] == 0.0
    plain = report_dict(build_report(hand_worked_report()), {})["total"]["caching"]
    assert plain["lookups"] == 0 and plain["hit_rate"] is None


def test_the_html_page_has_a_caching_block() -> None:
    page = render_html(build_report(hand_worked_caching()), "window", None)
    assert "<h2>Caching</h2>" in page
    assert SAVINGS in page.replace("&#x27;", "'")
    assert "<td>40.0%</td>" in page and "<td>-$0.000768</td>" in page
    assert "<h2>Caching</h2>" not in render_html(build_report(hand_worked_report()), "w", None)

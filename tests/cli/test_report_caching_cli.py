"""`llmroute report` on a ledger with caching, run as a user runs it: the savings from routing
beside the savings from caching, the "Caching" table, --json, and --cache-hits (the semantic
cache's answers to judge). The numbers are worked by hand in tests/ledger/test_ledger_caching.py."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import run
from test_report_cli import WINDOW, ledger

from helpers import CACHING_SAVINGS as SAVINGS
from helpers import hand_worked_caching


def _rows(stdout: str) -> dict[str, str]:
    """The table's rows by label, cells joined with `│` (the table has no vertical lines: its
    cells hold no spaces)."""
    lines = stdout.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.strip().startswith("─"))
    cells = [["", *line.split()] for line in lines[rule + 1:] if len(line.split()) > 3]
    return {c[1].strip(): "│".join(c) for c in cells if c[1].strip()}


def test_text_shows_both_savings_and_the_caching_table(tmp_path: Path) -> None:
    config = ledger(tmp_path, hand_worked_caching())
    result = run("report", "-c", str(config), *WINDOW, "--by", "policy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    flat = " ".join(result.stdout.split())
    assert SAVINGS in flat
    assert "caching by policy" in result.stdout
    tables = result.stdout.split("caching by policy")
    caching = _rows(tables[1])
    assert set(caching) == {"p-cheap", "p-best", "(none)", "total"}
    assert [c.strip() for c in caching["total"].split("│")[2:12]] == [
            "1", "1", "3", "1", "40.0%", "1,512", "2,048", "$1.00", "$0.000516", "$1.70"]
    assert [c.strip() for c in caching["p-best"].split("│")[2:12]] == [
        "0", "1", "1", "0", "50.0%", "0", "2,048", "$0.90", "-$0.000768", "$0.00"]


def test_json_has_the_caching_numbers(tmp_path: Path) -> None:
    config = ledger(tmp_path, hand_worked_caching())
    result = run("report", "-c", str(config), *WINDOW, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    total = json.loads(result.stdout)["total"]
    assert total["caching"]["hit_rate"] == 0.4 and total["caching"]["lookups"] == 5
    assert total["caching"]["caching_saved_usd"] == "1.000516"
    assert total["caching"]["routing_saved_usd"] == total["savings_usd"] == "1.70"


def test_cache_hits_lists_the_semantic_answers(tmp_path: Path) -> None:
    config = ledger(tmp_path, hand_worked_caching())
    result = run("report", "-c", str(config), *WINDOW, "--cache-hits", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)["semantic_hits"]
    assert [(h["request_id"], h["similarity"], h["prompt"], h["cached_prompt"], h["answer"])
            for h in hits] == [("r3", 0.97, "Summarise the treaty of Rome, briefly",
                                "Summarise the treaty of Rome", "The treaty...")]
    text = run("report", "-c", str(config), *WINDOW, "--cache-hits", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "semantic cache hits" in text.stdout and "0.970" in text.stdout
    assert "Summarise the treaty of Rome" in text.stdout and "(r4)" in text.stdout
    assert "1 semantic hits." in text.stdout
    none = run("report", "-c", str(config), "--since", "2024-01-01", "--until", "2024-01-02",
               "--cache-hits", cwd=tmp_path)
    assert none.returncode == 0 and "No semantic cache hits" in none.stdout
    bad = run("report", "-c", str(config), "--cache-hits", "--limit", "0", cwd=tmp_path)
    assert bad.returncode != 0

"""`llmroute report` run as a user runs it, over a temporary SQLite ledger."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_cli import run

from llmroute.ledger import LedgerEntry, open_store

BASE = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
WINDOW = ("--since", "2025-01-01", "--until", "2025-01-03")


def entry(n: int, hours: float, **values: Any) -> LedgerEntry:
    defaults: dict[str, Any] = {"request_id": f"r{n}", "ts": BASE + timedelta(hours=hours),
                                "status": "ok", "http_status": 200, "model": "m/small",
                                "tier": "simple", "policy": "default", "key_name": "team-a",
                                "baseline_model": "m/big"}
    return LedgerEntry(**{**defaults, **values})


def entries() -> list[LedgerEntry]:
    """2025-01-01: two small requests; 2025-01-02: one big, one unpriced big, one failure."""
    big = {"model": "m/big", "tier": "complex", "key_name": "team-b"}
    return [
        entry(1, 0, cost_usd=Decimal("1000"), baseline_cost_usd=Decimal("5000"), latency_s=0.2,
              user_rating=4, task_success=True),
        entry(2, 1, cost_usd=Decimal("500"), baseline_cost_usd=Decimal("5000"), latency_s=0.4,
              user_rating=2, task_success=False),
        entry(3, 12.5, **big, cost_usd=Decimal("3000"), baseline_cost_usd=Decimal("5000"),
              latency_s=1.5, user_rating=5, task_success=True),
        entry(4, 13, **big, latency_s=2.0),  # unpriced
        entry(5, 14, status="error", http_status=502, model=None, latency_s=5.0),
    ]
    # priced 1000 + 500 + 3000 = 4,500 against 3 x 5,000 = 15,000: 10,500 / 15,000 = 70% saved


def ledger(tmp_path: Path, rows: list[LedgerEntry]) -> Path:
    """A config whose ledger is a new SQLite file holding `rows`."""
    db = tmp_path / "ledger.db"

    async def fill() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.migrate()
        if rows:
            await store.write(rows)
        await store.close()

    asyncio.run(fill())
    config = tmp_path / "llmroute.yaml"
    config.write_text(f"ledger: {{url: 'sqlite:///{db}'}}\n")
    return config


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return ledger(tmp_path, entries())


# One unpriced request (r4: answered, cost unknown); the failure made no paid call (issue 16).
HEADLINE = ("This traffic cost $4,500.00 (plus 1 unpriced request: cost unknown); always using m/big "
            "would have cost $15,000.00 (70% saved).")


def test_table_shows_headline_groups_and_total(config: Path, tmp_path: Path) -> None:
    result = run("report", "-c", str(config), *WINDOW, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 requests" in result.stdout and HEADLINE in result.stdout
    lines = result.stdout.split("by model\n", 1)[1].splitlines()
    rule = next(i for i, line in enumerate(lines) if "───" in line)
    rows = {line.split()[0]: line for line in lines[rule + 1:] if line.strip()}
    assert set(rows) == {"m/small", "m/big", "(none)", "total"}
    assert "$1,500.00" in rows["m/small"] and "85%" in rows["m/small"]  # 8,500 / 10,000 saved
    assert "$3,000.00" in rows["m/big"] and "40%" in rows["m/big"]  # 3,000 vs 5,000
    assert "$4,500.00" in rows["total"] and "$15,000.00" in rows["total"]


def test_json_has_the_same_numbers_with_money_as_strings(config: Path, tmp_path: Path) -> None:
    result = run("report", "-c", str(config), *WINDOW, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    total = data["total"]
    assert data["headline"] == HEADLINE and data["by"] == "model"
    assert (total["requests"], total["errors"], total["unpriced"]) == (5, 1, 1)
    assert (total["cost_usd"], total["baseline_cost_usd"]) == ("4500", "15000")
    assert (total["savings_usd"], total["savings_pct"]) == ("10500", "70.00")
    assert total["success_rate"] == 2 / 3  # judged 1, 2, 3; successes 1, 3
    assert total["latency_p50_s"] == 1.5 and total["latency_p95_s"] == 5.0  # k = 3 and k = 5 of 5
    assert total["mean_rating"] == 11 / 3
    assert total["cost_per_quality_point_usd"] == "409.0909090909090909090909091"  # 4,500 / 11
    assert total["cost_per_success_usd"] == "2250"  # 4,500 / 2
    assert [(m["model"], m["requests"]) for m in total["model_mix"]] == [
        ("m/big", 2), ("m/small", 2), ("(none)", 1)]
    assert [g["label"] for g in data["groups"]] == ["m/big", "m/small", "(none)"]


def test_by_day(config: Path, tmp_path: Path) -> None:
    result = run("report", "-c", str(config), *WINDOW, "--by", "day", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    days = {g["label"]: g for g in json.loads(result.stdout)["groups"]}
    assert list(days) == ["2025-01-01", "2025-01-02"]
    assert (days["2025-01-01"]["requests"], days["2025-01-01"]["cost_usd"]) == (2, "1500")
    assert (days["2025-01-02"]["requests"], days["2025-01-02"]["cost_usd"]) == (3, "3000")
    table = run("report", "-c", str(config), *WINDOW, "--by", "day", cwd=tmp_path)
    assert "2025-01-01" in table.stdout and "by day" in table.stdout


def test_by_explored_separates_learning_onlines_exploration(tmp_path: Path) -> None:
    rows = [*entries(), entry(6, 2, cost_usd=Decimal("200"), explored=True, latent="AAA8"),
            entry(7, 3, cost_usd=Decimal("300"), explored=True, task_success=False)]
    result = run("report", "--by", "explored", "--json", *WINDOW, "-c", str(ledger(tmp_path, rows)))
    assert result.returncode == 0, result.stderr
    groups = {g["label"]: g for g in json.loads(result.stdout)["groups"]}
    assert set(groups) == {"explored", "routed"}
    assert (groups["explored"]["requests"], groups["routed"]["requests"]) == (2, 5)
    assert groups["explored"]["cost_usd"] == "500"


def test_html_page_is_self_contained_with_plots(config: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = run("report", "-c", str(config), *WINDOW, "--html", str(page), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and HEADLINE in text
    assert "<td>m/small</td>" in text and "<td>$4,500.00</td>" in text
    assert text.count('src="data:image/png;base64,') == 3  # by day, model mix, cost vs quality
    assert "http://" not in text and "https://" not in text


def test_html_plots_the_ledger_and_the_labs_frontier(config: Path, tmp_path: Path) -> None:
    from llmroute.reports.plane import LabFrontier, PlanePoint

    lab = LabFrontier("held-out prompts", "m/big", (
        PlanePoint("m/big", "lab-model", 0.005, 0.9, 10, "always this model"),
        PlanePoint("m/small", "lab-model", 0.001, 0.6, 10, "always this model"),
        PlanePoint("c@1", "lab-curve", 0.001, 0.6, 10), PlanePoint("c@2", "lab-curve", 0.005, 0.9, 10),
        PlanePoint("default (held-out half)", "lab-policy", 0.002, 0.85, 5, "half",
                   (0.005, 0.9))))
    frontier = tmp_path / "frontier.json"
    lab.save(frontier)
    page = tmp_path / "report.html"
    result = run("report", "-c", str(config), *WINDOW, "--html", str(page), "--frontier",
                 str(frontier), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = page.read_text(encoding="utf-8")
    assert text.count('src="data:image/png;base64,') == 3
    assert "the lab&#x27;s frontier" in text or "the lab's frontier" in text
    # every point says what it is measured on: the ledger's per model and per policy, the lab's
    assert "<td>ledger: each model on the requests it served</td>" in text
    assert "<td>policy default</td><td>ledger: routed traffic (per policy / arm)</td>" in text
    assert "<td>lab: always one model (held-out prompts)</td>" in text
    assert "94.4% at 40.0%" in text  # the lab policy's share of m/big's quality and cost
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    refused = run("report", "-c", str(config), *WINDOW, "--html", str(page), "--frontier",
                  str(bad), cwd=tmp_path)
    assert refused.returncode != 0 and "cannot read the frontier" in refused.stderr


def test_bad_since_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    result = run("report", "-c", str(config), "--since", "last tuesday", cwd=tmp_path)
    assert result.returncode == 1
    assert "cannot read 'last tuesday' as a time" in result.stderr
    assert "Traceback" not in result.stderr
    backwards = run("report", "-c", str(config), "--since", "2025-01-03", "--until", "2025-01-01",
                    cwd=tmp_path)
    assert backwards.returncode == 1 and "must be before --until" in backwards.stderr
    bad_by = run("report", "-c", str(config), "--by", "colour", cwd=tmp_path)
    assert bad_by.returncode == 1 and "--by must be one of" in bad_by.stderr


def test_empty_window_and_empty_or_missing_ledger_are_friendly(config: Path, tmp_path: Path) -> None:
    recent = run("report", "-c", str(config), cwd=tmp_path)  # default 7d: the 2025 rows are older
    assert recent.returncode == 0 and "No requests in the ledger" in recent.stdout
    (tmp_path / "empty").mkdir()
    empty = ledger(tmp_path / "empty", [])
    result = run("report", "-c", str(empty), "--json", cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["requests"] == 0
    missing = tmp_path / "missing.yaml"
    missing.write_text(f"ledger: {{url: 'sqlite:///{tmp_path / 'nope.db'}'}}\n")
    nothing = run("report", "-c", str(missing), cwd=tmp_path)
    assert nothing.returncode == 0 and "No ledger yet" in nothing.stdout
    assert not (tmp_path / "nope.db").exists()

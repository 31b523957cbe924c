"""`llmroute demo` end to end (a subprocess), checked against the ledger it wrote; and the replay
gateway refuses, clearly, to answer a prompt it has no recording of."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from llmroute.demo.config import demo_settings
from llmroute.demo.run import mean_outcomes
from llmroute.providers.replay import ReplayBook, load_records


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("demo")
    # (tables at their piped width: no COLUMNS, which a parent's readline may have exported)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run([sys.executable, "-m", "llmroute", "demo", "--requests", "40", "--out",
                           str(out)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout, out


def _money(text: str, label: str) -> Decimal:
    match = re.search(re.escape(label) + r"[^$]*\$([0-9.]+)", text)
    assert match, f"{label!r} not in output"
    return Decimal(match.group(1))


def test_summary_matches_the_ledger(demo_run: tuple[str, Path]) -> None:
    stdout, out = demo_run
    with sqlite3.connect(out / "ledger.db") as conn:
        rows = list(conn.execute("SELECT model, cost_usd, baseline_cost_usd, task_success "
                                 "FROM llmroute_requests WHERE status = 'ok'"))
    assert len(rows) == 40 and "40 ok, 0 failed" in stdout
    cost = sum(Decimal(r[1]) for r in rows)
    baseline = sum(Decimal(r[2]) for r in rows)
    assert _money(stdout, "cost (ledger)") == round(cost, 6)
    assert _money(stdout, "always gpt-4-1106-preview (ledger)") == round(baseline, 6)
    savings = float(1 - cost / baseline) * 100
    # (the tables' columns are apart by spaces: reports/tables.py lays them out)
    assert re.search(rf"^ savings +{savings:.1f}% *$", stdout, re.M)
    quality = sum(r[3] for r in rows) / len(rows)  # feedback success = recorded outcome (0/1)
    assert re.search(rf"quality \(routed / always-baseline\) +{quality:.3f} /", stdout)
    for model in {r[0] for r in rows}:
        count = sum(r[0] == model for r in rows)
        assert re.search(rf"^ {re.escape(model)} +{count} +{count / 40:.1%} *$", stdout, re.M)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"] == 40
    assert summary["model_mix"] == {m: sum(r[0] == m for r in rows) for m in {r[0] for r in rows}}


def test_quality_kept_is_against_gpt4_on_the_same_prompts(demo_run: tuple[str, Path]) -> None:
    stdout, out = demo_run
    book = ReplayBook(load_records())
    gpt4 = [book.find(r["prompt"], "gpt-4-1106-preview") for r in book.records[:40]]
    mean = sum(g.outcome or 0.0 for g in gpt4 if g) / sum(1 for g in gpt4 if g)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["baseline_quality"] == pytest.approx(mean)
    assert f"{summary['quality_kept_pct']:.1f}%" in stdout


def test_the_operating_point_is_printed_and_its_frontier_written(demo_run: tuple[str, Path]
                                                                 ) -> None:
    from llmroute.reports.plane import LabFrontier

    stdout, out = demo_run
    assert "operating point: cost–quality vs always-gpt-4-1106-preview" in stdout
    # (quality and cost as shares of always-gpt-4's, in the columns `quality` and `cost`)
    assert re.search(r"^ point +quality +cost *$", stdout, re.M)
    assert re.search(r"^ default, this run \(ledger, 40 requests\) +[0-9.]+% +[0-9.]+% *$", stdout,
                     re.M)
    lab = LabFrontier.load(out / "frontier.json")
    assert lab.reference == "gpt-4-1106-preview" and "held out" in lab.measured_on
    assert {p.label for p in lab.of_kind("lab-model")} >= {"gpt-4-1106-preview"}
    policy = {p.label: p for p in lab.of_kind("lab-policy")}
    assert set(policy) == {"default (all prompts)", "default (held-out half)"}
    assert policy["default (all prompts)"].requests <= 40
    curve = lab.of_kind("lab-curve")
    assert curve and all(a.cost_usd <= b.cost_usd and a.quality <= b.quality
                         for a, b in pairwise(curve))


def test_unknown_prompt_gets_a_not_recorded_error(tmp_path: Path) -> None:
    from llmroute.server.app import create_app

    settings = demo_settings(tmp_path, mean_outcomes(ReplayBook(load_records())))
    app = create_app(settings, environ={})

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return await client.post("/v1/chat/completions", json={
                "model": "auto", "messages": [{"role": "user", "content": "Write me a haiku."}]})

    import asyncio

    response = asyncio.run(ask())
    assert response.status_code in (400, 502)
    error = response.json()["error"]
    assert "not recorded" in error["message"]
    assert "choices" not in response.json()


def test_control_demo_runs_an_experiment_and_a_budget(tmp_path: Path) -> None:
    """`llmroute demo --control`: the experiment's arms are in the ledger (sticky by session, the
    shadow arm's decision beside), the budget user's requests are downgraded once the budget is
    spent, and `llmroute experiments report` reads the config the demo wrote."""
    out = tmp_path / "control"
    done = subprocess.run([sys.executable, "-m", "llmroute", "demo", "--control", "-n", "160",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(out / "ledger.db") as db:
        arms = dict(db.execute("SELECT experiment_arm, COUNT(*) FROM llmroute_requests "
                               "WHERE experiment_arm IS NOT NULL GROUP BY 1").fetchall())
        sessions = db.execute("SELECT session_id, COUNT(DISTINCT experiment_arm) FROM "
                              "llmroute_requests WHERE session_id IS NOT NULL GROUP BY 1").fetchall()
        shadows = db.execute("SELECT shadow FROM llmroute_requests WHERE shadow IS NOT NULL"
                             ).fetchall()
        budget = db.execute("SELECT policy, COUNT(*) FROM llmroute_requests WHERE user_name = "
                            "'budget-demo' GROUP BY 1").fetchall()
    assert set(arms) == {"demo-ab:default", "demo-ab:learned"} and sum(arms.values()) == 80
    assert sessions and all(n == 1 for _, n in sessions)  # each session stays on one arm
    assert len(shadows) == 80 and json.loads(shadows[0][0])[0]["policy"] == "cheap"
    # the rules policy scores no model: the learned router's P(good) of its choice is logged
    assert all(0 < json.loads(s)[0]["predicted_quality"] < 1 for (s,) in shadows)
    policies = dict(budget)
    assert policies.get("frugal", 0) > 0 and policies.get("default", 0) > 0  # downgraded part-way
    match = re.search(r"80: (\d+) under the budget, (\d+) downgraded", done.stdout)
    assert match and int(match.group(2)) == policies["frugal"]
    report = subprocess.run([sys.executable, "-m", "llmroute", "experiments", "report", "demo-ab",
                             "-c", str(out / "llmroute.yaml"), "--json"],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert {a["arm"]: a["requests"] for a in data["arms"]
            if a["requests"]} == {k.split(":")[1]: v for k, v in arms.items()}

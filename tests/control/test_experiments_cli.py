"""`llmroute experiments report` run as a user runs it, over the fixture ledger (SQLite). Kept next
to the report's tests because it shares their fixture and hand-computed numbers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llmroute.ledger.sketch import ALPHA

from .experiment_fixture import NAME, WINDOW, fixture_entries, write_ledger

EXPERIMENTS = f"""
experiments:
  - name: {NAME}
    control: base
    rating_margin: 0.5
    arms:
      base: {{policy: default}}
      cheap: {{policy: cheap}}
"""


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    return subprocess.run([sys.executable, "-m", "llmroute", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60)


def config(tmp_path: Path, experiments: str = EXPERIMENTS) -> Path:
    url = write_ledger(tmp_path, fixture_entries())
    path = tmp_path / "llmroute.yaml"
    path.write_text(f"ledger: {{url: '{url}'}}\n{experiments}")
    return path


def report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("experiments", "report", *args, *WINDOW, cwd=tmp_path)


@pytest.fixture
def configured(tmp_path: Path) -> Path:
    return config(tmp_path)


def test_json_report_of_a_configured_experiment(configured: Path, tmp_path: Path) -> None:
    result = report(tmp_path, NAME, "-c", str(configured), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "running" and data["control"] == "base"
    assert [a["requests"] for a in data["arms"]] == [200, 200]
    assert data["arms"][0]["success_rate"]["low"] == pytest.approx(0.612159, abs=1e-6)
    verdicts = {m["metric"]: (m["verdict"], m["more_requests"])
                for m in data["comparisons"][0]["metrics"]}
    assert verdicts == {"success_rate": ("not enough data yet", 165_992),
                        "mean_rating": ("not different", 0), "error_rate": ("worse", 0),
                        "cost_per_request": ("better", 0)}
    assert data["window"]["since"].startswith("2025-01-01")


def test_table_report_with_plain_verdicts(configured: Path, tmp_path: Path) -> None:
    result = report(tmp_path, NAME, "-c", str(configured))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Experiment cheap-vs-default (running): 400 requests" in text
    assert "80.0% [61.2%, 91.0%] (100)" in text
    # base's latency p95 (exactly 1.900s in [1.790s, …]) comes from the arm's latency sketch:
    # the value and the interval's bound each within the sketch's 1 %, printed to the millisecond
    p95 = re.search(r"(\d+\.\d{3})s \[(\d+\.\d{3})s, …\]", text)
    assert p95 is not None, text
    assert float(p95.group(1)) == pytest.approx(1.9, rel=ALPHA, abs=5e-4)
    assert float(p95.group(2)) == pytest.approx(1.79, rel=ALPHA, abs=5e-4)
    assert "+10.0 [+0.6, +19.4] pts" in text and "~165,992" in text
    assert ("cheap vs base: no worse on success rate (margin 2 pts)? not yet (~165,992 more "
            "requests); no worse on mean rating (margin 0.5)? yes; cost per request: better") in text
    assert "2 request(s) labelled with arm 'old'" in text


def test_margin_option_and_guardrail_line(tmp_path: Path) -> None:
    path = config(tmp_path, EXPERIMENTS + "    guardrails: {alpha: 0.05}\n")
    result = report(tmp_path, NAME, "-c", str(path), "--margin", "0.25")
    assert result.returncode == 0, result.stderr
    assert "no worse on success rate (margin 25 pts)? yes" in result.stdout
    assert "guardrail: stop cheap: its error rate is significantly worse than base's" in result.stdout


def test_unconfigured_experiment_needs_a_control(tmp_path: Path) -> None:
    path = config(tmp_path, experiments="")
    missing = report(tmp_path, NAME, "-c", str(path))
    assert missing.returncode == 1
    assert "--control" in missing.stderr and "base, cheap, old" in missing.stderr
    result = report(tmp_path, NAME, "-c", str(path), "--control", "base", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    # arms as seen in the ledger, weighted by their requests
    assert [(a["arm"], a["policy"], a["requests"]) for a in data["arms"]] == [
        ("base", "default", 200), ("cheap", "cheap", 200), ("old", "(unknown)", 2)]
    assert data["comparisons"][0]["metrics"][2]["verdict"] == "worse"


def test_unknown_experiment_and_bad_control_are_clear_errors(configured: Path,
                                                             tmp_path: Path) -> None:
    unknown = report(tmp_path, "nope", "-c", str(configured))
    assert unknown.returncode == 1 and "no experiment 'nope'" in unknown.stderr
    bad = report(tmp_path, NAME, "-c", str(configured), "--control", "zzz")
    assert bad.returncode == 1 and "control 'zzz' is not one of the arms" in bad.stderr
    assert "Traceback" not in unknown.stderr + bad.stderr


def test_no_ledger_yet(tmp_path: Path) -> None:
    path = tmp_path / "llmroute.yaml"
    path.write_text(f"ledger: {{url: 'sqlite:///{tmp_path / 'none.db'}'}}\n")
    result = report(tmp_path, NAME, "-c", str(path))
    assert result.returncode == 0 and "No ledger yet" in result.stdout

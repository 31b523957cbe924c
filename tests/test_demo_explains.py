"""The demo explains itself: why requests failed, which cost is which, and a report over its ledger
(found through the `llmroute.yaml` it writes) with ratings and $/quality point filled."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

#: Prompt 355 of the replay has only gpt-3.5-turbo's answer: a policy on gpt-4 alone fails it.
GPT4_ONLY = """\
tiers:
  simple: {model: gpt-4-1106-preview}
  medium: {model: gpt-4-1106-preview}
  complex: {model: gpt-4-1106-preview, fallbacks: []}
policies:
  default: {router: fixed, tier: complex}
"""


def _llmroute(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    done = subprocess.run([sys.executable, "-m", "llmroute", *args], capture_output=True,
                          text=True, timeout=180, cwd=cwd, env={**env, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def failing_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    out = tmp_path_factory.mktemp("demo")
    (out / "gpt4.yaml").write_text(GPT4_ONLY)
    done = _llmroute("demo", "-n", "360", "-c", str(out / "gpt4.yaml"), "-j", "8",
                     "--out", str(out / "run"), cwd=out)
    return done.stdout, out / "run"


def test_the_demo_says_why_requests_failed(failing_demo: tuple[str, Path]) -> None:
    stdout, out = failing_demo
    with sqlite3.connect(out / "ledger.db") as conn:
        errors = conn.execute("SELECT error_code, count(*) FROM llmroute_requests "
                              "WHERE status = 'error' GROUP BY 1").fetchall()
    assert errors == [("all_upstreams_failed", 1)]
    assert "359 ok, 1 failed" in stdout
    why = re.sub(r"[\s│]+", " ", stdout.split("why they failed", 1)[1])
    assert why.startswith(" 1 × HTTP 502 all_upstreams_failed (attempts: not_found; no recorded "
                          "answer: RouterBench lacks the answers of the models tried")
    assert "injects no failures on purpose" in why
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failures"] == {"HTTP 502 all_upstreams_failed (attempts: not_found; no "
                                   "recorded answer: RouterBench lacks the answers of the models "
                                   "tried on this prompt)": 1}


def test_the_two_costs_are_labelled(failing_demo: tuple[str, Path]) -> None:
    stdout, _ = failing_demo
    assert "ledger: the gateway's own price" in stdout
    assert "recorded: what RouterBench measured for the same answers" in stdout


def test_the_report_reads_the_demos_ledger_with_ratings(failing_demo: tuple[str, Path]) -> None:
    stdout, out = failing_demo
    config = out / "llmroute.yaml"
    assert f"llmroute report -c {config}" in stdout
    data = json.loads(_llmroute("report", "-c", str(config), "--json", cwd=out).stdout)
    total = data["total"]
    assert (total["requests"], total["errors"]) == (360, 1)
    assert total["rated"] == 359 and total["mean_rating"] is not None
    assert total["cost_per_quality_point_usd"] is not None
    with sqlite3.connect(out / "ledger.db") as conn:
        ratings = dict(conn.execute("SELECT user_rating, count(*) FROM llmroute_requests "
                                    "WHERE status = 'ok' GROUP BY 1").fetchall())
        first, last = conn.execute("SELECT min(ts), max(ts) FROM llmroute_requests").fetchone()
    assert set(ratings) <= {1, 5} and sum(ratings.values()) == 359  # outcomes 0/1 → 1 or 5 stars
    assert total["mean_rating"] == pytest.approx((ratings.get(1, 0) + 5 * ratings.get(5, 0)) / 359)
    # failures with no cost are not "unpriced" answers (issue 16: the count is exact)
    assert total["unpriced"] == 0 and "unpriced" not in data["headline"]
    # the traffic's own first and last request, not only the 7-day query window
    assert data["first_request"][:19] == str(first).replace(" ", "T")[:19]
    assert data["last_request"][:19] == str(last).replace(" ", "T")[:19]


def test_concurrency_keeps_its_long_option_and_c_is_config(tmp_path: Path) -> None:
    done = _llmroute("demo", "-n", "5", "--concurrency", "2", "--out", str(tmp_path / "a"),
                     cwd=tmp_path)
    assert "5 ok, 0 failed" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "llmroute", "demo", "-n", "5", "-c", "4"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert bad.returncode == 2 and "cannot read it" in bad.stderr


def test_report_after_make_demo_points_at_the_demos_ledger(failing_demo: tuple[str, Path],
                                                           tmp_path: Path) -> None:
    """`llmroute report` with no config, in the folder `make demo` ran in: it names the ledger."""
    _, run = failing_demo
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "demo").symlink_to(run, target_is_directory=True)
    done = _llmroute("report", cwd=tmp_path)
    assert "No ledger yet" in done.stdout
    assert ("The demo's ledger is out/demo/ledger.db: llmroute report -c out/demo/llmroute.yaml"
            in done.stdout)
    pointed = _llmroute("report", "-c", "out/demo/llmroute.yaml", cwd=tmp_path)
    assert "360 requests" in pointed.stdout

"""`llmroute report` and `llmroute models` at 80 columns (COLUMNS=80, as in a default terminal):
the default table fits and never cuts a cell to `mo…` / `$0…`; `--wide` shows every column whole;
`--csv` is plain data for scripts."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

from test_cli import run
from test_report_cli import WINDOW, entries, entry, ledger

from llmroute.cli.models_cmd import COLUMNS as MODEL_COLUMNS
from llmroute.reports.render import COLUMNS as REPORT_COLUMNS

NARROW = {"COLUMNS": "80"}
LONG = "meta/code-llama-instruct-34b-chat"


def _report(tmp_path: Path, *args: str) -> str:
    rows = [*entries(), entry(9, 2, model=LONG, cost_usd=Decimal("0.000896"),
                              baseline_cost_usd=Decimal("0.0234"), latency_s=0.3, user_rating=4)]
    result = run("report", "-c", str(ledger(tmp_path, rows)), *WINDOW, *args, cwd=tmp_path,
                 env=NARROW)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _table_lines(text: str) -> list[str]:
    return text.split("by model\n", 1)[1].splitlines()


def test_the_default_report_fits_80_columns_and_cuts_no_cell(tmp_path: Path) -> None:
    text = _report(tmp_path)
    lines = _table_lines(text)
    assert "…" not in text
    assert max(map(len, lines)) <= 80
    # every money cell whole, the long model name folded onto more lines, not cut
    for money in ("$4,500.00", "$15,000.02", "$0.000896", "$0.000224", "$600.00"):
        assert money in text, money
    assert LONG in "".join(line.split("  ")[0].strip() for line in lines if line.strip())
    assert "rating" in text and "$/quality" in text


def test_wide_shows_every_column_whole(tmp_path: Path) -> None:
    text = _report(tmp_path, "--wide")
    header = next(line for line in _table_lines(text) if "requests" in line)
    for column in REPORT_COLUMNS:
        assert column in header, column
    assert "…" not in text and LONG in text
    assert "m/big 33%, m/small 33%, (none) 17%, +1 more" in text
    assert "$2,250.00" in text  # $/success: 4,500 / 2 successes


def test_report_csv_is_plain_data(tmp_path: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(_report(tmp_path, "--csv"))))
    total = rows[-1]
    assert (total["requests"], total["errors"], total["cost_usd"]) == ("6", "1", "4500.000896")
    # unpriced: the answered request without a cost; the failure made no paid call (issue 16)
    assert (total["unpriced"], total["mean_rating"]) == ("1", "3.75")
    assert {r["model"] for r in rows[:-1]} == {"m/big", "m/small", "(none)", LONG}


def test_models_fit_80_columns_and_wide_shows_every_column(tmp_path: Path) -> None:
    narrow = run("models", "--all", "--search", "claude", cwd=tmp_path, env=NARROW)
    assert narrow.returncode == 0, narrow.stderr
    assert "…" not in narrow.stdout
    assert max(map(len, narrow.stdout.splitlines())) <= 80
    assert "$/1M in" in narrow.stdout and "$/1M out" in narrow.stdout
    wide = run("models", "--wide", cwd=tmp_path, env=NARROW)
    header = next(line for line in wide.stdout.splitlines() if "provider" in line)
    for column in MODEL_COLUMNS:
        assert column in header, column
    assert "…" not in wide.stdout and "json,tools,vision" in wide.stdout
    data = list(csv.DictReader(io.StringIO(run("models", "--csv", cwd=tmp_path).stdout)))
    assert {"openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"} <= {r["name"] for r in data}
    assert next(r for r in data if r["name"] == "openai/gpt-4o-mini")["input_per_m"] == "0.15"

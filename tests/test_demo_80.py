"""`llmroute demo` at 80 columns (issue 16), run as `make demo` runs it (`--out out/demo` in the
folder it runs in) with COLUMNS=80: no line over 80, no cell cut to `…`, and every number its
tables explain still there and whole: the same numbers as the tables laid out wide (rendered here
from the `summary.json` and `frontier.json` the run wrote), the failure explained in full, the
budget's counts."""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import fields
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from llmroute.demo.summary import Summary, render, render_plane
from llmroute.reports.plane import LabFrontier
from test_demo_explains import GPT4_ONLY

SRC = Path(__file__).resolve().parents[1] / "src"
#: A number as the demo prints it: `40`, `$0.015781`, `92.1%`, `-0.5`.
NUMBER = re.compile(r"[-$]?\d+(?:[.,]\d+)*%?")


def demo_at_80(cwd: Path, *args: str) -> str:
    """`llmroute demo ARGS --out out/demo` in `cwd` at COLUMNS=80: its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    done = subprocess.run([sys.executable, "-m", "llmroute", "demo", *args, "--out", "out/demo"],
                          capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**env, "COLUMNS": "80", "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def assert_fits(stdout: str) -> None:
    assert max(map(len, stdout.splitlines())) <= 80, stdout
    assert "…" not in stdout, stdout


def summary_of(out: Path) -> Summary:
    """The demo's summary read back from the `summary.json` it wrote."""
    data = json.loads((out / "summary.json").read_text())
    names = {f.name for f in fields(Summary)}
    values = {k: Decimal(v) if k.endswith("cost_usd") and isinstance(v, str) else v
              for k, v in data.items() if k in names}
    return Summary(**values)


def wide_numbers(out: Path) -> Counter[str]:
    """The numbers of the summary's and the operating point's tables laid out 1000 columns wide."""
    text = io.StringIO()
    console = Console(file=text, width=1000, highlight=False)
    summary = summary_of(out)
    render(summary, console)
    render_plane(summary, LabFrontier.load(out / "frontier.json"), "default", console)
    assert max(map(len, text.getvalue().splitlines())) > 80  # the wide layout is wider
    return Counter(NUMBER.findall(text.getvalue()))


@pytest.fixture(scope="module")
def narrow_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    cwd = tmp_path_factory.mktemp("demo80")
    return demo_at_80(cwd, "-n", "40"), cwd / "out" / "demo"


def test_the_demo_fits_80_columns_with_every_number(narrow_demo: tuple[str, Path]) -> None:
    stdout, out = narrow_demo
    assert_fits(stdout)
    wide = wide_numbers(out)
    assert {"40", "0", "100.0%"} & set(wide)  # (it has numbers to compare)
    missing = wide - Counter(NUMBER.findall(stdout))
    assert not missing, (missing, stdout)
    for model, count in summary_of(out).model_mix.items():
        assert re.search(rf"^ {re.escape(model)} +{count} +{count / 40:.1%} *$", stdout, re.M)
    assert "report over this ledger: llmroute report -c out/demo/llmroute.yaml" in stdout


def test_the_failure_is_explained_in_full_at_80_columns(tmp_path: Path) -> None:
    (tmp_path / "gpt4.yaml").write_text(GPT4_ONLY)
    stdout = demo_at_80(tmp_path, "-n", "360", "-j", "8", "-c", "gpt4.yaml")
    assert_fits(stdout)
    assert "359 ok, 1 failed" in stdout
    # the explanation wraps in its column: its lines read back as one sentence
    why = stdout.split("why they failed", 1)[1].split("cost (ledger)", 1)[0]
    assert " ".join(why.split()) == (
        "1 × HTTP 502 all_upstreams_failed (attempts: not_found; no recorded answer: RouterBench "
        "lacks the answers of the models tried on this prompt). The demo's upstream replays "
        "recorded answers: it injects no failures on purpose.")
    missing = wide_numbers(tmp_path / "out" / "demo") - Counter(NUMBER.findall(stdout))
    assert not missing, (missing, stdout)


def test_the_control_demo_fits_80_columns(tmp_path: Path) -> None:
    stdout = demo_at_80(tmp_path, "--control", "-n", "160")
    assert_fits(stdout)
    assert "160 ok, 0 failed" in stdout
    with sqlite3.connect(tmp_path / "out" / "demo" / "ledger.db") as conn:
        cost = sum(Decimal(c) for (c,) in conn.execute(
            "SELECT cost_usd FROM llmroute_requests WHERE status = 'ok'"))
    assert re.search(rf"^ cost \(ledger\) +\${round(cost, 6)} *$", stdout, re.M), stdout
    limit = re.search(r"^ limit \(budget-demo, per day\) +\$(\d+\.\d{6}) *$", stdout, re.M)
    counts = re.search(r"80: (\d+) under the budget, (\d+) downgraded", stdout)
    assert limit and counts and int(counts.group(1)) + int(counts.group(2)) == 80
    for label in ("spent under the budget (ledger)", "spent by downgraded requests"):
        assert re.search(rf"^ {re.escape(label)} +\$\d+\.\d{{6}} *$", stdout, re.M), label
    assert ("\nllmroute experiments report demo-ab -c out/demo/llmroute.yaml\n" in stdout)

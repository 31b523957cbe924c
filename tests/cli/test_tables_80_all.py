"""Every command that prints a table, run as a user runs it at 80 columns (COLUMNS=80) on realistic
data: no line over 80, no cell cut to `…`, every default column there; `--wide` adds the wide-only
columns; `--csv` and `--json` parse. One case per table-printing command; each case builds its
state (a SQLite ledger from the test helpers, the experiments fixture, alerts in the ledger, budgets
counted in Redis, the replay fixture, a RouterBench slice) and names its tables' layouts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from test_cli import run
from test_learn_cli import DATA as ROUTERBENCH
from test_learn_cli import head
from test_replay_cli import FIXTURE as REPLAY_FIXTURE
from test_replay_cli import WINDOW as REPLAY_WINDOW
from test_report_cli import WINDOW, entries, entry, ledger

from control.experiment_fixture import NAME as EXPERIMENT
from control.experiment_fixture import WINDOW as EXPERIMENT_WINDOW
from control.experiment_fixture import fixture_entries, write_ledger
from helpers import hand_worked_caching
from llmroute.cli.alerts_cmd import ALERT_LAYOUT
from llmroute.cli.budgets_cmd import BUDGET_LAYOUT
from llmroute.cli.eval_table import EVAL_LAYOUT
from llmroute.cli.experiments_cmd import AGAINST, COST, QUALITY
from llmroute.cli.models_abilities import ABILITY_LAYOUT
from llmroute.cli.models_cmd import COLUMNS as MODEL_COLUMNS
from llmroute.cli.models_cmd import NARROW as MODEL_NARROW
from llmroute.control.alert_store import record_alert
from llmroute.control.alerts import Alert
from llmroute.ledger import SQLiteStore, open_store
from llmroute.ledger.entry import LedgerEntry
from llmroute.reports.cache_hits import HIT_LAYOUT
from llmroute.reports.caching import cache_layout
from llmroute.reports.render import COLUMNS as REPORT_COLUMNS
from llmroute.reports.render import DROP_FIRST
from llmroute.reports.render import NARROW_COLUMNS as REPORT_NARROW
from llmroute.reports.tables import Layout

NARROW = {"COLUMNS": "80"}
LONG = "meta/code-llama-instruct-34b-chat"
#: An experiment interval's unbounded side is written `…` on purpose: `[1.790s, …]`.
OPEN_BOUND = re.compile(r"\[…, |, …\]")


@dataclass(frozen=True)
class Table:
    """A table a command prints: the columns shown by default and with `--wide`."""

    default: Sequence[str]
    every: Sequence[str]


def of(layout: Layout) -> Table:
    return Table(layout.default, layout.columns)


@dataclass(frozen=True)
class Case:
    """A command line (after `llmroute`), its tables, and whether it prints data (--csv/--json)."""

    args: list[str]
    tables: list[Table]
    data: bool = True
    env: dict[str, str] | None = None


Setup = Callable[[Path], Case]


#: The report's table at 80 columns: its narrow columns but `success`, the first one left out
#: when they do not fit (`render.DROP_FIRST`; with dollar amounts in thousands they do not).
REPORT_80 = tuple(c for c in REPORT_NARROW if c != DROP_FIRST[0])


def _report(tmp_path: Path) -> Case:
    rows = [*entries(), entry(9, 2, model=LONG, cost_usd=Decimal("0.000896"),
                              baseline_cost_usd=Decimal("0.0234"), latency_s=0.3, user_rating=4)]
    return Case(["report", "-c", str(ledger(tmp_path, rows)), *WINDOW],
                [Table(("model", *REPORT_80), ("model", *REPORT_COLUMNS))])


def _caching(tmp_path: Path) -> Case:
    config = ledger(tmp_path, hand_worked_caching())
    report = Table(("policy", *REPORT_80), ("policy", *REPORT_COLUMNS))
    return Case(["report", "-c", str(config), *WINDOW, "--by", "policy"],
                [report, of(cache_layout("policy"))])


def _cache_hits(tmp_path: Path) -> Case:
    config = ledger(tmp_path, hand_worked_caching())
    return Case(["report", "-c", str(config), *WINDOW, "--cache-hits"], [of(HIT_LAYOUT)])


def _models(tmp_path: Path) -> Case:
    return Case(["models", "--all", "--search", "claude"], [Table(MODEL_NARROW, MODEL_COLUMNS)])


def _abilities(tmp_path: Path) -> Case:
    return Case(["models", "--abilities"], [of(ABILITY_LAYOUT)])


def _experiments(tmp_path: Path) -> Case:
    from control.test_experiments_cli import EXPERIMENTS

    url = write_ledger(tmp_path, fixture_entries())
    config = tmp_path / "llmroute.yaml"
    config.write_text(f"ledger: {{url: '{url}'}}\n{EXPERIMENTS}")
    return Case(["experiments", "report", EXPERIMENT, "-c", str(config), *EXPERIMENT_WINDOW],
                [of(QUALITY), of(COST), of(AGAINST)])


def _alerts(tmp_path: Path) -> Case:
    now = datetime.now(UTC).replace(microsecond=0)
    alerts = [
        Alert("team-month", "limit", "warning", "team-month:checkout",
              "limit 'team-month' (team checkout) at 80%: $800.00 of $1,000.00 used, resets "
              "2026-01-01 00:00 UTC", {"share": 0.8}, now - timedelta(hours=5), "a"),
        Alert("error-rate", "error_rate", "critical", "model:anthropic/claude-sonnet-4-5",
              "error rate 31% over the last 5 minutes (62 of 200 requests failed; threshold 10%)",
              {"share": 0.31}, now - timedelta(minutes=5), "b")]
    db = tmp_path / "ledger.db"

    async def fill() -> None:
        store = SQLiteStore(db)
        await store.migrate()
        for alert, delivered in zip(alerts, (True, False), strict=True):
            await record_alert(store, alert, delivered)
        await store.close()

    asyncio.run(fill())
    config = tmp_path / "llmroute.yaml"
    config.write_text(f"ledger:\n  url: sqlite:///{db}\n")
    return Case(["alerts", "list", "--since", "1d", "-c", str(config)], [of(ALERT_LAYOUT)])


BUDGETS = """
state: {{url: 'redis://127.0.0.1:6379/0', prefix: '{prefix}'}}
limits:
  - {{name: global-day, window: day, usd: 200}}
  - {{name: team-month, scope: team, window: month, usd: 1000}}
  - {{name: soft-week, window: week, usd: 500, hard: false}}
keys:
  - name: checkout-service-production
    key_env: T80_KEY
    team: checkout
    limits:
      - {{window: day, usd: 5}}
      - {{window: minute, requests: 60}}
      - {{window: hour, tokens: 2000000}}
"""


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


def _budgets(tmp_path: Path) -> Case:
    from zoneinfo import ZoneInfo

    from llmroute.config import load
    from llmroute.control.limits import Amount, Limiter, Subject, limits_of
    from llmroute.control.shared import open_state
    from llmroute.control.state import NANO_USD

    if not _redis_up():
        pytest.skip("no Redis at 127.0.0.1:6379")
    config = tmp_path / "llmroute.yaml"
    config.write_text(BUDGETS.format(prefix=f"t80-{uuid.uuid4().hex[:8]}:"))
    env = {"T80_KEY": "sk-t80-secret-value"}
    settings = load(config, environ=env)

    async def spend() -> None:
        state = open_state(settings.state)
        limiter = Limiter(limits_of(settings), state, ZoneInfo(settings.control.timezone))
        who = Subject(key="checkout-service-production", team="checkout")
        for usd in ("1.234567", "0.4321"):
            await limiter.admit(who, Amount(usd=int(Decimal(usd) * NANO_USD), tokens=18_250))
        await state.aclose()

    asyncio.run(spend())
    return Case(["budgets", "-c", str(config)], [of(BUDGET_LAYOUT)], env=env)


def _replay(tmp_path: Path) -> Case:
    lines = (REPLAY_FIXTURE / "replay_ledger.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [LedgerEntry.from_json(line) for line in lines if line.strip()]
    db = tmp_path / "ledger.db"

    async def fill() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.migrate()
        await store.write(rows)
        await store.close()

    asyncio.run(fill())
    config = tmp_path / "llmroute.yaml"
    config.write_text((REPLAY_FIXTURE / "replay_config.yaml").read_text(encoding="utf-8")
                      + f"ledger: {{url: 'sqlite:///{db}'}}\n", encoding="utf-8")
    columns = ("metric", "served (logged)", "cheap", "rules", "llm")
    return Case(["replay", "-c", str(config), "-p", "cheap", "-p", "rules", "-p", "llm",
                 *REPLAY_WINDOW], [Table(columns, columns)])


def _eval(tmp_path: Path) -> Case:
    if not ROUTERBENCH.is_dir():
        pytest.skip(f"shared data not found at {ROUTERBENCH}")
    data = head(ROUTERBENCH / "test.jsonl", tmp_path / "test.jsonl", 120, step=5)
    return Case(["eval", "--data", str(data), "--routers", "random,rules,oracle", "--strong",
                 "gpt-4-1106-preview", "--weak", "mistralai/mixtral-8x7b-chat"], [of(EVAL_LAYOUT)])


CASES: dict[str, Setup] = {
    "report": _report, "report-caching": _caching, "report-cache-hits": _cache_hits,
    "models": _models, "models-abilities": _abilities, "experiments-report": _experiments,
    "alerts-list": _alerts, "budgets": _budgets, "replay": _replay, "eval": _eval}


def _headers(text: str) -> list[list[str]]:
    """Each table's header words: the lines above each `───` rule up to a blank line."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        if line.strip().startswith("───"):
            block: list[str] = []
            for above in reversed(lines[:i]):
                if not above.strip():
                    break
                block = above.split() + block
            found.append(block)
    return found


def _has_columns(header: list[str], columns: Sequence[str]) -> bool:
    return all(word in header for column in columns for word in column.split())


def _run(case: Case, tmp_path: Path, *extra: str) -> str:
    result = run(*case.args, *extra, cwd=tmp_path, env={**NARROW, **(case.env or {})})
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name", list(CASES))
def test_every_table_fits_80_columns_and_wide_shows_every_column(name: str,
                                                                 tmp_path: Path) -> None:
    case = CASES[name](tmp_path)
    text = _run(case, tmp_path)
    assert max(map(len, text.splitlines())) <= 80, text
    assert "…" not in OPEN_BOUND.sub("", text), text
    headers = _headers(text)
    assert len(headers) == len(case.tables), text
    for header, table in zip(headers, case.tables, strict=True):
        assert _has_columns(header, table.default), (table.default, header)
    wide = _run(case, tmp_path, "--wide")
    assert "…" not in OPEN_BOUND.sub("", wide), wide
    wide_headers = [" ".join(h) for h in _headers(wide)]
    for header, table in zip(wide_headers, case.tables, strict=True):
        for column in table.every:
            assert column in header, (column, header)
    if case.data:
        assert json.loads(_run(case, tmp_path, "--json"))
        rows = list(csv.DictReader(io.StringIO(_run(case, tmp_path, "--csv"))))
        assert rows and all(None not in row for row in rows), rows


def test_the_narrow_tables_leave_wide_columns_out(tmp_path: Path) -> None:
    """At 80 columns the caching table shows its default columns only: `--wide` is what adds
    misses, bypasses and token counts."""
    case = _caching(tmp_path)
    header = _headers(_run(case, tmp_path))[1]
    assert _has_columns(header, cache_layout("policy").default)
    assert "bypass" not in header and "written" not in header

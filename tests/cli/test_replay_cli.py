"""`llmroute replay`, run as a user runs it, on the fixture ledger of tests/control (see
tests/control/test_replay.py for the hand-checked arithmetic)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_cli import run

from llmroute.ledger import open_store
from llmroute.ledger.entry import LedgerEntry

FIXTURE = Path(__file__).resolve().parents[1] / "control"
WINDOW = ("--since", "2025-01-01", "--until", "2025-01-02")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture pool's config, its ledger a SQLite file holding the fixture entries."""
    root = tmp_path_factory.mktemp("replay")
    db = root / "ledger.db"
    lines = (FIXTURE / "replay_ledger.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [LedgerEntry.from_json(line) for line in lines if line.strip()]

    async def fill() -> None:
        store = open_store(f"sqlite:///{db}")
        await store.migrate()
        await store.write(entries)
        await store.close()

    asyncio.run(fill())
    path = root / "llmroute.yaml"
    path.write_text((FIXTURE / "replay_config.yaml").read_text(encoding="utf-8")
                    + f"ledger: {{url: 'sqlite:///{db}'}}\n", encoding="utf-8")
    return path


def test_two_policies_side_by_side_as_json(config: Path) -> None:
    result = run("replay", "-c", str(config), "--policy", "cheap", "--policy", "rules", *WINDOW,
                 "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    cheap, rules = data["policies"]
    assert (cheap["policy"], rules["policy"]) == ("cheap", "rules")
    for report in (cheap, rules):
        assert (report["read"], report["replayed"], report["compared"]) == (8, 6, 6)
        assert report["skipped"] == {"error entry": 1, "no text": 1}
        assert report["actual_cost_usd"] == "0.02385"
        # What served: observed feedback on four, big's estimate on r3, legacy/model unknown.
        assert report["served_quality"]["observed"] == 4
        assert report["served_quality"]["observed_mean"] == 0.6875
        assert (report["served_quality"]["estimated"], report["served_quality"]["unknown"]) == (1, 1)
    assert (cheap["cost_usd"], cheap["savings_pct"]) == ("0.00274", 88.51)
    assert (rules["cost_usd"], rules["savings_pct"]) == ("0.01834", 23.1)
    assert cheap["mix"] == {"test/small": 6}
    assert rules["mix"] == {"test/small": 4, "test/big": 1, "test/mid": 1}
    assert (cheap["quality"]["observed"], cheap["quality"]["estimated"]) == (2, 4)
    assert "replaying cheap" in result.stderr and "replaying rules" in result.stderr


def test_the_table_and_the_llm_routers_calls(config: Path) -> None:
    result = run("replay", "-c", str(config), "-p", "rules", "-p", "llm", *WINDOW)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "8 logged requests" in text and "replayed 6" in text
    assert "skipped: error entry 1, no text 1" in text
    assert "served (logged)" in text and "rules" in text and "llm" in text
    assert "$0.023850" in text and "$0.018340" in text and "$0.023584" in text
    assert "23.1%" in text and "1.1%" in text
    assert "6 ($0.000134)" in text           # six router-LLM calls, 133.5 µ$
    assert "observed feedback" in text        # the notes on what the numbers assume


def test_friendly_errors(config: Path, tmp_path: Path) -> None:
    unknown = run("replay", "-c", str(config), "-p", "nope", *WINDOW)
    assert unknown.returncode == 1 and "Unknown policy 'nope'" in unknown.stderr
    empty = run("replay", "-c", str(config), "-p", "rules", "--since", "2024-01-01",
                "--until", "2024-01-02")
    assert empty.returncode == 1 and "nothing to replay" in empty.stderr
    missing = tmp_path / "missing.yaml"
    missing.write_text(f"ledger: {{url: 'sqlite:///{tmp_path / 'none.db'}'}}\n")
    none = run("replay", "-c", str(missing), "-p", "rules")
    assert none.returncode == 1 and "no ledger at" in none.stderr
    assert not (tmp_path / "none.db").exists()

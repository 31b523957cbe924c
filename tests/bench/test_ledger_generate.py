"""bench/ledger/generate.py writes a ledger the store reads back exactly: the row count, costs that
are exact Decimals equal to tokens x the generator's prices, and the shares it was asked for; the
same seed gives the same entries on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from llmroute.catalog import ModelSpec
from llmroute.ledger import LedgerEntry, open_store
from llmroute.ledger.entry import money_text
from llmroute.types import Usage

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "ledger"))

import generate
import synth_world

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
END = datetime(2026, 1, 1, tzinfo=UTC)
ROWS = 2000


def _generate(url: str, *extra: str) -> list[LedgerEntry]:
    generate.main(["--rows", str(ROWS), "--url", url, "--seed", "5", "--end", END.isoformat(),
                   "--quiet", *extra])

    async def read() -> list[LedgerEntry]:
        store = open_store(url)
        try:
            assert await store.count() == ROWS
            return await store.query()
        finally:
            await store.close()

    return asyncio.run(read())


def _expected_cost(model: str, entry: LedgerEntry) -> Decimal | None:
    spec = synth_world.MODELS[synth_world.MODEL_INDEX[model]]
    usage = Usage(entry.input_tokens or 0, entry.output_tokens or 0, entry.cached_tokens or 0)
    return ModelSpec(model, "x", spec.input_per_m, spec.output_per_m, spec.cached_per_m).cost(usage)


def _check_money(entries: list[LedgerEntry]) -> None:
    for e in entries:
        if e.status == "error" or e.model == "local/llama-3.1-8b":
            assert e.cost_usd is None
        else:
            assert e.model is not None and isinstance(e.cost_usd, Decimal)
            expected = _expected_cost(e.model, e)
            assert expected is not None and e.cost_usd > 0
            assert money_text(e.cost_usd) == money_text(expected)  # the same value and the same text
        if e.status == "ok":
            baseline = _expected_cost(synth_world.BASELINE, e)
            assert e.baseline_cost_usd is not None and baseline is not None
            assert money_text(e.baseline_cost_usd) == money_text(baseline)
        else:
            assert e.baseline_cost_usd is None and e.input_tokens is None


def _share(entries: list[LedgerEntry], test: Callable[[LedgerEntry], bool]) -> float:
    return sum(1 for e in entries if test(e)) / len(entries)


def _check_shares(entries: list[LedgerEntry]) -> None:
    assert 0.008 <= _share(entries, lambda e: e.status == "error") <= 0.035
    assert 0.24 <= _share(entries, lambda e: e.stream) <= 0.36
    assert 0.07 <= _share(entries, lambda e: e.feedback_ts is not None) <= 0.13
    assert 0.16 <= _share(entries, lambda e: e.experiment_arm is not None) <= 0.26
    assert 0.003 <= _share(entries, lambda e: e.status == "ok" and e.cost_usd is None) <= 0.03
    assert _share(entries, lambda e: e.usage_estimated) > 0
    assert all(e.ttft_s is not None for e in entries if e.stream and e.status == "ok")
    assert all(e.prompt_text is None for e in entries)
    assert len({e.key_name for e in entries}) == 8
    assert len({e.model for e in entries} - {None}) == 8
    assert set(Counter(e.policy for e in entries)) == {p.name for p in synth_world.POLICIES}
    assert {e.experiment_arm for e in entries} - {None} == {a.label for a in synth_world.ARMS}
    assert all(END - timedelta(days=30) <= e.ts < END for e in entries)
    assert all(e.feedback_ts >= e.ts for e in entries if e.feedback_ts is not None)
    assert {e.error_code for e in entries} - {None} <= {k.code for k in synth_world.ERRORS}


def test_sqlite_ledger_reads_back_exactly(tmp_path: Path) -> None:
    entries = _generate(f"sqlite:///{tmp_path}/ledger.db")
    _check_money(entries)
    _check_shares(entries)


def test_text_share_stores_text(tmp_path: Path) -> None:
    entries = _generate(f"sqlite:///{tmp_path}/ledger.db", "--text-share", "1")
    assert all(e.prompt_text for e in entries)
    assert all(e.response_text for e in entries if e.status == "ok")


async def _postgres_reachable() -> bool:
    try:
        conn = await asyncpg.connect(POSTGRES, timeout=3)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    await conn.close()
    return True


async def _drop(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def test_postgres_ledger_equals_the_sqlite_one(tmp_path: Path) -> None:
    if not asyncio.run(_postgres_reachable()):
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES}")
    schema = f"llmroute_test_gen_{uuid.uuid4().hex[:10]}"
    try:
        entries = _generate(f"{POSTGRES}?schema={schema}")
    finally:
        asyncio.run(_drop(schema))
    _check_money(entries)
    assert entries == _generate(f"sqlite:///{tmp_path}/ledger.db")

"""Replay of a fixture SQLite ledger through candidate policies, with hand-checked totals.

The fixture (replay_ledger.jsonl, replay_config.yaml): prices in USD per 1M tokens are small 1/2,
mid 4/8 (cached input 2), big 10/30, the router LLM `test/judge` 0.5/1.5. Eight entries:

    id  served        tokens in/out (cached)  logged cost  feedback   last user text
    r1  test/small    100/50                  0.0002       success    what is the capital of France?
    r2  test/mid      400/300 (100)           0.0038       rating 4   please debug this python ...
    r3  test/big      200/500                 0.017        -          Compare the economic policies ...
    r4  test/small    10/20                   0.00005      failure    hello
    r5  error entry                                                   (skipped: error entry)
    r6  test/small    no stored text                                  (skipped: no text)
    r7  test/big      60/40                   0.0018       rating 5   tell me a joke about cats
    r8  legacy/model  50/50 (uncatalogued)    0.001        -          translate 'good morning' ...

Actual cost of the six replayed: 0.0002 + 0.0038 + 0.017 + 0.00005 + 0.0018 + 0.001 = 0.02385.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio

from llmroute.config import load
from llmroute.control.replay import QualitySummary, ReplayReport, replay
from llmroute.control.replay_offline import (
    learned_estimate,
    messages_from_text,
    tier_labels,
)
from llmroute.engine import Engine
from llmroute.learn.from_ledger import user_text
from llmroute.learn.model import RouterModel
from llmroute.ledger import SQLiteStore
from llmroute.ledger.entry import LedgerEntry
from llmroute.routers.base import LLMCall
from llmroute.types import RouteRequest

HERE = Path(__file__).parent
ACTUAL = Decimal("0.02385")
#: A stand-in for the learned router: the same P(good) for every prompt, per model.
FAKE_P = {"test/small": 0.5, "test/mid": 0.7, "test/big": 0.9}


def fake_estimate(texts: Sequence[str], models: Sequence[str]) -> list[dict[str, float]]:
    return [{m: FAKE_P[m] for m in models if m in FAKE_P} for _ in texts]


def fixture_entries() -> list[LedgerEntry]:
    lines = (HERE / "replay_ledger.jsonl").read_text(encoding="utf-8").splitlines()
    return [LedgerEntry.from_json(line) for line in lines if line.strip()]


async def _no_network(call: LLMCall) -> str:
    raise AssertionError(f"replay must not call out (asked {call.model})")


def fixture_engine() -> Engine:
    """The fixture pool; its own caller fails the test if a replay ever uses it."""
    return Engine(load(HERE / "replay_config.yaml", environ={}), caller=_no_network)


@pytest_asyncio.fixture
async def logged(tmp_path: Path) -> list[LedgerEntry]:
    """The fixture entries, written to a SQLite ledger and read back as a replay reads them."""
    store = SQLiteStore(str(tmp_path / "ledger.db"))
    await store.migrate()
    await store.write(fixture_entries())
    entries = await store.query()
    await store.close()
    return entries


def test_stored_text_becomes_messages_again() -> None:
    text = "system: be brief\nuser: first line\nsecond line\nassistant: ok\nuser: and now?"
    assert messages_from_text(text) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first line\nsecond line"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "and now?"}]
    assert RouteRequest.from_messages(messages_from_text(text)).last_user_text == user_text(text)
    assert messages_from_text("no role prefix") == [{"role": "user", "content": "no role prefix"}]
    assert messages_from_text("?: lost role") == [{"role": "user", "content": "lost role"}]


@pytest.mark.asyncio
async def test_a_fixed_cheap_policy_hand_checked(logged: list[LedgerEntry]) -> None:
    report = await replay(logged, fixture_engine(), "cheap", estimate=fake_estimate)
    assert (report.read, report.replayed) == (8, 6)
    assert report.skipped == {"error entry": 1, "no text": 1}
    assert report.actual_cost_usd == ACTUAL
    # Everything on test/small (1/2) at the logged tokens; r2's cache is mid's, not small's:
    # r1 100+100, r2 400+600, r3 200+1000, r4 10+40, r7 60+80, r8 50+100 = 2740 µ-units.
    assert report.cost_usd == report.model_cost_usd == Decimal("0.00274")
    assert report.router_cost_usd == 0 and not report.router_calls
    assert report.savings_pct == pytest.approx(float((ACTUAL - Decimal("0.00274")) / ACTUAL * 100))
    assert round(report.savings_pct or 0, 2) == 88.51
    assert report.mix() == {"test/small": 6}
    assert report.mix(served=True) == {"test/small": 2, "test/big": 2, "test/mid": 1,
                                       "legacy/model": 1}
    # Observed where small answered (r1 1.0, r4 0.0); small's estimate 0.5 for the other four.
    assert report.quality == QualitySummary(observed=2, estimated=4, unknown=0,
                                            observed_total=1.0, estimated_total=2.0)
    assert report.quality.mean == pytest.approx(0.5)
    # Served: observed r1 1.0, r2 0.75, r4 0.0, r7 1.0; r3 big estimated 0.9; r8 legacy unknown.
    assert report.served_quality == QualitySummary(observed=4, estimated=1, unknown=1,
                                                   observed_total=2.75, estimated_total=0.9)
    assert report.served_quality.observed_mean == pytest.approx(0.6875)
    assert report.served_quality.mean == pytest.approx(0.73)


@pytest.mark.asyncio
async def test_the_rules_policy_hand_checked(logged: list[LedgerEntry]) -> None:
    report = await replay(logged, fixture_engine(), "rules", estimate=fake_estimate)
    picks = {row.request_id: row.model for row in report.rows}
    # short → simple; code words (debug, python, function) → complex; "compare" → medium.
    assert picks == {"r1": "test/small", "r2": "test/big", "r3": "test/mid", "r4": "test/small",
                     "r7": "test/small", "r8": "test/small"}
    costs = {row.request_id: row.cost_usd for row in report.rows}
    assert costs == {"r1": Decimal("0.0002"),       # 100·1 + 50·2
                     "r2": Decimal("0.013"),        # 400·10 + 300·30 (big: no cache carried over)
                     "r3": Decimal("0.0048"),       # 200·4 + 500·8
                     "r4": Decimal("0.00005"),      # 10·1 + 20·2
                     "r7": Decimal("0.00014"),      # 60·1 + 40·2
                     "r8": Decimal("0.00015")}      # 50·1 + 50·2
    assert report.cost_usd == Decimal("0.01834")
    assert report.actual_cost_usd == ACTUAL
    assert round(report.savings_pct or 0, 2) == 23.10
    assert report.mix() == {"test/small": 4, "test/big": 1, "test/mid": 1}
    # Observed r1 1.0 and r4 0.0; estimated r2 big 0.9, r3 mid 0.7, r7 and r8 small 0.5 each.
    assert report.quality == QualitySummary(observed=2, estimated=4, unknown=0,
                                            observed_total=1.0, estimated_total=2.6)
    assert report.quality.mean == pytest.approx(0.6)
    sources = {row.request_id: row.quality.source for row in report.rows}
    assert sources == {"r1": "observed", "r2": "estimated", "r3": "estimated", "r4": "observed",
                       "r7": "estimated", "r8": "estimated"}


@pytest.mark.asyncio
async def test_llm_router_calls_are_counted_priced_and_answered_from_the_log(
        logged: list[LedgerEntry]) -> None:
    progress: list[tuple[int, int]] = []
    report = await replay(logged, fixture_engine(), "llm", estimate=fake_estimate,
                          progress=lambda done, total: progress.append((done, total)))
    assert progress == [(i, 8) for i in range(1, 9)]
    # The logged tier answers the router LLM: r1/r4 simple, r2 medium, r3/r7 complex; r8's "-" has no
    # label, so no answer: the llm router's default tier (medium).
    picks = {row.request_id: row.model for row in report.rows}
    assert picks == {"r1": "test/small", "r2": "test/mid", "r3": "test/big", "r4": "test/small",
                     "r7": "test/big", "r8": "test/mid"}
    assert report.router_calls == {"answered": 5, "unanswered": 1, "unpriced": 0}
    # Each call: "Rate: " + the last user text, ⌈chars/4⌉ + 4 (one message) + 3 tokens in,
    # max_tokens 8 out. Characters: 36, 101, 99, 11, 31, 40 → tokens 16, 33, 32, 10, 15, 17 = 123.
    tokens = {row.request_id: row.consultations[0].input_tokens for row in report.rows}
    assert tokens == {"r1": 16, "r2": 33, "r3": 32, "r4": 10, "r7": 15, "r8": 17}
    assert all(c.output_tokens == 8 and c.model == "test/judge"
               for row in report.rows for c in row.consultations)
    # 123 · 0.5 + 6 · 8 · 1.5 = 133.5 µ$.
    assert report.router_cost_usd == Decimal("0.0001335")
    # Models: r1 0.0002, r2 mid with its logged cache (300·4 + 100·2 + 300·8) 0.0038, r3 0.017,
    # r4 0.00005, r7 0.0018, r8 mid 50·4 + 50·8 = 0.0006 → 0.02345; plus the router calls.
    assert report.model_cost_usd == Decimal("0.02345")
    assert report.cost_usd == Decimal("0.0235835")
    assert round(report.savings_pct or 0, 2) == 1.12
    # Same model as served except r8: observed r1 1, r2 .75, r4 0, r7 1; estimated r3 big .9, r8 mid .7.
    assert report.quality == QualitySummary(observed=4, estimated=2, unknown=0,
                                            observed_total=2.75, estimated_total=1.6)


@pytest.mark.asyncio
async def test_a_cascade_consults_only_where_its_rules_stage_is_unsure(
        logged: list[LedgerEntry]) -> None:
    engine = fixture_engine()
    _, router = engine.router("cascade")
    assert tier_labels(router) == {"test/judge": {"simple": "SIMPLE", "medium": "MEDIUM",
                                                  "complex": "COMPLEX"}}
    report = await replay(logged, engine, "cascade", estimate=fake_estimate)
    consulted = sorted(row.request_id for row in report.rows if row.consultations)
    # The code-words rule (confidence 0.8 ≥ 0.78) decides r2; every other rule is less sure.
    assert consulted == ["r1", "r3", "r4", "r7", "r8"]
    assert report.router_calls["answered"] == 4
    assert report.router_cost_usd == Decimal("0.0001335") - (33 * Decimal("0.5") + 12) / 10**6


@pytest.mark.asyncio
async def test_learned_estimates_and_unknown_models(logged: list[LedgerEntry]) -> None:
    engine = fixture_engine()
    report = await replay(logged, engine, "rules")      # the default: the bundled learned router
    r2 = next(row for row in report.rows if row.request_id == "r2")
    model = _bundled_pool_model(engine)
    text = "please debug this python function that crashes when the input list is empty and explain the fix"
    expected = learned_estimate(model)([text], ["test/big"])[0]["test/big"]
    assert r2.quality.source == "estimated"
    assert r2.quality.value == pytest.approx(expected)
    r8 = next(row for row in report.rows if row.request_id == "r8")
    assert r8.served_quality.source == "unknown"      # legacy/model: no feedback, no profile
    assert report.served_quality.unknown == 1 and report.quality.unknown == 0
    json.dumps(report.to_dict())


def _bundled_pool_model(engine: Engine) -> RouterModel:
    """The bundled artifact with a profile for every tiered pool model, as the classifier builds it."""
    from llmroute.routers import default_registry
    from llmroute.routers.base import BuildContext
    from llmroute.routers.classifier import ClassifierParams, build

    settings = engine.settings
    ctx = BuildContext(settings.tier_names, engine.catalog, settings.rules, default_registry(), "t")
    return build(ClassifierParams(), ctx).model


@pytest.mark.asyncio
async def test_costs_compare_only_requests_priced_on_both_sides() -> None:
    assert ReplayReport("p", 0, (), {}).to_dict()["actual_cost_usd"] == "0"
    assert ReplayReport("p", 0, (), {}).savings_pct is None
    entries = [replace(e, cost_usd=None) if e.request_id == "r1" else e for e in fixture_entries()]
    report = await replay(entries, fixture_engine(), "cheap", estimate=fake_estimate)
    assert (report.replayed, len(report.compared)) == (6, 5)
    assert report.actual_cost_usd == ACTUAL - Decimal("0.0002")
    assert report.cost_usd == Decimal("0.00274") - Decimal("0.0002")
    data = report.to_dict()
    assert data["compared"] == 5
    assert data["actual_cost_usd"] == "0.02365" and data["cost_usd"] == "0.00254"
    assert data["quality"] == {"mean": 0.5, "observed": 2, "observed_mean": 0.5, "estimated": 4,
                               "estimated_mean": 0.5, "unknown": 0}
    assert data["skipped"] == {"error entry": 1, "no text": 1}
    json.dumps(data)


@pytest.mark.asyncio
async def test_an_unknown_policy_is_refused_before_any_work() -> None:
    from llmroute.errors import UnknownModelError

    with pytest.raises(UnknownModelError):
        await replay(fixture_entries(), fixture_engine(), "nope", estimate=fake_estimate)

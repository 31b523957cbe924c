"""The LLM router's calls in the ledger (issue 14), on SQLite and PostgreSQL: the routing cost
column (migration 0007_routing_cost) and the router-marked attempts round-trip exactly."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from ledger_factories import make_entry

from llmroute.ledger.entry import AttemptRecord
from llmroute.ledger.migrations import ROUTING_COST_MIGRATION
from llmroute.ledger.store import Store


@pytest.mark.asyncio
async def test_routing_cost_and_router_attempts_round_trip(store: Store) -> None:
    attempts = (AttemptRecord("fake/mini", "timeout", "cut at the deadline", router=True),
                AttemptRecord("fake/mini", None, latency_s=0.01, router=True),
                AttemptRecord("fake/big", None, latency_s=0.2))
    routed = make_entry(1, attempts=attempts, cost_usd=Decimal("0.0001234"),
                        routing_cost_usd=Decimal("0.00000123456789"))
    plain = make_entry(2)
    await store.write([routed, plain])
    assert await store.get(routed.request_id) == routed
    got = await store.get(plain.request_id)
    assert got is not None and got.routing_cost_usd is None
    assert [a.router for a in got.attempts] == [False] * len(got.attempts)
    assert ROUTING_COST_MIGRATION in [s.name for s in await store.migration_status() if s.applied]


def test_an_answer_attempt_keeps_its_json_unchanged() -> None:
    plain = AttemptRecord("fake/big", None)
    assert "router" not in plain.to_dict()
    assert AttemptRecord.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain
    marked = AttemptRecord("fake/mini", None, router=True)
    assert AttemptRecord.from_dict(marked.to_dict()) == marked

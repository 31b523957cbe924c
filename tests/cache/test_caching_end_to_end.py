"""Every part of caching on one real gateway, and the numbers an operator reads: the openai SDK as
the client, the fake upstream simulating Anthropic's prompt cache, the response cache on, the
SQLite ledger; then `GET /dashboard/data` (the same report `llmroute report` prints) must show
exactly what the requests did, worked by hand below. Prices and fixtures: test_prompt_cost.py."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from cache.test_prompt_cost import (
    CLAUDE,
    PLAIN_COST,
    READ_COST,
    WRITE_COST,
    by_id,
    gateway,
    marked_system,
)
from integration.support import Serve
from llmroute.testing.upstream import FakeUpstream

ON = {"cache": {"response": {"enabled": True}}}


def test_the_dashboard_tells_caching_apart_from_routing(serve: Serve, up: FakeUpstream,
                                                        tmp_path: Path) -> None:
    gw = gateway(serve, tmp_path, up, **ON)
    with gw.client() as client:
        def ask(**headers: str) -> Any:
            return client.chat.completions.with_raw_response.create(
                model=CLAUDE, messages=marked_system(), temperature=0, extra_headers=headers)

        first = ask()                           # miss: upstream, writes the prompt cache
        hit = ask()                             # the response cache answers: no upstream call
        fresh = ask(**{"Cache-Control": "no-store"})  # bypass: upstream, reads the prompt cache
    marks = [r.headers["x-llmroute-cache"] for r in (first, hit, fresh)]
    assert marks == ["miss", "hit", "bypass"]
    assert up.call_count() == 2
    found = by_id(tmp_path, 3)
    miss_e, hit_e, bypass_e = (found[r.headers["x-llmroute-request-id"]]
                               for r in (first, hit, fresh))
    assert (miss_e.cache, miss_e.cost_usd, miss_e.cache_write_tokens) == ("miss", WRITE_COST, 2000)
    assert (hit_e.cache, hit_e.cost_usd, hit_e.cache_saved_usd, hit_e.cached_from) == (
        "hit", Decimal(0), WRITE_COST, miss_e.request_id)
    assert (bypass_e.cache, bypass_e.cost_usd, bypass_e.cached_tokens) == (
        "bypass", READ_COST, 2000)

    with gw.http() as http:
        body = http.get("/dashboard/data", params={"since": "1h"}).json()
    caching = body["total"]["caching"]
    # the hit's tokens are the served answer's: the provider read and wrote nothing for it
    prompt_saved = (PLAIN_COST - WRITE_COST) + (PLAIN_COST - READ_COST)   # -0.0015 + 0.0054
    assert {k: caching[k] for k in ("hits", "semantic_hits", "misses", "bypasses", "lookups",
                                     "cached_tokens", "cache_write_tokens")} == {
        "hits": 1, "semantic_hits": 0, "misses": 1, "bypasses": 1, "lookups": 2,
        "cached_tokens": 2000, "cache_write_tokens": 2000}
    assert caching["hit_rate"] == 0.5
    assert Decimal(caching["response_cache_saved_usd"]) == WRITE_COST
    assert Decimal(caching["prompt_cache_saved_usd"]) == prompt_saved == Decimal("0.0039")
    assert Decimal(caching["caching_saved_usd"]) == WRITE_COST + prompt_saved
    # the window's cost counts the hit at $0; routing's comparison leaves it out
    assert Decimal(body["total"]["cost_usd"]) == WRITE_COST + READ_COST
    assert body["caching"]["sentence"].startswith("Savings: ")
    assert "hit rate 50.0%" in body["caching"]["sentence"]

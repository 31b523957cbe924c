"""LLM-as-router through the gateway: the classifier call goes to a served model on the fake upstream,
its label picks the tier; garbage, errors and hangs fall back to the default tier. The call goes
through the resilience layer like any other (issue 14): retried per the retry policy, skipped while
the router model's breaker is open (a cascade moves on at once), recorded as a router attempt of
the request, its cost part of the request's cost."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmroute.ledger import open_store
from llmroute.ledger.aggregates import Tally
from llmroute.testing.behaviours import Behaviour, Hang, Ok, server_error
from llmroute.testing.upstream import FakeUpstream, count_tokens, prompt_tokens_for
from llmroute.types import Usage

from .support import GatewayServer, Serve, upstream_models, user
from .test_ledger import ledger_config, wait_for_entries

CLASSIFIER_TIMEOUT_S = 0.3
POLICIES: dict[str, Any] = {"policies": {
    "default": {"router": "rules", "default_tier": "medium"},
    "llm": {"router": "llm", "model": "fake/mini", "timeout_s": CLASSIFIER_TIMEOUT_S,
            "default_tier": "medium"},
}}


@pytest.fixture
def llm_gw(serve: Serve) -> GatewayServer:
    return serve(POLICIES)


def ask(gw: GatewayServer, text: str = "hello there") -> tuple[str, dict[str, str]]:
    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="auto/llm", messages=user(text))
    return raw.parse().model, dict(raw.headers)


def test_the_classifier_label_picks_the_tier(llm_gw: GatewayServer, up: FakeUpstream) -> None:
    up.script("mini-up", Ok(text="COMPLEX"))

    model, headers = ask(llm_gw)   # a short greeting the rules would call simple

    assert upstream_models(up) == ["mini-up", "big-up"]
    assert model == "fake/big"
    assert headers["x-llmroute-tier"] == "complex"
    assert headers["x-llmroute-router"] == "llm"
    assert headers["x-llmroute-policy"] == "llm"
    assert headers["x-llmroute-confidence"] == "0.800"
    classify = up.requests[0].body
    assert classify is not None
    assert "hello there" in classify["messages"][0]["content"]
    assert "SIMPLE" in classify["messages"][0]["content"]
    assert classify["max_tokens"] == 8 and classify["temperature"] == 0


def test_a_wordy_label_is_understood(llm_gw: GatewayServer, up: FakeUpstream) -> None:
    up.script("mini-up", Ok(text="Simple."))

    model, headers = ask(llm_gw)

    assert upstream_models(up) == ["mini-up", "mini-up"]
    assert model == "fake/mini"
    assert headers["x-llmroute-tier"] == "simple"


@pytest.mark.parametrize("reply", [[Ok(text="banana")], [Ok(text="either SIMPLE or COMPLEX")],
                                   [server_error(), server_error()]],
                         ids=["garbage", "ambiguous", "errors"])
def test_an_unusable_reply_gives_the_default_tier(llm_gw: GatewayServer, up: FakeUpstream,
                                                  reply: list[Behaviour]) -> None:
    up.script("mini-up", *reply)

    model, headers = ask(llm_gw)

    assert upstream_models(up) == ["mini-up"] * len(reply) + ["mid-up"]
    assert headers["x-llmroute-router-attempts"] == str(len(reply))
    assert model == "fake/mid"
    assert headers["x-llmroute-tier"] == "medium"
    assert headers["x-llmroute-confidence"] == "0.300"


def test_a_hung_classifier_gives_the_default_tier_after_its_timeout(llm_gw: GatewayServer,
                                                                   up: FakeUpstream) -> None:
    up.script("mini-up", Hang())

    started = time.monotonic()
    model, headers = ask(llm_gw)

    assert model == "fake/mid"
    assert CLASSIFIER_TIMEOUT_S <= time.monotonic() - started < CLASSIFIER_TIMEOUT_S + 1.0
    assert upstream_models(up) == ["mini-up", "mid-up"]
    assert headers["x-llmroute-tier"] == "medium"


def test_the_label_is_cached_per_prompt(llm_gw: GatewayServer, up: FakeUpstream) -> None:
    up.script("mini-up", Ok(text="COMPLEX"))
    ask(llm_gw, "same prompt")
    ask(llm_gw, "same prompt")

    assert upstream_models(up) == ["mini-up", "big-up", "big-up"]


def test_the_classifier_streams_too(llm_gw: GatewayServer, up: FakeUpstream) -> None:
    up.script("mini-up", Ok(text="COMPLEX"))
    with llm_gw.client() as client:
        chunks = list(client.chat.completions.create(model="auto/llm", messages=user("hi"),
                                                     stream=True))
    assert {c.model for c in chunks} == {"fake/big"}
    assert [r.body["stream"] for r in up.requests if r.body] == [False, True]


def test_a_failed_classification_is_retried_per_the_retry_policy(llm_gw: GatewayServer,
                                                                  up: FakeUpstream) -> None:
    up.script("mini-up", server_error(), Ok(text="COMPLEX"))

    model, headers = ask(llm_gw)

    assert upstream_models(up) == ["mini-up", "mini-up", "big-up"]
    assert model == "fake/big"
    assert headers["x-llmroute-router-attempts"] == "2"
    assert headers["x-llmroute-attempts"] == "1"  # the answer's own attempts


CASCADE: dict[str, Any] = {
    "policies": {"llm": {"router": "cascade", "fallback_tier": "medium", "stages": [
        {"router": "llm", "model": "fake/mini", "timeout_s": CLASSIFIER_TIMEOUT_S,
         "threshold": 0.7},
        {"router": "rules", "rules": [], "default_tier": "complex", "threshold": 0.0}]}},
    "resilience": {"cooldown": {"failures": 3, "cooldown_s": 30}},
}


def test_a_dead_router_model_is_skipped_while_it_cools_down(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(CASCADE)
    up.set_default("mini-up", Hang())

    spent = []
    for i in range(5):
        started = time.monotonic()
        model, headers = ask(gw, f"question {i}")
        spent.append(time.monotonic() - started)
        assert model == "fake/big"  # the cascade's next stage decided
    # each of the breaker's three failures cost one timeout (no time is left for a retry) ...
    assert all(CLASSIFIER_TIMEOUT_S <= s < CLASSIFIER_TIMEOUT_S + 0.5 for s in spent[:3]), spent
    # ... then the router model is not called at all while its breaker is open
    assert all(s < 0.2 for s in spent[3:]), spent
    assert up.call_count("mini-up") == 3
    assert headers["x-llmroute-router-attempts"] == "0"  # skipped, never sent
    with gw.http() as http:
        assert http.get("/ready").json()["upstreams"]["fake/mini"] == "open"


def test_the_classification_is_in_the_ledger_and_in_the_cost(serve: Serve, up: FakeUpstream,
                                                             tmp_path: Path) -> None:
    gw = serve({**POLICIES, **ledger_config(tmp_path)})
    up.script("mini-up", server_error(), Ok(text="COMPLEX"))

    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="auto/llm",
                                                               messages=user("hello there"))
    answer = raw.parse()

    (entry,) = wait_for_entries(tmp_path, 1)
    assert [(a.model, a.error_kind, a.router) for a in entry.attempts] == [
        ("fake/mini", "server", True), ("fake/mini", None, True), ("fake/big", None, False)]
    mini, big = (up.requests_for(m)[-1] for m in ("mini-up", "big-up"))
    assert mini.body is not None and big.body is not None
    classify = Usage(prompt_tokens_for(mini.body["messages"]), count_tokens("COMPLEX"))
    routing = Decimal(classify.input_tokens) * Decimal("0.15") / 10**6 \
        + Decimal(classify.output_tokens) * Decimal("0.6") / 10**6
    assert answer.usage is not None
    answered = Decimal(answer.usage.prompt_tokens) * Decimal("2.5") / 10**6 \
        + Decimal(answer.usage.completion_tokens) * Decimal("10") / 10**6
    assert entry.routing_cost_usd == routing
    assert entry.cost_usd == answered + routing
    assert raw.headers["x-llmroute-cost-usd"] == f"{answered + routing:f}"
    assert Decimal(str(answer.usage.model_extra["cost"])) == pytest.approx(answered + routing)
    total = asyncio.run(aggregate_total(tmp_path))  # what `llmroute report` reads
    assert (total.cost_usd, total.routing_cost_usd) == (answered + routing, routing)


async def aggregate_total(tmp_path: Path) -> Tally:
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        return (await store.aggregate("policy")).total.tally
    finally:
        await store.close()

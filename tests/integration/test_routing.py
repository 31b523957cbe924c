"""Routing through the real gateway: `auto` tiers, `auto/<policy>`, concrete models, the answering
model's name, the `x-llmroute-*` headers (cost computed by hand), and the model list."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import openai
import pytest

from llmroute.testing.behaviours import Ok, server_error
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, upstream_models, user


def test_auto_sends_a_short_prompt_to_the_simple_tier(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(model="auto", messages=user("hi there"))

    assert upstream_models(up) == ["mini-up"]
    assert resp.model == "fake/mini"
    assert resp.choices[0].message.content == "echo from mini-up: hi there"


def test_auto_sends_a_code_prompt_to_the_complex_tier(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model="auto", messages=user("please debug this python function, it throws an exception"))

    assert upstream_models(up) == ["big-up"]
    assert resp.model == "fake/big"


def test_auto_sends_a_reasoning_prompt_to_the_medium_tier(client: openai.OpenAI,
                                                          up: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model="auto", messages=user("Please explain why the sky looks blue, step by step, in detail."))

    assert upstream_models(up) == ["mid-up"]
    assert resp.model == "fake/mid"


@pytest.mark.parametrize(("policy", "expected", "tier"), [
    ("quality", "big-up", "complex"),   # fixed: always the complex tier
    ("cheap", "mini-up", "simple"),
])
def test_auto_policy_picks_the_named_policy(client: openai.OpenAI, up: FakeUpstream, policy: str,
                                            expected: str, tier: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=f"auto/{policy}",
                                                           messages=user("hello"))

    assert upstream_models(up) == [expected]
    assert raw.headers["x-llmroute-policy"] == policy
    assert raw.headers["x-llmroute-tier"] == tier


def test_a_concrete_model_skips_routing(client: openai.OpenAI, up: FakeUpstream) -> None:
    # A code prompt that `auto` would send to the complex tier goes where it is told.
    raw = client.chat.completions.with_raw_response.create(
        model="fake/mini", messages=user("implement a python function for this algorithm"))

    assert upstream_models(up) == ["mini-up"]
    assert raw.parse().model == "fake/mini"
    assert raw.headers["x-llmroute-router"] == "none"
    assert raw.headers["x-llmroute-confidence"] == "1.000"
    assert "x-llmroute-policy" not in raw.headers


def test_a_concrete_anthropic_model_answers_in_openai_shape(client: openai.OpenAI,
                                                           up: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model="anthropic-ish/claude",
        messages=[{"role": "system", "content": "be brief"}, *user("hello claude")])

    [request] = up.requests
    assert request.protocol == "anthropic" and request.model == "claude-up"
    assert request.body is not None and request.body["system"] == "be brief"
    assert resp.model == "anthropic-ish/claude"
    assert resp.object == "chat.completion"
    assert resp.choices[0].message.content == "echo from claude-up: hello claude"
    assert resp.choices[0].finish_reason == "stop"
    # fake tokenizer: ("be brief" + "hello claude") = 20 chars -> 20 // 4 + 1
    assert resp.usage is not None and resp.usage.prompt_tokens == 6


def test_headers_describe_the_decision_and_the_exact_cost(client: openai.OpenAI,
                                                          up: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi there"))
    resp = raw.parse()
    h = raw.headers

    # The fake's usage: prompt "hi there" = 8 chars -> 3 tokens; the answer
    # "echo from mini-up: hi there" = 27 chars -> 7 tokens.
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (3, 7)
    # fake/mini costs $0.15 / $0.6 per 1M tokens: (3 * 0.15 + 7 * 0.6) / 1e6 = 0.00000465
    assert Decimal(h["x-llmroute-cost-usd"]) == Decimal("0.00000465")
    assert resp.usage.model_extra == {"cost": pytest.approx(0.00000465)}  # OpenRouter's usage.cost
    assert h["x-llmroute-model"] == "fake/mini"
    assert h["x-llmroute-tier"] == "simple"
    assert h["x-llmroute-router"] == "rules"
    assert h["x-llmroute-confidence"] == "0.750"   # the `short` rule's confidence
    assert h["x-llmroute-attempts"] == "1"
    assert h["x-llmroute-policy"] == "default"
    assert h["x-llmroute-request-id"].startswith("req_") and len(h["x-llmroute-request-id"]) == 36


def test_request_ids_are_unique(client: openai.OpenAI) -> None:
    ids = {client.chat.completions.with_raw_response.create(
        model="fake/mini", messages=user("hi")).headers["x-llmroute-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_cost_of_an_anthropic_answer(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="anthropic-ish/claude",
                                                           messages=user("hello"))
    usage = raw.parse().usage
    # "hello" = 5 chars -> 2 tokens; "echo from claude-up: hello" = 26 chars -> 7 tokens
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (2, 7)
    # $3 / $15 per 1M: (2 * 3 + 7 * 15) / 1e6 = 0.000111
    assert Decimal(raw.headers["x-llmroute-cost-usd"]) == Decimal("0.000111")


def test_after_a_fallback_model_and_headers_name_the_model_that_answered(
        client: openai.OpenAI, up: FakeUpstream) -> None:
    up.script("mini-up", server_error(), server_error())

    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi there"))
    resp = raw.parse()

    assert upstream_models(up) == ["mini-up", "mini-up", "claude-up"]
    assert resp.model == "anthropic-ish/claude"
    assert raw.headers["x-llmroute-model"] == "anthropic-ish/claude"
    assert raw.headers["x-llmroute-tier"] == "simple"
    assert raw.headers["x-llmroute-attempts"] == "3"
    # priced as the model that answered: "hi there" -> 3 tokens, "echo from claude-up: hi there"
    # = 29 chars -> 8 tokens; (3 * 3 + 8 * 15) / 1e6
    assert Decimal(raw.headers["x-llmroute-cost-usd"]) == Decimal("0.000129")


def test_models_lists_auto_policies_and_served_models(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]

    policies = ["auto/default", "auto/learned", "auto/rules", "auto/cheap", "auto/quality", "auto/random"]
    served = ["fake/mini", "fake/mid", "fake/big", "fake/huge", "fake/safe", "anthropic-ish/claude"]
    assert ids[0] == "auto"
    assert set(ids) == {"auto", *policies, *served}
    assert len(ids) == len(set(ids))


def test_health(gw: GatewayServer) -> None:
    with gw.http() as http:
        resp = http.get("/health")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


def test_ready_when_every_tier_has_a_model(gw: GatewayServer) -> None:
    with gw.http() as http:
        resp = http.get("/ready")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ready"
    assert body["tiers"] == {"simple": True, "medium": True, "complex": True}


def test_chat_completions_is_served_without_the_v1_prefix(gw: GatewayServer) -> None:
    with gw.http() as http:
        resp = http.post("/chat/completions", json={"model": "auto", "messages": user("hi")})
    assert resp.status_code == 200
    assert resp.json()["model"] == "fake/mini"


def test_an_unpriced_model_says_so(serve: Serve) -> None:
    gw = serve({"models": {"fake/free": {"deployment": "fake", "upstream_name": "free-up"}},
                "tiers": {"simple": {"model": "fake/free", "fallbacks": []}}})
    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi"))
    assert raw.parse().model == "fake/free"
    assert raw.headers["x-llmroute-cost-usd"] == "unpriced"
    usage = raw.parse().usage
    assert usage is not None and "cost" not in (usage.model_extra or {})  # no guessed price


@pytest.mark.asyncio
async def test_concurrent_requests_are_served_concurrently(gw: GatewayServer,
                                                          up: FakeUpstream) -> None:
    up.set_default("mini-up", Ok(delay_s=0.4))
    async with gw.aclient() as client:
        started = time.monotonic()
        answers = await asyncio.gather(*(
            client.chat.completions.create(model="fake/mini", messages=user(f"request {i}"))
            for i in range(20)))
        elapsed = time.monotonic() - started

    assert [a.choices[0].message.content for a in answers] == [
        f"echo from mini-up: request {i}" for i in range(20)]
    assert up.call_count("mini-up") == 20
    assert elapsed < 0.4 * 3    # not one after the other (that would take 8 s)

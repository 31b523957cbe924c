"""OpenRouter-style routing controls in the request: the auto-router plugin's allowed/excluded model
wildcards, and `models` as the request's own fallback list."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from llmroute.testing.behaviours import server_error
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, upstream_models, user


def router(**options: Any) -> dict[str, Any]:
    return {"plugins": [{"id": "auto-router", **options}]}


def test_allowed_models_restrict_routing(client: openai.OpenAI, up: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=user("hi there"),
        extra_body=router(allowed_models=["anthropic-ish/*"]))

    assert upstream_models(up) == ["claude-up"]
    assert raw.parse().model == "anthropic-ish/claude"
    assert raw.headers["x-llmroute-tier"] == "simple"


def test_allowed_models_move_to_the_nearest_tier_with_an_allowed_model(client: openai.OpenAI,
                                                                       up: FakeUpstream) -> None:
    # a short prompt belongs to the simple tier, which has neither model allowed here
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=user("hi"), extra_body=router(allowed_models=["*big*", "*huge*"]))

    assert upstream_models(up) == ["big-up"]
    assert raw.headers["x-llmroute-tier"] == "complex"


def test_allowed_models_bound_the_fallbacks(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("mini-up", server_error())

    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="auto", messages=user("hi"),
                                       extra_body=router(allowed_models=["fake/*"]))

    assert set(upstream_models(up)) == {"mini-up"}   # claude, the tier's fallback, is not allowed


def test_excluded_models_win_over_allowed_ones(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model="auto", messages=user("hi"),
        extra_body=router(allowed_models=["fake/*", "anthropic-ish/*"], excluded_models=["fake/mini"]))

    assert upstream_models(up) == ["claude-up"]
    assert resp.model == "anthropic-ish/claude"


def test_excluding_the_only_allowed_model_leaves_nothing(client: openai.OpenAI,
                                                         up: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="auto", messages=user("hi"),
            extra_body=router(allowed_models=["fake/mini"], excluded_models=["fake/*"]))

    assert caught.value.body["code"] == "no_eligible_model"
    assert up.call_count() == 0


def test_excluded_models_apply_to_a_concrete_model(client: openai.OpenAI, up: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake/mini", messages=user("hi"),
                                       extra_body=router(excluded_models=["*mini*"]))
    assert "excluded" in caught.value.message
    assert up.call_count() == 0


def test_request_models_are_its_fallbacks(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("mini-up", server_error())

    raw = client.chat.completions.with_raw_response.create(
        model="fake/mini", messages=user("hi"), extra_body={"models": ["fake/big", "fake/mid"]})

    assert upstream_models(up) == ["mini-up", "mini-up", "big-up"]
    assert raw.parse().model == "fake/big"
    assert raw.headers["x-llmroute-attempts"] == "3"


def test_request_models_follow_the_routed_chain(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("mini-up", server_error())
    up.set_default("claude-up", server_error())

    resp = client.chat.completions.create(model="auto", messages=user("hi"),
                                          extra_body={"models": ["fake/huge"]})

    assert upstream_models(up)[-1] == "huge-up"
    assert resp.model == "fake/huge"


def test_models_without_model_uses_the_first_as_primary(gw: GatewayServer, up: FakeUpstream) -> None:
    up.set_default("mid-up", server_error())
    with gw.http() as http:
        resp = http.post("/v1/chat/completions",
                         json={"models": ["fake/mid", "fake/mini"], "messages": user("hi")})

    assert resp.status_code == 200
    assert resp.json()["model"] == "fake/mini"
    assert upstream_models(up) == ["mid-up", "mid-up", "mini-up"]


def test_excluded_request_fallbacks_are_skipped(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("mini-up", server_error())

    resp = client.chat.completions.create(
        model="fake/mini", messages=user("hi"),
        extra_body={"models": ["fake/big", "fake/mid"], **router(excluded_models=["fake/big"])})

    assert "big-up" not in upstream_models(up)
    assert resp.model == "fake/mid"

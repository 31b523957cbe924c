"""LLM-as-router through the gateway: the classifier call goes to a served model on the fake upstream,
its label picks the tier; garbage, errors and hangs fall back to the default tier."""

from __future__ import annotations

import time
from typing import Any

import pytest

from llmroute.testing.behaviours import Behaviour, Hang, Ok, server_error
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, upstream_models, user

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


@pytest.mark.parametrize("reply", [Ok(text="banana"), Ok(text="either SIMPLE or COMPLEX"), server_error()],
                         ids=["garbage", "ambiguous", "error"])
def test_an_unusable_reply_gives_the_default_tier(llm_gw: GatewayServer, up: FakeUpstream,
                                                  reply: Behaviour) -> None:
    up.script("mini-up", reply)

    model, headers = ask(llm_gw)

    assert upstream_models(up) == ["mini-up", "mid-up"]
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

"""Cooldowns (per-deployment circuit breakers) seen from outside: a failing deployment leaves rotation
and no request reaches it until the cooldown passes; a half-open probe then brings it back; running out
of credits trips at once; `/ready` reports a tier whose every model is cooling down."""

from __future__ import annotations

import asyncio
import time

import openai
import pytest

from llmroute.testing.behaviours import Error, Ok, out_of_credits, rate_limited, server_error
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, upstream_models, user

COOLDOWN_S = 0.5


def ask(client: openai.OpenAI, model: str = "fake/mini") -> tuple[str, str]:
    """(the answering model, x-llmroute-attempts) of one request with fake/mid as fallback."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=user("hi"),
                                                           extra_body={"models": ["fake/mid"]})
    return raw.parse().model, raw.headers["x-llmroute-attempts"]


def test_consecutive_failures_take_a_deployment_out_until_the_cooldown_passes(
        client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("mini-up", server_error())

    assert ask(client) == ("fake/mid", "3")          # mini fails twice (failures: 2 of 3)
    assert ask(client) == ("fake/mid", "2")          # the third failure trips the breaker
    assert up.call_count("mini-up") == 3

    assert ask(client) == ("fake/mid", "1")          # skipped: no request reaches mini
    assert ask(client) == ("fake/mid", "1")
    assert up.call_count("mini-up") == 3

    time.sleep(COOLDOWN_S)
    up.set_default("mini-up", None)                  # mini has recovered
    assert ask(client) == ("fake/mini", "1")         # the half-open probe goes through
    assert up.call_count("mini-up") == 4
    assert ask(client) == ("fake/mini", "1")         # closed again


def test_a_failed_probe_reopens_the_breaker(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("mini-up", server_error())
    ask(client)
    ask(client)
    assert up.call_count("mini-up") == 3

    time.sleep(COOLDOWN_S)
    assert ask(client) == ("fake/mid", "2")          # one probe, it fails: no retry, fall back
    assert up.call_count("mini-up") == 4
    assert ask(client) == ("fake/mid", "1")          # open again
    assert up.call_count("mini-up") == 4


def test_a_success_resets_the_failure_count(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.script("mini-up", server_error(), server_error())
    assert ask(client) == ("fake/mid", "3")
    assert ask(client) == ("fake/mini", "1")          # the success forgets both failures
    up.script("mini-up", server_error(), server_error())
    assert ask(client) == ("fake/mid", "3")
    assert ask(client) == ("fake/mini", "1")          # still in rotation: 2 < 3 failures


@pytest.mark.parametrize("error", [out_of_credits(), out_of_credits(402)],
                         ids=["429-insufficient-quota", "402"])
def test_out_of_credits_trips_at_once(client: openai.OpenAI, up: FakeUpstream, error: Error) -> None:
    up.set_default("mini-up", error)

    assert ask(client) == ("fake/mid", "2")           # one try, no retry
    assert ask(client) == ("fake/mid", "1")           # already out of rotation
    assert up.call_count("mini-up") == 1


def test_anthropic_out_of_credits_trips_at_once(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("claude-up", out_of_credits())     # Anthropic: 402 billing_error

    assert ask(client, "anthropic-ish/claude") == ("fake/mid", "2")
    assert ask(client, "anthropic-ish/claude") == ("fake/mid", "1")
    assert upstream_models(up) == ["claude-up", "mid-up", "mid-up"]


def test_a_long_retry_after_sets_the_cooldown(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.script("mini-up", rate_limited(3))   # longer than max_retry_after_s and cooldown_s

    assert ask(client) == ("fake/mid", "2")
    time.sleep(COOLDOWN_S)                  # the plain cooldown has passed, the Retry-After has not
    assert ask(client) == ("fake/mid", "1")
    assert up.call_count("mini-up") == 1


def test_every_model_cooling_down_is_a_503(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"resilience": {"cooldown": {"failures": 1}}})
    up.set_default("mini-up", server_error())
    with gw.client() as client:
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="fake/mini", messages=user("hi"))
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="fake/mini", messages=user("hi"))

    assert up.call_count("mini-up") == 1
    assert caught.value.status_code == 503
    assert caught.value.body["attempts"] == [
        {"model": "fake/mini", "error": "cooldown", "message": "skipped: breaker open",
         "skipped": True}]
    assert caught.value.response.headers["x-llmroute-attempts"] == "0"


def ready(gw: GatewayServer) -> tuple[int, dict[str, object]]:
    with gw.http() as http:
        resp = http.get("/ready")
    return resp.status_code, resp.json()


def test_ready_is_degraded_while_a_whole_tier_cools_down(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"resilience": {"cooldown": {"failures": 1}}})
    up.set_default("mid-up", server_error())
    up.set_default("mini-up", server_error())
    with gw.client() as client, pytest.raises(openai.InternalServerError):
        # the medium tier is fake/mid with fake/mini as its fallback: both trip
        client.chat.completions.create(model="fake/mid", messages=user("hi"),
                                       extra_body={"models": ["fake/mini"]})

    status, body = ready(gw)
    assert status == 503
    assert body["status"] == "degraded"
    assert body["tiers"] == {"simple": True, "medium": False, "complex": True}
    upstreams = body["upstreams"]
    assert isinstance(upstreams, dict)
    assert (upstreams["fake/mid"], upstreams["fake/mini"]) == ("open", "open")

    time.sleep(COOLDOWN_S)
    status, body = ready(gw)
    assert status == 200
    assert body["status"] == "ready"


def test_ready_counts_a_tier_whose_models_also_serve_an_earlier_tier(serve: Serve) -> None:
    # medium shares its only model with simple: it is still served.
    gw = serve({"tiers": {"medium": {"model": "fake/mini", "fallbacks": []}}})
    status, body = ready(gw)
    assert (status, body["status"]) == (200, "ready")


@pytest.mark.asyncio
async def test_a_half_open_breaker_lets_a_single_probe_through(gw: GatewayServer,
                                                               up: FakeUpstream) -> None:
    up.set_default("mini-up", server_error())
    async with gw.aclient() as client:
        for _ in range(2):   # 2 + 1 failures trip fake/mini
            await client.chat.completions.create(model="fake/mini", messages=user("hi"),
                                                 extra_body={"models": ["fake/mid"]})
        assert up.call_count("mini-up") == 3
        await asyncio.sleep(COOLDOWN_S)
        up.set_default("mini-up", Ok(delay_s=0.3))   # recovered, but slow

        answers = await asyncio.gather(*(
            client.chat.completions.create(model="fake/mini", messages=user("hi"),
                                           extra_body={"models": ["fake/mid"]})
            for _ in range(5)))

    assert up.call_count("mini-up") == 4               # one probe while half-open
    assert sorted(a.model for a in answers) == ["fake/mid"] * 4 + ["fake/mini"]

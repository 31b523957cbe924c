"""Fallbacks and retries against a misbehaving upstream: 429 with Retry-After, 5xx, hangs, streams cut
before and after the first chunk, requests the upstream refuses, and chains that fail entirely."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from llmroute.testing.behaviours import (
    CutStream,
    Error,
    ErrorMidStream,
    Hang,
    bad_request,
    content_policy,
    context_length_exceeded,
    model_not_found,
    overloaded,
    rate_limited,
    server_error,
    unauthorized,
)
from llmroute.testing.upstream import FakeUpstream

from .support import UPSTREAM_KEY, GatewayServer, Serve, assert_openai_error, upstream_models, user

FAST_TIMEOUT = {"providers": {"fake": {"timeout": {"first_byte_s": 0.3}},
                              "fakeant": {"timeout": {"first_byte_s": 0.3}}}}


def test_429_waits_retry_after_then_retries_the_same_model(client: openai.OpenAI,
                                                           up: FakeUpstream) -> None:
    up.script("mini-up", rate_limited(0.3))

    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi there"))

    first, second = up.requests
    assert (first.model, second.model) == ("mini-up", "mini-up")
    waited = second.timestamp - first.timestamp
    assert 0.3 <= waited < 0.3 + 0.5
    assert raw.parse().model == "fake/mini"
    assert raw.headers["x-llmroute-attempts"] == "2"


def test_429_with_a_retry_after_beyond_the_limit_falls_back_at_once(client: openai.OpenAI,
                                                                    up: FakeUpstream) -> None:
    up.script("mini-up", rate_limited(30))   # max_retry_after_s is 1

    started = time.monotonic()
    resp = client.chat.completions.create(model="auto", messages=user("hi there"))

    assert time.monotonic() - started < 1.0
    assert upstream_models(up) == ["mini-up", "claude-up"]
    assert resp.model == "anthropic-ish/claude"


def test_backoff_between_retries_of_a_5xx(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"resilience": {"retry": {"backoff_base_s": 0.2, "backoff_max_s": 1, "jitter": 0}}})
    up.script("mini-up", server_error())

    with gw.client() as client:
        client.chat.completions.create(model="fake/mini", messages=user("hi"))

    first, second = up.requests
    # the backoff is a loop timer, which asyncio and uvloop may fire up to their clock resolution
    # early, and the upstream stamps arrivals on the wall clock: CI once saw 0.19998 s
    assert 0.19 <= second.timestamp - first.timestamp < 0.6


def test_two_500s_fall_back_to_the_next_model_of_the_tier(client: openai.OpenAI,
                                                          up: FakeUpstream) -> None:
    up.script("big-up", server_error(), server_error(502))

    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=user("debug my python code please"))

    assert upstream_models(up) == ["big-up", "big-up", "huge-up"]
    assert raw.parse().model == "fake/huge"
    assert raw.headers["x-llmroute-model"] == "fake/huge"
    assert raw.headers["x-llmroute-attempts"] == "3"


def test_a_single_500_is_retried_on_the_same_model(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.script("mini-up", server_error())

    resp = client.chat.completions.create(model="auto", messages=user("hi there"))

    assert upstream_models(up) == ["mini-up", "mini-up"]
    assert resp.model == "fake/mini"


def test_overloaded_anthropic_falls_back_along_the_request_models(client: openai.OpenAI,
                                                                  up: FakeUpstream) -> None:
    up.script("claude-up", overloaded(), overloaded())

    resp = client.chat.completions.create(model="anthropic-ish/claude", messages=user("hi"),
                                          extra_body={"models": ["fake/mid"]})

    assert upstream_models(up) == ["claude-up", "claude-up", "mid-up"]
    assert resp.model == "fake/mid"


def test_a_hang_times_out_and_falls_back(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(FAST_TIMEOUT)
    up.set_default("mini-up", Hang())

    started = time.monotonic()
    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi"))

    elapsed = time.monotonic() - started
    assert upstream_models(up) == ["mini-up", "mini-up", "claude-up"]
    assert raw.parse().model == "anthropic-ish/claude"
    assert 0.6 <= elapsed < 2.0   # two first-byte timeouts of 0.3 s, then the fallback


def test_a_hung_stream_times_out_and_falls_back(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(FAST_TIMEOUT)
    up.set_default("mini-up", Hang())

    with gw.client() as client:
        chunks = list(client.chat.completions.create(model="auto", messages=user("hi"), stream=True))

    assert upstream_models(up) == ["mini-up", "mini-up", "claude-up"]
    assert {c.model for c in chunks} == {"anthropic-ish/claude"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo from claude-up: hi"


def test_the_request_deadline_cuts_a_slow_chain(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"resilience": {"deadline_s": 0.5}})
    up.set_default("mini-up", Hang())   # first_byte_s is 5: only the deadline can end this

    started = time.monotonic()
    with gw.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="fake/mini", messages=user("hi"))

    assert time.monotonic() - started < 2.0
    assert caught.value.status_code in (502, 504)
    error = assert_openai_error({"error": caught.value.body})
    assert [(a["model"], a["error"]) for a in error["attempts"]] == [("fake/mini", "timeout")]


def test_a_stream_cut_before_the_first_chunk_falls_back(client: openai.OpenAI,
                                                        up: FakeUpstream) -> None:
    up.script("mini-up", CutStream(after_chunks=0), CutStream(after_chunks=0))

    chunks = list(client.chat.completions.create(model="auto", messages=user("hi"), stream=True))

    assert upstream_models(up) == ["mini-up", "mini-up", "claude-up"]
    assert {c.model for c in chunks} == {"anthropic-ish/claude"}


def test_a_connection_closed_without_an_answer_falls_back(client: openai.OpenAI,
                                                          up: FakeUpstream) -> None:
    up.script("mini-up", CutStream(), CutStream())   # non-streaming: the socket closes, no reply

    resp = client.chat.completions.create(model="auto", messages=user("hi"))

    assert upstream_models(up) == ["mini-up", "mini-up", "claude-up"]
    assert resp.model == "anthropic-ish/claude"


@pytest.mark.parametrize("behaviour", [CutStream(after_chunks=3), ErrorMidStream(after_chunks=3),
                                       ErrorMidStream(after_chunks=3, error=server_error())])
def test_a_stream_broken_after_chunks_were_sent_raises_in_the_sdk(
        client: openai.OpenAI, up: FakeUpstream, behaviour: Any) -> None:
    up.script("mini-up", behaviour)
    stream = client.chat.completions.create(model="auto", messages=user("one two three four five"),
                                            stream=True)
    received: list[str] = []

    with pytest.raises((openai.APIError, openai.APIConnectionError)) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    assert received, "the first chunks were relayed before the failure"
    assert "".join(received) != "echo from mini-up: one two three four five"
    assert upstream_models(up) == ["mini-up"]        # no fallback once bytes were sent
    assert UPSTREAM_KEY not in str(caught.value)


def test_an_anthropic_stream_cut_midway_raises_in_the_sdk(client: openai.OpenAI,
                                                          up: FakeUpstream) -> None:
    up.script("claude-up", CutStream(after_chunks=5))
    stream = client.chat.completions.create(model="anthropic-ish/claude",
                                            messages=user("one two three four five"), stream=True)

    with pytest.raises((openai.APIError, openai.APIConnectionError)):
        for _ in stream:
            pass
    assert upstream_models(up) == ["claude-up"]


@pytest.mark.asyncio
async def test_a_stream_broken_midway_raises_in_the_async_sdk(gw: GatewayServer,
                                                              up: FakeUpstream) -> None:
    up.script("mini-up", ErrorMidStream(after_chunks=3))
    async with gw.aclient() as client:
        stream = await client.chat.completions.create(model="fake/mini",
                                                      messages=user("one two three four"),
                                                      stream=True)
        with pytest.raises((openai.APIError, openai.APIConnectionError)):
            async for _ in stream:
                pass


def test_a_bad_request_is_neither_retried_nor_fallen_back(client: openai.OpenAI,
                                                          up: FakeUpstream) -> None:
    up.script("mini-up", bad_request("Invalid value for 'logit_bias'.", param="logit_bias"))

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=user("hi"))

    assert up.call_count("mini-up") == 1
    assert up.call_count() == 1
    assert caught.value.status_code == 400
    error = assert_openai_error({"error": caught.value.body})
    assert "logit_bias" in error["message"]
    assert error["type"] == "invalid_request_error"


def test_context_length_falls_back_to_a_larger_window(client: openai.OpenAI,
                                                      up: FakeUpstream) -> None:
    # fake/mid (32k) overflows: fake/mini (16k) is skipped, fake/big (128k) answers.
    up.script("mid-up", context_length_exceeded(40000, 32000))

    resp = client.chat.completions.create(model="fake/mid", messages=user("a long document"),
                                          extra_body={"models": ["fake/mini", "fake/big"]})

    assert upstream_models(up) == ["mid-up", "big-up"]
    assert resp.model == "fake/big"


def test_context_length_with_no_larger_window_is_a_400(client: openai.OpenAI,
                                                       up: FakeUpstream) -> None:
    up.script("mini-up", context_length_exceeded(20000, 16000))

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake/mini", messages=user("a long document"))

    assert up.call_count() == 1
    error = assert_openai_error({"error": caught.value.body})
    assert error["code"] == "context_length_exceeded"


def test_a_content_refusal_goes_to_the_content_policy_chain(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"resilience": {"content_policy_fallbacks": ["fake/safe"]}})
    up.script("mini-up", content_policy())

    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi"))

    # not retried, and the tier's own fallback (claude) is replaced by the content-policy chain
    assert upstream_models(up) == ["mini-up", "safe-up"]
    assert raw.parse().model == "fake/safe"
    assert raw.headers["x-llmroute-attempts"] == "2"


def test_a_content_refusal_without_a_chain_reaches_the_client(client: openai.OpenAI,
                                                              up: FakeUpstream) -> None:
    up.script("mini-up", content_policy())

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=user("hi"))

    assert upstream_models(up) == ["mini-up"]
    error = assert_openai_error({"error": caught.value.body})
    assert error["code"] == "content_policy_violation"


def test_every_model_failing_is_a_502_listing_each_attempt(client: openai.OpenAI,
                                                           up: FakeUpstream) -> None:
    up.set_default("*", server_error())

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.with_raw_response.create(model="auto", messages=user("hi"))

    assert caught.value.status_code == 502
    error = assert_openai_error({"error": caught.value.body})
    assert error["code"] == "all_upstreams_failed"
    assert [(a["model"], a["error"]) for a in error["attempts"]] == [
        ("fake/mini", "server"), ("fake/mini", "server"),
        ("anthropic-ish/claude", "server"), ("anthropic-ish/claude", "server")]
    assert all(a["message"] for a in error["attempts"])
    assert caught.value.response.headers["x-llmroute-attempts"] == "4"
    assert caught.value.response.headers["x-llmroute-request-id"].startswith("req_")


def test_every_model_rate_limited_is_a_503(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("*", rate_limited(0.05))

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="auto", messages=user("hi"))

    assert caught.value.status_code == 503
    error = assert_openai_error({"error": caught.value.body})
    assert {a["error"] for a in error["attempts"]} == {"rate_limit"}
    assert {a["model"] for a in error["attempts"]} == {"fake/mini", "anthropic-ish/claude"}
    # Every model said when to come back (50 ms): so does the gateway, in the form the SDKs read.
    headers = caught.value.response.headers
    assert headers["retry-after"] == "1"
    assert 1 <= int(headers["retry-after-ms"]) <= 50


def test_a_long_upstream_retry_after_reaches_the_client(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default("*", rate_limited(20))

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="auto", messages=user("hi"))

    assert caught.value.status_code == 503
    headers = caught.value.response.headers
    assert 19 <= int(headers["retry-after"]) <= 20
    assert 19_000 <= int(headers["retry-after-ms"]) <= 20_000


@pytest.mark.parametrize(("behaviour", "kind"), [
    (unauthorized(), "auth"),
    (model_not_found("mini-up"), "not_found"),
    (Error(403, "Project does not have access", type="permission_error"), "permission"),
])
def test_deployment_errors_fall_back_without_a_retry(client: openai.OpenAI, up: FakeUpstream,
                                                     behaviour: Error, kind: str) -> None:
    up.script("mini-up", behaviour)

    resp = client.chat.completions.create(model="fake/mini", messages=user("hi"),
                                          extra_body={"models": ["fake/mid"]})

    assert upstream_models(up) == ["mini-up", "mid-up"]
    assert resp.model == "fake/mid"


def test_a_failing_stream_chain_is_an_http_error_not_a_stream(client: openai.OpenAI,
                                                              up: FakeUpstream) -> None:
    up.set_default("*", server_error())

    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="fake/mini", messages=user("hi"), stream=True)

    assert caught.value.status_code == 502
    error = assert_openai_error({"error": caught.value.body})
    assert [a["model"] for a in error["attempts"]] == ["fake/mini", "fake/mini"]


def test_an_upstream_key_rejection_never_leaks_the_key(serve: Serve, up: FakeUpstream) -> None:
    wrong = "sk-wrong-key-0123456789-DONOTLEAK"
    gw = serve(environ={"FAKE_OPENAI_KEY": wrong})

    with gw.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="fake/mini", messages=user("hi"))

    [request] = up.requests   # auth errors are not retried on the same deployment
    assert request.headers["authorization"] == f"Bearer {wrong}"
    assert caught.value.status_code == 502
    assert wrong not in caught.value.response.text
    assert wrong not in str(dict(caught.value.response.headers))


def test_anthropic_429_waits_retry_after_then_retries(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.script("claude-up", rate_limited(0.2))

    resp = client.chat.completions.create(model="anthropic-ish/claude", messages=user("hi"))

    first, second = up.requests
    assert (first.model, second.model) == ("claude-up", "claude-up")
    assert 0.2 <= second.timestamp - first.timestamp < 0.7
    assert resp.model == "anthropic-ish/claude"


def test_an_anthropic_stream_cut_before_the_first_chunk_falls_back(client: openai.OpenAI,
                                                                   up: FakeUpstream) -> None:
    up.script("claude-up", CutStream(after_chunks=0), CutStream(after_chunks=0))

    chunks = list(client.chat.completions.create(model="anthropic-ish/claude", messages=user("hi"),
                                                 stream=True, extra_body={"models": ["fake/mid"]}))

    assert upstream_models(up) == ["claude-up", "claude-up", "mid-up"]
    assert {c.model for c in chunks} == {"fake/mid"}


def test_an_anthropic_error_event_midway_raises_in_the_sdk(client: openai.OpenAI,
                                                           up: FakeUpstream) -> None:
    up.script("claude-up", ErrorMidStream(after_chunks=5))
    stream = client.chat.completions.create(model="anthropic-ish/claude",
                                            messages=user("one two three four five"), stream=True,
                                            extra_body={"models": ["fake/mid"]})

    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert "overloaded" in str(caught.value).lower()
    assert upstream_models(up) == ["claude-up"]


def test_a_model_whose_api_cannot_take_the_request_falls_back(client: openai.OpenAI,
                                                              up: FakeUpstream) -> None:
    # n=2 cannot be expressed for the Anthropic Messages API: that model is passed over, never called,
    # and the next model of the request's chain answers.
    reply = client.chat.completions.create(
        model="anthropic-ish/claude", messages=user("hi"), n=2,
        extra_body={"models": ["fake/mid"]})
    assert reply.model == "fake/mid"
    assert upstream_models(up) == ["mid-up"]


def test_no_model_able_to_take_the_request_is_a_400(client: openai.OpenAI,
                                                   up: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="anthropic-ish/claude", messages=user("hi"), n=2)
    assert "cannot take this request" in caught.value.message
    assert caught.value.body["param"] == "n"  # type: ignore[index]
    assert up.requests == []

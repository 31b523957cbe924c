"""AWS Bedrock through a real gateway: the openai SDK as the client, the fake upstream speaking
Converse / ConverseStream (event-stream frames) and verifying every request's SigV4 signature."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from llmroute.catalog import resolve_model
from llmroute.testing._bedrock_wire import FAKE_AWS_CREDENTIALS
from llmroute.testing._wire import count_tokens, prompt_tokens_for
from llmroute.testing.behaviours import (
    CutStream,
    Error,
    ErrorMidStream,
    Hang,
    bad_request,
    rate_limited,
    server_error,
)
from llmroute.testing.upstream import FakeUpstream

from .support import UPSTREAM_KEY, GatewayServer, Serve, upstream_models, user
from .test_ledger import ledger_config, wait_for_entries

HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
MODEL = f"bedrock/{HAIKU}"
AWS_ENV = {"AWS_ACCESS_KEY_ID": FAKE_AWS_CREDENTIALS.access_key_id,
           "AWS_SECRET_ACCESS_KEY": FAKE_AWS_CREDENTIALS.secret_access_key}
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def bedrock_config(up: FakeUpstream) -> dict[str, Any]:
    """A `type: bedrock` entry pointed at the fake, and one Bedrock model priced by the catalog."""
    return {
        "providers": {"bedrock": {"type": "bedrock", "base_url": up.base_url,
                                  "region": "us-east-1",
                                  "timeout": {"connect_s": 2, "first_byte_s": 5, "total_s": 10}}},
        "models": {MODEL: {}},
    }


@pytest.fixture
def bgw(serve: Serve, up: FakeUpstream) -> GatewayServer:
    return serve(bedrock_config(up), environ=AWS_ENV)


@pytest.fixture
def bclient(bgw: GatewayServer) -> Any:
    with bgw.client() as c:
        yield c


def bedrock_requests(up: FakeUpstream) -> list[Any]:
    return [r for r in up.requests if r.protocol == "bedrock"]


def catalog_cost(prompt: int, completion: int, read: int = 0, written: int = 0) -> Decimal:
    spec = resolve_model(MODEL, None)
    assert spec is not None and spec.input_per_m and spec.output_per_m
    assert spec.cached_input_per_m is not None and spec.cache_write_per_m is not None
    fresh = prompt - read - written
    return (fresh * spec.input_per_m + completion * spec.output_per_m
            + read * spec.cached_input_per_m + written * spec.cache_write_per_m) / 1_000_000


def test_a_completion_is_signed_translated_and_priced_from_the_catalog(
        bclient: openai.OpenAI, up: FakeUpstream) -> None:
    messages = [{"role": "system", "content": "Be brief."}, *user("hello bedrock")]
    raw = bclient.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, max_tokens=50, temperature=0.2, stop=["END"])
    resp = raw.parse()

    assert resp.choices[0].message.content == f"echo from {HAIKU}: hello bedrock"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == MODEL
    [sent] = bedrock_requests(up)
    assert sent.path == f"/model/{HAIKU}/converse"
    assert sent.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={FAKE_AWS_CREDENTIALS.access_key_id}/")
    assert "/us-east-1/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.body["system"] == [{"text": "Be brief."}]
    assert sent.body["messages"] == [{"role": "user", "content": [{"text": "hello bedrock"}]}]
    assert sent.body["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2,
                                            "stopSequences": ["END"]}
    prompt = prompt_tokens_for(sent.body["messages"], sent.body["system"])
    completion = count_tokens(resp.choices[0].message.content or "")
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (prompt, completion)
    # priced as LiteLLM's map prices anthropic.claude-3-5-haiku on Bedrock: $0.80 / $4 per 1M
    assert Decimal(raw.headers["x-llmroute-cost-usd"]) == catalog_cost(prompt, completion)
    assert catalog_cost(1_000_000, 1_000_000) == Decimal("4.8")


def test_a_stream_arrives_as_openai_chunks(bclient: openai.OpenAI, up: FakeUpstream) -> None:
    chunks = list(bclient.chat.completions.create(
        model=MODEL, messages=user("stream me a few words please"), stream=True,
        stream_options={"include_usage": True}))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"echo from {HAIKU}: stream me a few words please"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    [sent] = bedrock_requests(up)
    assert sent.path == f"/model/{HAIKU}/converse-stream"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == count_tokens(text)
    assert chunks[-1].usage.prompt_tokens == prompt_tokens_for(sent.body["messages"])


@pytest.mark.parametrize("stream", [False, True])
def test_a_forced_tool_call_comes_back_as_tool_calls(bclient: openai.OpenAI, up: FakeUpstream,
                                                       stream: bool) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "messages": user("weather in Paris?"),
                              "tools": WEATHER,
                              "tool_choice": {"type": "function",
                                              "function": {"name": "get_weather"}}}
    if stream:
        chunks = list(bclient.chat.completions.create(**kwargs, stream=True))
        calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
        name = "".join(t.function.name or "" for t in calls if t.function)
        arguments = "".join(t.function.arguments or "" for t in calls if t.function)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        resp = bclient.chat.completions.create(**kwargs)
        [call] = resp.choices[0].message.tool_calls or []
        name, arguments = call.function.name, call.function.arguments
        finish = resp.choices[0].finish_reason
    assert (name, json.loads(arguments), finish) == ("get_weather", {}, "tool_calls")
    [sent] = bedrock_requests(up)
    assert sent.body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "description": "The weather in a city",
                                "inputSchema": {"json": WEATHER[0]["function"]["parameters"]}}}],
        "toolChoice": {"tool": {"name": "get_weather"}}}


def test_tool_results_go_back_as_tool_use_and_tool_result_blocks(bclient: openai.OpenAI,
                                                                 up: FakeUpstream) -> None:
    messages = [*user("weather in Paris?"),
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "tooluse_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "sunny, 21C"}]
    resp = bclient.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER)

    assert resp.choices[0].message.content is not None
    [sent] = bedrock_requests(up)
    assert sent.body["messages"][1:] == [
        {"role": "assistant", "content": [{"toolUse": {
            "toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [{"toolResult": {
            "toolUseId": "tooluse_1", "content": [{"text": "sunny, 21C"}]}}]}]


def test_cache_control_becomes_a_cache_point_and_cached_tokens_are_priced(
        bclient: openai.OpenAI, up: FakeUpstream) -> None:
    long_system = "You are a meticulous assistant. " * 200  # ~1600 tokens: above the minimum
    messages = [{"role": "system", "content": [{"type": "text", "text": long_system,
                                                "cache_control": {"type": "ephemeral"}}]},
                *user("first question")]
    first = bclient.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
    second = bclient.chat.completions.with_raw_response.create(model=MODEL, messages=messages)

    sent = bedrock_requests(up)[0]
    assert sent.body["system"] == [{"text": long_system}, {"cachePoint": {"type": "default"}}]
    wrote, read = first.parse().usage, second.parse().usage
    assert wrote is not None and read is not None
    assert wrote.prompt_tokens_details is not None and read.prompt_tokens_details is not None
    wrote_details = wrote.prompt_tokens_details.model_dump()
    read_details = read.prompt_tokens_details.model_dump()
    # the first call writes the whole prompt to the cache, the second reads most of it
    assert wrote_details["cache_write_tokens"] == wrote.prompt_tokens > 1024
    assert wrote_details["cached_tokens"] == 0
    read_tokens = read_details["cached_tokens"]
    assert 1024 <= read_tokens <= read.prompt_tokens
    assert not read_details.get("cache_write_tokens")
    assert Decimal(first.headers["x-llmroute-cost-usd"]) == catalog_cost(
        wrote.prompt_tokens, wrote.completion_tokens, written=wrote.prompt_tokens)
    assert Decimal(second.headers["x-llmroute-cost-usd"]) == catalog_cost(
        read.prompt_tokens, read.completion_tokens, read=read_tokens)


# Each Bedrock exception, as the fake answers it: the kind it maps to, and the status the client
# gets after its one attempt (400: the request's fault; else the gateway's all-attempts-failed
# status: 503 when the upstream was busy, else 502).
ERRORS = [
    ("ThrottlingException", rate_limited(), "rate_limit", 503),
    ("ValidationException", bad_request("Malformed input request"), "bad_request", 400),
    ("ValidationException (too long)",
     Error(400, "Input is too long for requested model.", type="ValidationException"),
     "context_window", 400),
    ("AccessDeniedException", Error(403, "You don't have access to the model",
                                    type="AccessDeniedException"), "permission", 502),
    ("ResourceNotFoundException", Error(404, "The model does not exist",
                                        type="ResourceNotFoundException"), "not_found", 502),
    ("ModelTimeoutException", Error(408, "Model timed out", type="ModelTimeoutException"),
     "timeout", 502),
    ("ServiceUnavailableException", Error(503, "Service unavailable",
                                          type="ServiceUnavailableException"), "overloaded", 503),
    ("ModelNotReadyException", Error(429, "Model is not ready", type="ModelNotReadyException"),
     "overloaded", 503),
    ("ModelErrorException", Error(424, "The model failed", type="ModelErrorException"),
     "server", 502),
    ("InternalServerException", server_error(), "server", 502),
]


@pytest.mark.parametrize(("name", "error", "kind", "status"), ERRORS, ids=[e[0] for e in ERRORS])
def test_every_bedrock_exception_is_mapped_at_the_edge(
        serve: Serve, up: FakeUpstream, name: str, error: Error, kind: str, status: int) -> None:
    gw = serve({**bedrock_config(up), "resilience": {"retry": {"max_attempts": 1}}},
               environ=AWS_ENV)
    up.set_default(HAIKU, error)

    with gw.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))

    exception = name.split()[0]
    assert caught.value.status_code == status
    assert isinstance(caught.value.body, dict)
    if status == 400:  # the client's own request: answered as is, never fallen back
        code = "context_length_exceeded" if kind == "context_window" else exception
        assert caught.value.body["code"] == code
        assert f"bedrock returned 400 {exception}: {error.message}" in caught.value.message
    else:  # the attempt failed with this kind (retryable kinds make the gateway 502/503)
        assert f"{kind}: bedrock returned {error.status} {exception}" in caught.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_a_hung_bedrock_is_a_timeout_fallen_back_from_before_any_text(serve: Serve, up: FakeUpstream,
                                                 stream: bool) -> None:
    config = bedrock_config(up)
    config["providers"]["bedrock"]["timeout"] = {"connect_s": 1, "first_byte_s": 0.3,
                                                 "total_s": 2}
    gw = serve({**config, "resilience": {"retry": {"max_attempts": 1}}}, environ=AWS_ENV)
    up.set_default(HAIKU, Hang(after_chunks=2 if stream else None))

    with gw.client() as client:
        if stream:  # stalls after messageStart and the first words: the error reaches the client
            with pytest.raises(openai.APIError) as caught:
                list(client.chat.completions.create(model=MODEL, messages=user("hi"),
                                                    stream=True))
            assert "bedrock timeout" in caught.value.message
        else:
            resp = client.chat.completions.create(model=MODEL, messages=user("hi"),
                                                  extra_body={"models": ["fake/mini"]})
            assert resp.model == "fake/mini"
    assert upstream_models(up)[0] == HAIKU


def test_a_failing_bedrock_model_falls_back_to_another_provider(
        bclient: openai.OpenAI, up: FakeUpstream) -> None:
    up.set_default(HAIKU, server_error())

    raw = bclient.chat.completions.with_raw_response.create(
        model=MODEL, messages=user("hi"), extra_body={"models": ["fake/mini"]})

    assert raw.parse().model == "fake/mini"
    assert upstream_models(up) == [HAIKU, HAIKU, "mini-up"]


def test_an_exception_frame_before_any_text_falls_back(bclient: openai.OpenAI,
                                                       up: FakeUpstream) -> None:
    up.set_default(HAIKU, ErrorMidStream(after_chunks=0, error=Error(
        503, "Bedrock is unavailable", type="ServiceUnavailableException")))

    chunks = list(bclient.chat.completions.create(
        model=MODEL, messages=user("hi"), stream=True, extra_body={"models": ["fake/mini"]}))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo from mini-up: hi"
    assert upstream_models(up)[-1] == "mini-up"


@pytest.mark.parametrize(("behaviour", "said"), [
    (ErrorMidStream(after_chunks=3, error=Error(429, "Too many tokens, please wait",
                                                type="ThrottlingException")),
     "throttlingException: Too many tokens, please wait"),
    (ErrorMidStream(after_chunks=3, error=Error(424, "The model failed",
                                                type="ModelStreamErrorException")),
     "modelStreamErrorException: The model failed"),
    (CutStream(after_chunks=3), "bedrock connection: RemoteProtocolError"),
])
def test_a_stream_that_fails_after_text_ends_in_an_error_the_client_sees(
        bclient: openai.OpenAI, up: FakeUpstream, behaviour: Any, said: str) -> None:
    up.set_default(HAIKU, behaviour)
    received: list[str] = []

    with pytest.raises(openai.APIError) as caught:
        for chunk in bclient.chat.completions.create(
                model=MODEL, messages=user("one two three four"), stream=True):
            received.extend(c.delta.content or "" for c in chunk.choices)

    assert "".join(received) == f"echo from {HAIKU}: "[:len("".join(received))]
    assert received  # the first words arrived before the failure
    assert said in caught.value.message


def test_a_bad_signature_is_refused(serve: Serve, up: FakeUpstream,
                                    caplog: pytest.LogCaptureFixture) -> None:
    wrong = {**AWS_ENV, "AWS_SECRET_ACCESS_KEY": "not-the-secret-key-at-all"}
    gw = serve(bedrock_config(up), environ=wrong)

    with gw.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))

    assert "not-the-secret-key-at-all" not in caplog.text

    assert caught.value.status_code == 502
    assert "not-the-secret-key-at-all" not in str(caught.value.body)
    assert "InvalidSignatureException" in str(caught.value.body)
    assert len(bedrock_requests(up)) == 1  # auth failures are not retried


def test_a_session_token_echoed_by_the_upstream_is_scrubbed(serve: Serve,
                                                             up: FakeUpstream) -> None:
    token = "FQoGZXIvYXdzEXAMPLE-session-token-42"
    gw = serve(bedrock_config(up), environ={**AWS_ENV, "AWS_SESSION_TOKEN": token})
    up.set_default(HAIKU, Error(403, f"The security token {token} is expired",
                                type="ExpiredTokenException"))

    with gw.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))

    assert token not in str(caught.value.body)
    assert "The security token [redacted] is expired" in caught.value.message
    assert "auth: bedrock returned 403 ExpiredTokenException" in caught.value.message
    assert bedrock_requests(up)[0].headers["x-amz-security-token"] == token  # it was sent, signed
    assert "x-amz-security-token" in bedrock_requests(up)[0].headers["authorization"]


def test_no_credentials_fail_without_a_request(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(bedrock_config(up), environ={"AWS_ACCESS_KEY_ID": ""})

    with gw.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))

    assert caught.value.status_code == 502
    assert "AWS_ACCESS_KEY_ID" in str(caught.value.body)
    assert bedrock_requests(up) == []


def test_the_fake_refuses_unsigned_and_tampered_requests(up: FakeUpstream) -> None:
    from llmroute.providers.aws_auth import Frozen, sign

    url = f"{up.base_url}/model/{HAIKU}/converse"
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()
    headers = {"content-type": "application/json"}
    signed = sign("POST", url, headers, body, Frozen(FAKE_AWS_CREDENTIALS.access_key_id,
                                                     FAKE_AWS_CREDENTIALS.secret_access_key,
                                                     None), "us-east-1")
    with httpx.Client() as http:
        unsigned = http.post(url, content=body, headers=headers)
        tampered = http.post(url, content=body.replace(b"hi", b"yo"), headers={**headers, **signed})
        ok = http.post(url, content=body, headers={**headers, **signed})

    assert unsigned.status_code == tampered.status_code == 403
    assert unsigned.headers["x-amzn-errortype"].startswith("MissingAuthenticationTokenException")
    assert tampered.headers["x-amzn-errortype"].startswith("InvalidSignatureException")
    assert "signature" in tampered.json()["message"]
    assert ok.status_code == 200 and ok.json()["stopReason"] == "end_turn"


def test_a_bedrock_api_key_is_sent_as_a_bearer_token_instead_of_a_signature(
        serve: Serve, up: FakeUpstream) -> None:
    config = bedrock_config(up)
    config["providers"]["bedrock"]["api_key_env"] = "BEDROCK_KEY"
    good = serve(config, environ={"BEDROCK_KEY": UPSTREAM_KEY})  # no AWS keys at all
    bad = serve(config, environ={"BEDROCK_KEY": "ABSKnot-the-right-key-000"})

    with good.client() as client:
        resp = client.chat.completions.create(model=MODEL, messages=user("hi"))
    with bad.client() as client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=user("hi"))

    assert resp.choices[0].message.content == f"echo from {HAIKU}: hi"
    first, second = bedrock_requests(up)
    assert first.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert second.headers["authorization"] == "Bearer ABSKnot-the-right-key-000"
    assert "x-amz-date" not in first.headers
    assert "auth: bedrock returned 403 UnrecognizedClientException" in caught.value.message
    assert "ABSKnot-the-right-key-000" not in caught.value.message


def test_streamed_bedrock_requests_are_ledgered_with_cache_tokens_and_cost(
        serve: Serve, up: FakeUpstream, tmp_path: Path) -> None:
    gw = serve({**bedrock_config(up), **ledger_config(tmp_path)}, environ=AWS_ENV)
    messages = [{"role": "system", "content": [{"type": "text", "text": "s" * 8000,
                                                "cache_control": {"type": "ephemeral"}}]},
                *user("hello")]
    with gw.client() as client:
        for _ in range(2):
            text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
                model=MODEL, messages=messages, stream=True) if c.choices)
            assert text == f"echo from {HAIKU}: hello"

    first, second = sorted(wait_for_entries(tmp_path, 2), key=lambda e: e.ts)
    prompt = prompt_tokens_for([{"content": "hello"}], "s" * 8000)   # 2002
    completion = count_tokens(text)
    assert (first.model, first.stream, first.input_tokens, first.output_tokens) == (
        MODEL, True, prompt, completion)
    assert (first.cached_tokens, first.cache_write_tokens) == (0, prompt)
    assert first.cost_usd == catalog_cost(prompt, completion, written=prompt)
    assert second.cached_tokens is not None and 1024 <= second.cached_tokens <= prompt
    assert second.cost_usd == catalog_cost(prompt, completion, read=second.cached_tokens)
    assert second.cost_usd < first.cost_usd

"""Azure OpenAI and Google Gemini deployments, end to end: the openai SDK → a served gateway → the
fake upstream speaking each service's real wire (Azure's paths, api-version and api-key / Entra
auth; Gemini's generateContent / streamGenerateContent with x-goog-api-key). The same contract
as the OpenAI and Anthropic deployments: completion, streaming, tools both ways, usage and cost
(cached tokens priced from the bundled LiteLLM map), every error kind mapped, fallbacks across
providers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from llmroute.catalog import bundled_prices
from llmroute.testing.behaviours import (
    CutStream,
    Error,
    ErrorMidStream,
    content_policy,
    context_length_exceeded,
    model_not_found,
    overloaded,
    rate_limited,
    server_error,
    unauthorized,
)
from llmroute.testing.upstream import FakeUpstream

from .support import UPSTREAM_KEY, GatewayServer, Serve, assert_openai_error, user

AZURE = "azure/gpt-4o"
GEMINI = "gemini/gemini-2.5-flash"
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}]


def providers(up: FakeUpstream, azure: dict[str, Any] | None = None) -> dict[str, Any]:
    timeout = {"connect_s": 2, "first_byte_s": 5, "total_s": 10}
    return {
        "providers": {
            "azure": {"type": "azure", "base_url": up.base_url, "api_key_env": "FAKE_OPENAI_KEY",
                      "timeout": timeout,
                      "azure": azure or {"deployments": {"gpt-4o": "prod-4o"}}},
            "gemini": {"type": "gemini", "base_url": up.base_url + "/v1beta",
                       "api_key_env": "FAKE_OPENAI_KEY", "timeout": timeout},
        },
        "models": {AZURE: {}, GEMINI: {}},
    }


@pytest.fixture
def gw(serve: Serve, up: FakeUpstream) -> GatewayServer:
    return serve(providers(up))


@pytest.fixture
def client(gw: GatewayServer) -> Any:
    with gw.client() as c:
        yield c


def expected_cost(model: str, usage: Any) -> Decimal:
    """The answer's cost from the bundled LiteLLM prices (USD per token)."""
    price = bundled_prices()[model]
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details and details.cached_tokens else 0
    return ((usage.prompt_tokens - cached) * Decimal(str(price["input"]))
            + cached * Decimal(str(price["cached_input"]))
            + usage.completion_tokens * Decimal(str(price["output"])))


# ------------------------------------------------------------------------------------ Azure


def test_azure_completion_goes_to_the_deployment_with_api_version_and_api_key(
        client: openai.OpenAI, up: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(model=AZURE, messages=user("hello"))

    resp = raw.parse()
    assert resp.model == AZURE
    assert resp.choices[0].message.content == "echo from prod-4o: hello"
    (request,) = up.requests
    assert request.protocol == "azure" and request.model == "prod-4o"
    assert request.path == "/openai/deployments/prod-4o/chat/completions"
    assert request.headers["api-key"] == UPSTREAM_KEY
    assert "authorization" not in request.headers
    assert Decimal(raw.headers["x-llmroute-cost-usd"]) == expected_cost(AZURE, resp.usage)


def test_azure_without_api_version_is_what_azure_answers_a_wrong_path(up: FakeUpstream) -> None:
    reply = httpx.post(up.base_url + "/openai/deployments/prod-4o/chat/completions",
                       headers={"api-key": UPSTREAM_KEY}, json={"messages": []})
    assert reply.status_code == 404 and reply.json()["error"]["message"] == "Resource not found"


def test_azure_entra_token_and_the_v1_api(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(providers(up, {"api_version": "v1", "auth": "entra",
                              "deployments": {"gpt-4o": "prod-4o"}}))
    with gw.client() as client:
        resp = client.chat.completions.create(model=AZURE, messages=user("hi"))

    assert resp.choices[0].message.content == "echo from prod-4o: hi"
    (request,) = up.requests
    assert request.path == "/openai/v1/chat/completions"
    assert request.body is not None and request.body["model"] == "prod-4o"
    assert request.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "api-key" not in request.headers


def test_a_wrong_key_is_an_auth_error_on_both_and_never_leaks(serve: Serve,
                                                              up: FakeUpstream) -> None:
    gw = serve(providers(up), environ={"FAKE_OPENAI_KEY": "wrong-key-123456"})
    with gw.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=AZURE, messages=user("hi"),
                                       extra_body={"models": [GEMINI]})
    error = assert_openai_error({"error": caught.value.body})
    assert [(a["model"], a["error"]) for a in error["attempts"]] == [(AZURE, "auth"),
                                                                      (GEMINI, "auth")]
    assert "wrong-key-123456" not in json.dumps(caught.value.body)


def test_azure_streaming_with_usage(client: openai.OpenAI, up: FakeUpstream) -> None:
    stream = client.chat.completions.create(model=AZURE, messages=user("stream me please"),
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo from prod-4o: stream me please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0 and usage.prompt_tokens > 0


def test_azure_filter_results_chunk_is_not_relayed(gw: GatewayServer, up: FakeUpstream) -> None:
    with gw.http() as http:
        reply = http.post("/v1/chat/completions",
                          json={"model": AZURE, "stream": True, "messages": user("a b")})
    events = [json.loads(line[6:]) for line in reply.text.splitlines()
              if line.startswith("data: {")]
    assert up.requests and events
    assert all(e["object"] == "chat.completion.chunk" and e["id"] for e in events)
    assert all("prompt_filter_results" not in e for e in events)


def test_azure_tools_both_ways(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model=AZURE, messages=user("weather in Paris?"), tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"

    follow = [*user("weather in Paris?"),
              {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
              {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21}'}]
    answer = client.chat.completions.create(model=AZURE, messages=follow, tools=TOOLS)
    assert answer.choices[0].message.content
    sent = up.requests[-1].body
    assert sent is not None and sent["messages"][2]["tool_call_id"] == call.id


def test_azure_cached_tokens_are_priced_as_cached(client: openai.OpenAI, up: FakeUpstream) -> None:
    long_prompt = "Policy text. " * 600  # ≈ 1950 tokens: past the 1024-token caching floor
    messages = [{"role": "system", "content": long_prompt}, *user("question")]
    client.chat.completions.create(model=AZURE, messages=messages)
    raw = client.chat.completions.with_raw_response.create(model=AZURE, messages=messages)

    usage = raw.parse().usage
    assert usage.prompt_tokens_details.cached_tokens > 1000
    cost = Decimal(raw.headers["x-llmroute-cost-usd"])
    assert cost == expected_cost(AZURE, usage)
    uncached = usage.prompt_tokens * Decimal("2.5e-6") + usage.completion_tokens * Decimal("1e-5")
    assert cost < uncached


def test_azure_content_filter_is_a_content_policy_error(client: openai.OpenAI,
                                                         up: FakeUpstream) -> None:
    up.script("prod-4o", content_policy("content_filter"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=AZURE, messages=user("something bad"))
    assert up.call_count("prod-4o") == 1
    assert assert_openai_error({"error": caught.value.body})["code"] == "content_filter"


def test_azure_429_waits_its_retry_after_then_retries(client: openai.OpenAI,
                                                       up: FakeUpstream) -> None:
    up.script("prod-4o", rate_limited(0.3))
    raw = client.chat.completions.with_raw_response.create(model=AZURE, messages=user("hi"))
    first, second = up.requests
    assert 0.3 <= second.timestamp - first.timestamp < 0.8
    assert raw.headers["x-llmroute-attempts"] == "2"


@pytest.mark.parametrize(("behaviour", "kind"), [
    (unauthorized(), "auth"),                             # 401 {"code": "401", "Access denied…"}
    (model_not_found("prod-4o"), "not_found"),            # 404 DeploymentNotFound
    (Error(403, "Forbidden", type="permission_error"), "permission"),
    (server_error(), "server"),
    (overloaded(), "overloaded"),
    (rate_limited(0.05), "rate_limit"),                   # 429 "Please retry after N seconds"
    (context_length_exceeded(), "context_window"),
])
def test_every_azure_error_kind_is_mapped(client: openai.OpenAI, up: FakeUpstream,
                                          behaviour: Error, kind: str) -> None:
    up.set_default("prod-4o", behaviour)
    up.set_default("gemini-2.5-flash", server_error())
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=AZURE, messages=user("hi"),
                                       extra_body={"models": [GEMINI]})
    error = assert_openai_error({"error": caught.value.body})
    assert {a["error"] for a in error["attempts"] if a["model"] == AZURE} == {kind}, error
    if kind == "context_window":  # falls back to Gemini's larger window, which fails too
        assert [a["model"] for a in error["attempts"]][-1] == GEMINI


def test_a_gemini_request_without_a_key_is_refused_as_gemini_does(serve: Serve,
                                                                  up: FakeUpstream) -> None:
    config = providers(up)
    config["providers"]["gemini"]["api_key_env"] = "UNSET_GEMINI_KEY"
    gw = serve(config)
    with gw.client() as client, pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=GEMINI, messages=user("hi"))
    error = assert_openai_error({"error": caught.value.body})
    assert [a["error"] for a in error["attempts"]] == ["auth"]
    assert "403 PERMISSION_DENIED" in error["attempts"][0]["message"]
    assert "unregistered callers" in error["attempts"][0]["message"]


# ------------------------------------------------------------------------------------ Gemini


def test_gemini_completion_translates_the_request(client: openai.OpenAI,
                                                  up: FakeUpstream) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=GEMINI, messages=[{"role": "system", "content": "Be brief."}, *user("hello")],
        max_tokens=50, temperature=0.2, top_p=0.9, stop=["END"],
        response_format={"type": "json_schema", "json_schema": {
            "name": "a", "schema": {"type": "object", "properties": {"x": {"type": "string"}}}}})

    resp = raw.parse()
    assert resp.model == GEMINI and resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.content == "echo from gemini-2.5-flash: hello"
    (request,) = up.requests
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.headers["x-goog-api-key"] == UPSTREAM_KEY
    body = request.body
    assert body is not None
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hello"}]}]
    assert body["generationConfig"] == {
        "maxOutputTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"x": {"type": "string"}}}}
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert Decimal(raw.headers["x-llmroute-cost-usd"]) == expected_cost(GEMINI, resp.usage)


def test_gemini_streaming_with_usage(client: openai.OpenAI, up: FakeUpstream) -> None:
    chunks = list(client.chat.completions.create(
        model=GEMINI, messages=user("stream this one"), stream=True,
        stream_options={"include_usage": True}))

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo from gemini-2.5-flash: stream this one"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert up.requests[0].path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def test_gemini_tools_both_ways(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(
        model=GEMINI, messages=user("weather in Paris?"), tools=TOOLS, tool_choice="required")
    assert up.requests[0].body is not None
    declared = up.requests[0].body["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "get_weather"
    assert declared["parametersJsonSchema"] == TOOLS[0]["function"]["parameters"]
    assert up.requests[0].body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    assert resp.choices[0].message.tool_calls[0].function.name == "get_weather"

    forced = client.chat.completions.create(
        model=GEMINI, messages=user("weather in Paris?"), tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert up.requests[1].body is not None and up.requests[1].body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    call = forced.choices[0].message.tool_calls[0]
    assert forced.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {}

    follow = [*user("weather in Paris?"),
              {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
              {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21}'}]
    answer = client.chat.completions.create(model=GEMINI, messages=follow, tools=TOOLS)
    assert answer.choices[0].message.content
    body = up.requests[-1].body
    assert body is not None and body["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {
            "name": "get_weather", "response": {"celsius": 21}}}]}]


def test_gemini_streamed_tool_call(client: openai.OpenAI, up: FakeUpstream) -> None:
    chunks = list(client.chat.completions.create(
        model=GEMINI, messages=user("weather? [[tool:get_weather]]"), tools=TOOLS, stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert [(c.index, c.function.name, c.function.arguments) for c in calls] == [
        (0, "get_weather", "{}")]
    assert calls[0].id
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_gemini_cached_content_tokens_are_priced_as_cached(client: openai.OpenAI,
                                                            up: FakeUpstream) -> None:
    messages = [{"role": "system", "content": "Policy text. " * 600}, *user("question")]
    client.chat.completions.create(model=GEMINI, messages=messages)
    raw = client.chat.completions.with_raw_response.create(model=GEMINI, messages=messages)

    usage = raw.parse().usage
    assert usage.prompt_tokens_details.cached_tokens > 1000
    assert Decimal(raw.headers["x-llmroute-cost-usd"]) == expected_cost(GEMINI, usage)


def test_what_gemini_cannot_express_is_a_400_naming_the_param(client: openai.OpenAI,
                                                               up: FakeUpstream) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=GEMINI, messages=user("hi"), logprobs=True)
    assert assert_openai_error({"error": caught.value.body})["param"] == "logprobs"
    assert up.requests == []


def test_a_gemini_safety_block_is_a_content_policy_error(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({**providers(up), "resilience": {"content_policy_fallbacks": [AZURE]}})
    up.script("gemini-2.5-flash", content_policy())
    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(model=GEMINI, messages=user("x"))
    assert [r.model for r in up.requests] == ["gemini-2.5-flash", "prod-4o"]
    assert raw.parse().model == AZURE


def test_a_gemini_safety_block_without_a_chain_reaches_the_client(client: openai.OpenAI,
                                                                  up: FakeUpstream) -> None:
    up.script("gemini-2.5-flash", content_policy())
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=GEMINI, messages=user("x"))
    assert assert_openai_error({"error": caught.value.body})["code"] == "content_filter"


@pytest.mark.parametrize(("behaviour", "kind"), [
    (unauthorized(), "auth"),                           # 400 INVALID_ARGUMENT API_KEY_INVALID
    (model_not_found("gemini-2.5-flash"), "not_found"),  # 404 NOT_FOUND
    (Error(403, "Permission denied", "PERMISSION_DENIED"), "permission"),
    (server_error(), "server"),                          # 500 INTERNAL
    (overloaded(), "overloaded"),                        # 503 UNAVAILABLE
    (rate_limited(0.05), "rate_limit"),                  # 429 RESOURCE_EXHAUSTED + RetryInfo
    (context_length_exceeded(), "context_window"),       # 400 "exceeds the maximum number"
])
def test_every_gemini_error_kind_is_mapped(client: openai.OpenAI, up: FakeUpstream,
                                           behaviour: Error, kind: str) -> None:
    up.set_default("gemini-2.5-flash", behaviour)
    up.set_default("prod-4o", server_error())
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=GEMINI, messages=user("hi"),
                                       extra_body={"models": [AZURE]})
    error = assert_openai_error({"error": caught.value.body})
    kinds = {a["error"] for a in error["attempts"] if a["model"] == GEMINI}
    assert kinds == {kind}, error
    # a prompt too long for Gemini is not sent to a smaller window: the client gets a 400
    assert caught.value.status_code == (400 if kind == "context_window" else 502)


def test_gemini_429_waits_its_retry_delay_then_retries(client: openai.OpenAI,
                                                       up: FakeUpstream) -> None:
    up.script("gemini-2.5-flash", rate_limited(0.3))  # RetryInfo retryDelay "0.3s", no header
    raw = client.chat.completions.with_raw_response.create(model=GEMINI, messages=user("hi"))
    first, second = up.requests
    assert 0.3 <= second.timestamp - first.timestamp < 0.8
    assert raw.headers["x-llmroute-attempts"] == "2"


def test_azure_failing_falls_back_to_gemini_and_back(client: openai.OpenAI,
                                                     up: FakeUpstream) -> None:
    up.set_default("prod-4o", overloaded())
    resp = client.chat.completions.create(model=AZURE, messages=user("hi"),
                                          extra_body={"models": [GEMINI]})
    assert resp.model == GEMINI
    up.reset()
    up.set_default("gemini-2.5-flash", server_error())
    stream = client.chat.completions.create(model=GEMINI, messages=user("hi"), stream=True,
                                            extra_body={"models": [AZURE]})
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == \
        "echo from prod-4o: hi"


def test_a_gemini_stream_cut_before_its_first_chunk_falls_back(client: openai.OpenAI,
                                                               up: FakeUpstream) -> None:
    up.script("gemini-2.5-flash", CutStream(after_chunks=0), CutStream(after_chunks=0))
    stream = client.chat.completions.create(model=GEMINI, messages=user("a b c"), stream=True,
                                            extra_body={"models": [AZURE]})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "echo from prod-4o: a b c"


def test_a_gemini_stream_cut_midway_raises_in_the_sdk(client: openai.OpenAI,
                                                       up: FakeUpstream) -> None:
    up.script("gemini-2.5-flash", CutStream(after_chunks=2))
    stream = client.chat.completions.create(model=GEMINI, messages=user("one two three four"),
                                            stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_a_gemini_error_midway_raises_in_the_sdk(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.script("gemini-2.5-flash", ErrorMidStream(after_chunks=2))
    stream = client.chat.completions.create(model=GEMINI, messages=user("one two three four"),
                                            stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


@pytest.mark.parametrize(("model", "served_as"), [(AZURE, "prod-4o"),
                                                  (GEMINI, "gemini-2.5-flash")])
def test_a_key_the_upstream_echoes_is_scrubbed(client: openai.OpenAI, up: FakeUpstream,
                                              model: str, served_as: str) -> None:
    up.set_default(served_as, Error(500, f"bad key {UPSTREAM_KEY}", "INTERNAL"))
    with pytest.raises(openai.InternalServerError) as caught:  # the client's hook checks too
        client.chat.completions.create(model=model, messages=user("hi"))
    text = json.dumps(caught.value.body)
    assert UPSTREAM_KEY not in text and "bad key [redacted]" in text

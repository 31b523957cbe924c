"""The Anthropic Messages API (`POST /v1/messages`) through a real gateway, with the official
`anthropic` SDK as the client: text, tools round trip, system blocks, streaming (the SDK's
`messages.stream` helper), model `auto`, an OpenAI-protocol and an Anthropic-protocol model
behind, errors as the SDK's typed exceptions, the ledger entry with its cost, a budget refusing,
count_tokens."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from llmroute.server.auth import hash_key
from llmroute.testing.behaviours import CutStream, rate_limited, server_error
from llmroute.testing.upstream import FakeUpstream

from .support import OPEN_KEY, GatewayServer, Serve, no_leak
from .test_ledger import ledger_config, wait_for_entries

CLAUDE = "anthropic-ish/claude"
MODELS = [("fake/mini", "mini-up", "openai"), (CLAUDE, "claude-up", "anthropic")]
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def sdk(gw: GatewayServer, api_key: str | None = OPEN_KEY, **options: Any) -> anthropic.Anthropic:
    """The anthropic SDK pointed at the gateway; every response is checked for leaks."""
    http = anthropic.DefaultHttpxClient(event_hooks={"response": [no_leak]})
    return anthropic.Anthropic(base_url=gw.url, api_key=api_key, max_retries=0, timeout=20.0,
                               http_client=http, **options)


@pytest.mark.parametrize(("model", "upstream_model", "protocol"), MODELS)
def test_text_with_system_blocks(serve: Serve, up: FakeUpstream, model: str,
                                 upstream_model: str, protocol: str) -> None:
    client = sdk(serve())
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=64, stop_sequences=["END"],
        extra_body={"temperature": 0.5, "top_k": 5},  # this SDK takes sampling keys so
        metadata={"user_id": "u-42"},
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hello there"}])
    msg = raw.parse()
    assert msg.type == "message" and msg.role == "assistant" and msg.model == model
    assert msg.id.startswith("msg_") and msg.stop_reason == "end_turn"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == f"echo from {upstream_model}: hello there"  # type: ignore[union-attr]
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    assert raw.headers["x-llmroute-model"] == model
    (seen,) = up.requests
    assert seen.protocol == protocol and seen.body is not None
    if protocol == "openai":
        assert seen.body["messages"][0]["role"] == "system"
        assert seen.body["messages"][0]["content"][0]["text"] == "Be brief."
        assert seen.body["max_tokens"] == 64 and seen.body["stop"] == ["END"]
        assert seen.body["user"] == "u-42"
    else:  # the Anthropic translation hands the marked system block on as it came
        assert seen.body["system"] == [{"type": "text", "text": "Be brief.",
                                        "cache_control": {"type": "ephemeral"}}]
        assert seen.body["max_tokens"] == 64 and seen.body["stop_sequences"] == ["END"]
        assert seen.body["metadata"] == {"user_id": "u-42"}
        assert (seen.body["temperature"], seen.body["top_k"]) == (0.5, 5)


@pytest.mark.parametrize(("model", "upstream_model", "protocol"), MODELS)
def test_tools_round_trip(serve: Serve, up: FakeUpstream, model: str, upstream_model: str,
                          protocol: str) -> None:
    client = sdk(serve())
    ask = {"role": "user", "content": "What is the weather in Paris? [[tool:get_weather]]"}
    first = client.messages.create(model=model, max_tokens=64, tools=[WEATHER],  # type: ignore[list-item]
                                   tool_choice={"type": "auto"}, messages=[ask])  # type: ignore[list-item]
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {} and call.id
    answer = [{"role": "assistant", "content": [
                  {"type": "tool_use", "id": call.id, "name": call.name, "input": call.input}]},
              {"role": "user", "content": [
                  {"type": "tool_result", "tool_use_id": call.id, "content": "18 C, sunny"},
                  {"type": "text", "text": "thanks"}]}]
    second = client.messages.create(model=model, max_tokens=64, tools=[WEATHER],  # type: ignore[list-item]
                                    messages=[ask, *answer])  # type: ignore[list-item]
    assert second.stop_reason == "end_turn"
    text = second.content[0].text  # type: ignore[union-attr]
    # the fake echoes the last user turn: Anthropic's holds the tool result too
    assert text == f"echo from {upstream_model}: " + (
        "thanks" if protocol == "openai" else "18 C, sunnythanks")
    body = up.requests[-1].body
    assert body is not None
    if protocol == "openai":  # tool_use -> tool_calls, tool_result -> a tool message
        assert body["tools"][0]["function"]["name"] == "get_weather"
        assert body["messages"][1]["tool_calls"][0]["id"] == call.id
        assert body["messages"][2] == {"role": "tool", "tool_call_id": call.id,
                                       "content": "18 C, sunny"}
    else:  # and back again: the Anthropic upstream sees its own blocks
        assert body["messages"][1]["content"][0]["type"] == "tool_use"
        result = body["messages"][2]["content"][0]
        assert result["type"] == "tool_result" and result["tool_use_id"] == call.id


@pytest.mark.parametrize(("model", "upstream_model", "protocol"), MODELS)
def test_stream_helper(serve: Serve, up: FakeUpstream, model: str, upstream_model: str,
                       protocol: str) -> None:
    client = sdk(serve())
    with client.messages.stream(model=model, max_tokens=64,
                                messages=[{"role": "user", "content": "stream me please"}]) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    assert len(pieces) > 1  # word by word, as the upstream sent it
    assert "".join(pieces) == f"echo from {upstream_model}: stream me please"
    assert final.model == model and final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    assert up.requests[0].body is not None and up.requests[0].body["stream"] is True


@pytest.mark.parametrize(("model", "upstream_model", "protocol"), MODELS)
def test_stream_tool_use(serve: Serve, up: FakeUpstream, model: str, upstream_model: str,
                         protocol: str) -> None:
    client = sdk(serve())
    with client.messages.stream(model=model, max_tokens=64, tools=[WEATHER],  # type: ignore[list-item]
                                messages=[{"role": "user", "content": "go [[tool:get_weather]]"}]
                                ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    (call,) = [b for b in final.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {}


def test_stream_events_in_order(serve: Serve) -> None:
    gw = serve()
    body = {"model": "fake/mini", "max_tokens": 32, "stream": True,
            "messages": [{"role": "user", "content": "two words"}]}
    with httpx.Client(base_url=gw.url, timeout=20) as http, http.stream(
            "POST", "/v1/messages", json=body, headers={"x-api-key": OPEN_KEY}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        names = [line.removeprefix("event: ") for line in response.iter_lines()
                 if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_stream_cut_midway_ends_with_an_error_event(serve: Serve, up: FakeUpstream) -> None:
    client = sdk(serve())
    up.script("mini-up", CutStream(after_chunks=3))
    with pytest.raises(anthropic.APIStatusError) as caught, client.messages.stream(
            model="fake/mini", max_tokens=64,
            messages=[{"role": "user", "content": "a long answer please"}]) as s:
        for _ in s.text_stream:
            pass
    assert caught.value.body["error"]["type"] in {"api_error", "overloaded_error"}  # type: ignore[index]


def test_auto_routes_like_chat_completions(serve: Serve, up: FakeUpstream) -> None:
    client = sdk(serve())
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    msg = raw.parse()
    assert raw.headers["x-llmroute-router"] and raw.headers["x-llmroute-tier"]
    assert msg.model == raw.headers["x-llmroute-model"]
    assert up.requests and msg.content[0].text.startswith("echo from ")  # type: ignore[union-attr]


def test_falls_back_across_providers(serve: Serve, up: FakeUpstream) -> None:
    client = sdk(serve())
    up.set_default("mini-up", server_error(500))  # `hi` is simple: fake/mini, then the Claude
    raw = client.messages.with_raw_response.create(
        model="auto", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    msg = raw.parse()
    assert msg.model == CLAUDE and msg.content[0].text == "echo from claude-up: hi"  # type: ignore[union-attr]
    assert [r.protocol for r in up.requests] == ["openai", "openai", "anthropic"]
    assert raw.headers["x-llmroute-attempts"] == "3"


def test_every_model_busy_is_overloaded_with_retry_after(serve: Serve, up: FakeUpstream) -> None:
    client = sdk(serve())
    up.set_default("*", rate_limited(20))
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model="auto", max_tokens=64,
                               messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 503
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert 19 <= int(caught.value.response.headers["retry-after"]) <= 20


def test_the_response_cache_serves_a_repeat(serve: Serve, up: FakeUpstream) -> None:
    client = sdk(serve({"cache": {"response": {"enabled": True}}}))
    ask: dict[str, Any] = {"model": "fake/mini", "max_tokens": 64, "extra_body": {
        "temperature": 0}, "messages": [{"role": "user", "content": "cache me"}]}
    first = client.messages.with_raw_response.create(**ask)
    again = client.messages.with_raw_response.create(**ask)
    assert (first.headers["x-llmroute-cache"], again.headers["x-llmroute-cache"]) == (
        "miss", "hit")
    assert again.parse().content == first.parse().content
    with client.messages.stream(**ask) as s:  # the stored answer, replayed as events
        assert s.get_final_message().content[0].text == "echo from mini-up: cache me"  # type: ignore[union-attr]
    assert len(up.requests) == 1


def test_a_coding_agents_request(serve: Serve, up: FakeUpstream) -> None:
    """Shaped like what Claude Code sends: `?beta=true`, beta headers, thinking, keys the
    gateway does not know, cache marks everywhere, a tool schema with `$schema`."""
    gw = serve()
    mark = {"type": "ephemeral"}
    body = {
        "model": CLAUDE, "max_tokens": 32000, "temperature": 1, "stream": True,
        "metadata": {"user_id": "user_abc_account_def_session_ghi"},
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "context_management": {"edits": []},
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": mark}],
        "tools": [{"name": "Bash", "description": "Run a command.", "input_schema": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"command": {"type": "string"}}, "required": ["command"],
            "additionalProperties": False}, "cache_control": mark}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "list the files", "cache_control": mark}]}]}
    headers = {"x-api-key": OPEN_KEY, "anthropic-version": "2023-06-01",
               "anthropic-beta": "interleaved-thinking-2025-05-14"}
    with httpx.Client(base_url=gw.url, timeout=20) as http:
        answer = http.post("/v1/messages?beta=true", json=body, headers=headers)
        counted = http.post("/v1/messages/count_tokens?beta=true", headers=headers, json={
            k: body[k] for k in ("model", "system", "tools", "messages")})
    assert answer.status_code == 200, answer.text
    assert "event: message_stop" in answer.text
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    sent = up.requests[0].body
    assert sent is not None and sent["tools"][0]["cache_control"] == mark
    assert sent["messages"][0]["content"][0]["cache_control"] == mark


def test_bad_request_is_an_anthropic_400(serve: Serve, up: FakeUpstream) -> None:
    gw = serve()
    client = sdk(gw)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="fake/mini", max_tokens=64, messages=[
            {"role": "user", "content": [{"type": "video", "url": "x"}]}])  # type: ignore[list-item]
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("messages.0.content.0.type: ")
    with httpx.Client(base_url=gw.url, timeout=20) as http:  # what the SDK would not send
        missing = http.post("/v1/messages", headers={"x-api-key": OPEN_KEY},
                            json={"model": "auto", "messages": []})
        broken = http.post("/v1/messages", headers={"x-api-key": OPEN_KEY}, content=b"{nope")
    assert missing.status_code == 400 and broken.status_code == 400
    assert missing.json()["error"]["message"].startswith("max_tokens: ")
    assert broken.json()["error"]["type"] == "invalid_request_error"
    assert not up.requests


def test_unknown_model_is_not_found(serve: Serve) -> None:
    client = sdk(serve())
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="nope/model", max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_gateway_keys_as_x_api_key_or_bearer(serve: Serve) -> None:
    key = "gw-key-messages-1"
    gw = serve({"keys": [{"name": "team", "hash": hash_key(key)}]})
    hello = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.AuthenticationError) as caught:
        sdk(gw, api_key="wrong").messages.create(model="fake/mini", max_tokens=8,
                                                 messages=hello)  # type: ignore[arg-type]
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with httpx.Client(base_url=gw.url, timeout=20) as http:  # no key at all: both ways named
        missing = http.post("/v1/messages", json={"model": "fake/mini", "max_tokens": 8,
                                                  "messages": hello})
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    assert "x-api-key" in missing.json()["error"]["message"]
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    assert sdk(gw, api_key=key).messages.create(model="fake/mini", max_tokens=8,
                                                messages=hello).content  # type: ignore[arg-type]
    bearer = sdk(gw, api_key=None, auth_token=key)
    assert bearer.messages.create(model="fake/mini", max_tokens=8,
                                  messages=hello).content  # type: ignore[arg-type]


def test_ledger_entry_with_cost(serve: Serve, tmp_path: Path) -> None:
    client = sdk(serve(ledger_config(tmp_path)))
    raw = client.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=64, messages=[{"role": "user", "content": "cost me"}])
    msg = raw.parse()
    (entry,) = wait_for_entries(tmp_path, 1)
    assert entry.request_id == raw.headers["x-llmroute-request-id"]
    assert entry.model == CLAUDE and entry.http_status == 200
    assert entry.cost_usd is not None and entry.cost_usd > 0
    assert entry.cost_usd == Decimal(raw.headers["x-llmroute-cost-usd"])
    assert (entry.input_tokens, entry.output_tokens) == (msg.usage.input_tokens,
                                                         msg.usage.output_tokens)


def test_budget_refuses_with_retry_after(serve: Serve, up: FakeUpstream) -> None:
    limits = [{"name": "tiny", "scope": "global", "window": "day", "usd": "0.000001"}]
    client = sdk(serve({"limits": limits}))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="fake/mini", max_tokens=1000,
                               messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.response.headers["x-llmroute-limit"] == "tiny"
    assert not up.requests


def test_count_tokens_grows_with_the_prompt(serve: Serve, up: FakeUpstream) -> None:
    client = sdk(serve())
    short = client.messages.count_tokens(model="fake/mini",
                                         messages=[{"role": "user", "content": "hi"}])
    long = client.messages.count_tokens(model="fake/mini", system="You answer in French.",
                                        messages=[{"role": "user", "content": "hi " * 200}])
    assert 0 < short.input_tokens < long.input_tokens
    assert not up.requests


def test_the_openapi_document_describes_it(serve: Serve) -> None:
    key = "gw-key-messages-2"
    gw = serve({"keys": [{"name": "team", "hash": hash_key(key)}]})
    with httpx.Client(base_url=gw.url, timeout=20) as http:  # the key as the SDK sends it
        doc = http.get("/openapi.json", headers={"x-api-key": key}).json()
    create = doc["paths"]["/v1/messages"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/MessagesRequest")
    error = create["responses"]["429"]["content"]["application/json"]["schema"]["$ref"]
    assert doc["components"]["schemas"][error.rsplit("/", 1)[1]]["required"] == ["type", "error"]
    assert {"apiKey": []} in doc["security"]
    assert doc["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"

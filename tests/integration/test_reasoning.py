"""Extended thinking / reasoning through a real gateway, with the official SDKs as clients:
`/v1/messages` (anthropic SDK) forwards `thinking` and returns thinking blocks with their
signatures (streaming: thinking_delta / signature_delta), sends them back in a tool round trip
(the fake Anthropic refuses a final assistant turn with tool use that does not start with one,
as Anthropic does); chat (openai SDK) maps `reasoning_effort` onto an Anthropic budget and
returns `reasoning_content`, `thinking_blocks` and reasoning tokens; an OpenAI-compatible
upstream gets `thinking` as a `reasoning_effort`."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from llmroute.testing.upstream import FakeUpstream

from .support import OPEN_KEY, GatewayServer, Serve, no_leak

CLAUDE = "anthropic-ish/claude"
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
THINK = {"type": "enabled", "budget_tokens": 2000}


def sdk(gw: GatewayServer) -> anthropic.Anthropic:
    http = anthropic.DefaultHttpxClient(event_hooks={"response": [no_leak]})
    return anthropic.Anthropic(base_url=gw.url, api_key=OPEN_KEY, max_retries=0, timeout=20.0,
                               http_client=http)


def test_messages_thinking_comes_back_with_its_signature(serve: Serve, up: FakeUpstream) -> None:
    msg = sdk(serve()).messages.create(
        model=CLAUDE, max_tokens=4000, thinking=THINK,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "why is the sky blue"}])
    assert [b.type for b in msg.content] == ["thinking", "text"]
    thinking = msg.content[0]
    assert thinking.type == "thinking"
    assert thinking.thinking == "thinking about: why is the sky blue"
    assert thinking.signature.startswith("sig-fake")
    (seen,) = up.requests
    assert seen.body is not None and seen.body["thinking"] == THINK
    assert seen.body["max_tokens"] == 4000


def test_messages_stream_has_thinking_and_signature_deltas(serve: Serve, up: FakeUpstream) -> None:
    with sdk(serve()).messages.stream(
            model=CLAUDE, max_tokens=4000, thinking=THINK,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "why is the sky blue"}]) as stream:
        kinds = [(e.type, getattr(getattr(e, "delta", None), "type", None)) for e in stream]
        final = stream.get_final_message()
    assert ("content_block_delta", "thinking_delta") in kinds
    assert ("content_block_delta", "signature_delta") in kinds
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "thinking about: why is the sky blue"  # type: ignore[union-attr]
    assert final.content[0].signature.startswith("sig-fake")  # type: ignore[union-attr]
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_tool_use_with_thinking_sends_the_blocks_back(serve: Serve, up: FakeUpstream,
                                                      stream: bool) -> None:
    client = sdk(serve())
    ask: Any = {"role": "user", "content": "weather in Paris? [[tool:get_weather]]"}
    args: dict[str, Any] = {"model": CLAUDE, "max_tokens": 4000, "thinking": THINK,
                            "tools": [WEATHER]}
    if stream:
        with client.messages.stream(messages=[ask], **args) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(messages=[ask], **args)
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    call = first.content[1]
    turn = {"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                             for b in first.content]}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,  # type: ignore[union-attr]
                                           "content": "sunny"}]}
    second = client.messages.create(messages=[ask, turn, result], **args)
    assert second.stop_reason == "end_turn"
    sent = up.requests[-1].body
    assert sent is not None
    assert sent["messages"][1]["content"][0] == {
        "type": "thinking", "thinking": first.content[0].thinking,  # type: ignore[union-attr]
        "signature": first.content[0].signature}  # type: ignore[union-attr]


def test_messages_bad_thinking_is_a_400_naming_the_param(serve: Serve, up: FakeUpstream) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk(serve()).messages.create(
            model=CLAUDE, max_tokens=4000,
            thinking={"type": "enabled", "budget_tokens": 100},
            messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["error"]["message"].startswith(  # type: ignore[index]
        "thinking.budget_tokens: ")
    assert not up.requests


def test_chat_reasoning_effort_reaches_anthropic_as_a_budget(serve: Serve, up: FakeUpstream) -> None:
    with serve().client() as client:
        answer = client.chat.completions.create(
            model=CLAUDE, max_tokens=100, reasoning_effort="high",
            messages=[{"role": "user", "content": "prove it"}])
    (seen,) = up.requests
    assert seen.body is not None
    assert seen.body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert seen.body["max_tokens"] == 4196  # over the budget: the answer keeps its 100
    message: Any = answer.choices[0].message
    assert message.reasoning_content == "thinking about: prove it"
    (block,) = message.thinking_blocks
    assert block["type"] == "thinking" and block["thinking"] == "thinking about: prove it"
    assert block["signature"].startswith("sig-fake")
    assert answer.usage is not None and answer.usage.completion_tokens_details is not None
    assert answer.usage.completion_tokens_details.reasoning_tokens == 6  # 24 characters / 4


def test_chat_stream_has_reasoning_deltas(serve: Serve, up: FakeUpstream) -> None:
    with serve().client() as client:
        chunks = list(client.chat.completions.create(
            model=CLAUDE, max_tokens=100, reasoning_effort="low", stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "prove it"}]))
    deltas: list[Any] = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    blocks = [b for d in deltas for b in (getattr(d, "thinking_blocks", None) or ())]
    assert reasoning == "thinking about: prove it"
    (block,) = blocks
    assert block["thinking"] == "" and block["signature"].startswith("sig-fake")
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 6
    assert up.requests[0].body["thinking"]["budget_tokens"] == 1024  # type: ignore[index]


def test_openai_upstream_gets_thinking_as_an_effort(serve: Serve, up: FakeUpstream) -> None:
    with serve().client() as client:
        client.chat.completions.create(
            model="fake/mini", extra_body={"thinking": {"type": "enabled", "budget_tokens": 2048}},
            messages=[{"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "hello",  # type: ignore[misc]
                       "thinking_blocks": [{"type": "thinking", "thinking": "t",
                                            "signature": "s"}]},
                      {"role": "user", "content": "again"}])
    (seen,) = up.requests
    assert seen.body is not None and "thinking" not in seen.body
    assert seen.body["reasoning_effort"] == "medium"
    assert "thinking_blocks" not in seen.body["messages"][1]


@pytest.mark.parametrize(("extra", "param"), [
    ({"thinking": {"type": "enabled", "budget_tokens": 10}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "sometimes"}}, "thinking.type"),
    ({"reasoning_effort": 3}, "reasoning_effort"),
])
def test_chat_bad_reasoning_is_a_400(serve: Serve, up: FakeUpstream, extra: dict[str, Any],
                                     param: str) -> None:
    with serve().http() as http:
        resp = http.post("/v1/chat/completions", headers={"authorization": f"Bearer {OPEN_KEY}"},
                         json={"model": CLAUDE, "messages": [{"role": "user", "content": "hi"}],
                               **extra})
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param
    assert not up.requests


def test_an_unknown_effort_is_a_400_only_where_it_needs_a_budget(serve: Serve,
                                                                 up: FakeUpstream) -> None:
    gw = serve()
    with gw.http() as http:
        auth = {"authorization": f"Bearer {OPEN_KEY}"}
        body = {"messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "galaxy"}
        claude = http.post("/v1/chat/completions", headers=auth, json={**body, "model": CLAUDE})
        mini = http.post("/v1/chat/completions", headers=auth, json={**body, "model": "fake/mini"})
    assert claude.status_code == 400 and claude.json()["error"]["param"] == "reasoning_effort"
    assert mini.status_code == 200  # new levels keep working where they pass as they are
    assert [r.body["reasoning_effort"] for r in up.requests if r.body] == ["galaxy"]


RESPONSES_WEATHER = {"type": "function", "name": "get_weather", "description": "The weather.",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def test_responses_reasoning_effort_and_items(serve: Serve, up: FakeUpstream) -> None:
    with serve().client() as client:
        response = client.responses.create(model=CLAUDE, input="prove it", max_output_tokens=100,
                                           reasoning={"effort": "medium"})
    assert up.requests[0].body["thinking"] == {  # type: ignore[index]
        "type": "enabled", "budget_tokens": 2048}
    assert [item.type for item in response.output] == ["reasoning", "message"]
    item: Any = response.output[0]
    assert [s.text for s in item.summary] == ["thinking about: prove it"]
    assert item.encrypted_content.startswith("sig-fake")
    assert response.reasoning is not None and response.reasoning.effort == "medium"
    assert response.usage is not None
    assert response.usage.output_tokens_details.reasoning_tokens == 6


def test_responses_stream_reasoning_then_tool_round_trip(serve: Serve, up: FakeUpstream) -> None:
    with serve().client() as client:
        with client.responses.stream(
                model=CLAUDE, input="weather? [[tool:get_weather]]", max_output_tokens=100,
                reasoning={"effort": "low"}, tools=[RESPONSES_WEATHER]) as stream:  # type: ignore[list-item]
            kinds = [event.type for event in stream]
            first = stream.get_final_response()
        assert "response.reasoning_summary_text.delta" in kinds
        assert [item.type for item in first.output] == ["reasoning", "function_call"]
        thought: Any = first.output[0]
        assert "".join(s.text for s in thought.summary) == (
            "thinking about: weather? [[tool:get_weather]]")
        assert thought.encrypted_content.startswith("sig-fake")
        call: Any = first.output[1]
        second = client.responses.create(
            model=CLAUDE, max_output_tokens=100, reasoning={"effort": "low"},
            tools=[RESPONSES_WEATHER],  # type: ignore[list-item]
            input=[{"role": "user", "content": "weather? [[tool:get_weather]]"},
                   thought.model_dump(exclude_none=True),
                   {"type": "function_call", "call_id": call.call_id, "name": call.name,
                    "arguments": call.arguments},
                   {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.status == "completed"
    sent = up.requests[-1].body
    assert sent is not None and sent["messages"][1]["content"][0] == {
        "type": "thinking", "thinking": "thinking about: weather? [[tool:get_weather]]",
        "signature": thought.encrypted_content}


def test_responses_bad_reasoning_is_a_400(serve: Serve, up: FakeUpstream) -> None:
    with serve().client() as client, pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=CLAUDE, input="hi",
                                reasoning={"effort": "low", "summary": "verbose"})  # type: ignore[typeddict-item]
    assert caught.value.body["param"] == "reasoning.summary"  # type: ignore[index]
    assert not up.requests


def test_a_model_that_cannot_take_the_effort_falls_back(serve: Serve, up: FakeUpstream) -> None:
    with serve().client() as client:
        raw = client.chat.completions.with_raw_response.create(
            model=CLAUDE, reasoning_effort="galaxy",  # type: ignore[arg-type]
            extra_body={"models": ["fake/mini"]}, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-llmroute-model"] == "fake/mini"
    assert [r.body["reasoning_effort"] for r in up.requests if r.body] == ["galaxy"]

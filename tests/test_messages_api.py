"""The Messages API translation, pure: Anthropic request -> the core's chat body (and, through
the Anthropic adapter's own translation, back to what came in), chat completion -> message,
chunks -> events. The served endpoint is tested in tests/integration/test_messages_api.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmroute.errors import InvalidRequestError
from llmroute.messages_reply import MessageStream, stop_reason, to_message
from llmroute.messages_request import messages_request
from llmroute.providers.anthropic_wire import (
    WireError,
    from_anthropic_response,
    to_anthropic_request,
)

EPHEMERAL = {"type": "ephemeral"}
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
PDF = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}

#: An agent's request: marked system blocks and tools, a tool round trip, an image, a PDF.
AGENT: dict[str, Any] = {
    "model": "auto", "max_tokens": 512, "temperature": 0.2, "top_k": 7,
    "stop_sequences": ["</done>"], "metadata": {"user_id": "user-9"},
    "system": [{"type": "text", "text": "You are a coding agent."},
               {"type": "text", "text": "Repository rules: be careful.",
                "cache_control": EPHEMERAL}],
    "tools": [{"name": "read_file", "description": "Read a file.",
               "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
               "cache_control": EPHEMERAL}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "Look at this screenshot and the spec."},
            {"type": "image", "source": PNG},
            {"type": "document", "source": PDF, "title": "spec.pdf"}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should read it.", "signature": "sig"},
            {"type": "text", "text": "Reading it."},
            {"type": "tool_use", "id": "toolu_01", "name": "read_file",
             "input": {"path": "a.py"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "print(1)",
             "cache_control": EPHEMERAL},
            {"type": "text", "text": "Now fix it."}]},
    ],
}


def test_an_agent_request_survives_the_round_trip_to_an_anthropic_upstream() -> None:
    req = messages_request(AGENT)
    assert (req.model, req.max_output_tokens, req.user, req.stream) == (
        "auto", 512, "user-9", False)
    back = to_anthropic_request(req.body, "claude-x")
    assert back["system"] == AGENT["system"]
    assert back["tools"] == AGENT["tools"]
    assert back["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    # the assistant's thinking block goes back with its signature (tool use with thinking needs it)
    assert back["messages"] == AGENT["messages"]
    assert (back["temperature"], back["top_k"], back["stop_sequences"], back["metadata"]) == (
        0.2, 7, ["</done>"], {"user_id": "user-9"})


def test_the_chat_body_is_what_an_openai_upstream_reads() -> None:
    body = messages_request(AGENT).body
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    image, document = body["messages"][1]["content"][1:]
    assert image == {"type": "image_url", "image_url": {"url": "data:image/png;base64,"
                                                               "iVBORw0KGgo="}}
    assert document["file"] == {"file_data": "data:application/pdf;base64,JVBERi0xLjQ=",
                                "filename": "spec.pdf"}
    call = body["messages"][2]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == {"path": "a.py"}
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["stop"] == ["</done>"] and body["top_k"] == 7


def test_a_tool_results_images_and_documents_follow_as_a_user_message() -> None:
    body = messages_request({"model": "m", "max_tokens": 5, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "shot",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
            {"type": "text", "text": "here"}, {"type": "image", "source": PNG},
            {"type": "document", "source": PDF}]}]}]}).body
    tool, follow = body["messages"][1:]
    assert tool == {"role": "tool", "tool_call_id": "t",
                    "content": [{"type": "text", "text": "here"}]}
    assert follow["role"] == "user"
    assert [p["type"] for p in follow["content"]] == ["image_url", "file"]


def test_streams_ask_for_usage() -> None:
    req = messages_request({"model": "m", "max_tokens": 5, "stream": True,
                            "messages": [{"role": "user", "content": "hi"}]})
    assert req.stream and req.include_usage


OK: dict[str, Any] = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(("change", "param"), [
    ({"model": None}, "model"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"messages": "hi"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, "messages.0.content.0.type"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/tiff", "data": "x"}}]}]},
     "messages.0.content.0.source.media_type"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {
        "type": "url", "url": "https://x/a.pdf"}}]}]}, "messages.0.content.0.source"),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t",
                                                      "name": "f", "input": []}]}]},
     "messages.0.content.0.input"),
    ({"system": [{"type": "image", "source": PNG}]}, "system.0.type"),
    ({"temperature": 1.5}, "temperature"),
    ({"top_k": -1}, "top_k"),
    ({"stop_sequences": [1]}, "stop_sequences.0"),
    ({"metadata": {"user_id": 3}}, "metadata.user_id"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
    ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
    ({"tool_choice": {"type": "tool", "name": "f"}}, "tool_choice"),
    ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ({"thinking": {"type": "maybe"}}, "thinking.type"),
    ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 512}}, "thinking.budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking.budget_tokens"),  # >= max
    ({"thinking": "on"}, "thinking"),
    ({"stream": "yes"}, "stream"),
    # the chat validation's own rules, named as the Messages API names the field
    ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences"),
    ({"tools": [{"name": "not a name!", "input_schema": {}}]}, "tools.0.name"),
])
def test_bad_requests_name_the_field_as_anthropic_does(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        messages_request({**OK, **change})
    assert caught.value.status == 400 and caught.value.param == param
    assert caught.value.message.startswith(f"{param}: ")


def test_a_tool_result_must_answer_a_tool_use() -> None:
    with pytest.raises(InvalidRequestError) as caught:  # the core's own check, after translation
        messages_request({**OK, "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "nowhere", "content": "x"}]}]})
    assert caught.value.status == 400 and caught.value.param == "messages"
    assert "tool" in caught.value.message


def test_an_anthropic_answer_comes_back_as_it_was() -> None:
    """Anthropic message -> the adapter's chat completion -> the endpoint's message."""
    original = {"id": "msg_01abc", "type": "message", "role": "assistant", "model": "claude-x",
                "content": [{"type": "text", "text": "Let me look."},
                            {"type": "tool_use", "id": "toolu_9", "name": "read_file",
                             "input": {"path": "a.py"}}],
                "stop_reason": "tool_use", "stop_sequence": None,
                "usage": {"input_tokens": 50, "output_tokens": 12,
                          "cache_read_input_tokens": 30, "cache_creation_input_tokens": 20}}
    message = to_message({**from_anthropic_response(original, "anthropic/claude-x", 0)})
    assert message == {**original, "model": "anthropic/claude-x"}


def test_an_openai_answer_as_a_message() -> None:
    completion = {"id": "chatcmpl-7", "model": "openai/gpt-x", "choices": [{
        "message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "f", "arguments": "not json"}}]},
        "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 9,
                  "prompt_tokens_details": {"cached_tokens": 64}}}
    message = to_message(completion)
    assert message["id"] == "msg_7" and message["stop_reason"] == "tool_use"
    assert message["content"] == [{"type": "tool_use", "id": "call_1", "name": "f",
                                   "input": {"_raw_arguments": "not json"}}]
    assert message["usage"] == {"input_tokens": 36, "output_tokens": 9,
                                "cache_read_input_tokens": 64, "cache_creation_input_tokens": 0}


@pytest.mark.parametrize(("finish", "stop"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
    ("content_filter", "refusal"), ("function_call", "tool_use"), (None, "end_turn"),
    ("something_new", "end_turn")])
def test_stop_reasons(finish: str | None, stop: str) -> None:
    assert stop_reason(finish) == stop


def _events(raw: list[bytes]) -> list[dict[str, Any]]:
    out = []
    for event in raw:
        name, data = event.decode().strip().split("\n")
        parsed = json.loads(data.removeprefix("data: "))
        assert name == f"event: {parsed['type']}"
        out.append(parsed)
    return out


def test_a_stream_of_text_then_two_tool_calls() -> None:
    stream = MessageStream("fake/mini", "req_1")
    raw = stream.start()
    chunks: list[dict[str, Any]] = [
        {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"delta": {"content": "Hi "}}]},
        {"choices": [{"delta": {"content": "there"}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {
            "name": "f", "arguments": ""}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {
            "name": "g", "arguments": "{}"}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 4}},
    ]
    for chunk in chunks:
        raw += stream.feed(chunk)
    events = _events(raw + stream.end())
    assert [e["type"] for e in events] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [(e["index"], e["content_block"]["type"]) for e in starts] == [
        (0, "text"), (1, "tool_use"), (2, "tool_use")]
    assert starts[1]["content_block"] == {"type": "tool_use", "id": "c1", "name": "f", "input": {}}
    json_parts = [e["delta"]["partial_json"] for e in events
                  if e["type"] == "content_block_delta" and e["index"] == 1]
    assert json.loads("".join(json_parts)) == {"a": 1}
    delta = events[-2]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert (delta["usage"]["input_tokens"], delta["usage"]["output_tokens"]) == (10, 4)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                  max_size=3),
    max_leaves=12)
BLOCK_TYPES = st.sampled_from(["text", "image", "document", "tool_use", "tool_result",
                               "thinking", "video"])
BLOCK_KEYS = st.sampled_from(["text", "source", "id", "name", "input", "tool_use_id", "content",
                              "cache_control", "title", "type", "media_type", "data", "url"])
NOISE = st.builds(lambda kind, rest: {**rest, "type": kind}, BLOCK_TYPES,
                  st.dictionaries(BLOCK_KEYS, JSON, max_size=4))
SOURCE = st.sampled_from([PNG, PDF, {"type": "url", "url": "https://x/y.png"},
                          {"type": "text", "media_type": "text/plain", "data": "doc"}]) | JSON
#: Blocks of each type with the right fields (and sometimes a wrong one), and noise.
BLOCK = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, st.text(max_size=5) | JSON),
    st.builds(lambda src, kind: {"type": kind, "source": src}, SOURCE,
              st.sampled_from(["image", "document"])),
    st.builds(lambda i, arg: {"type": "tool_use", "id": i, "name": "f", "input": arg},
              st.sampled_from(["t1", "t2"]), st.just({}) | JSON),
    st.builds(lambda i, c: {"type": "tool_result", "tool_use_id": i, "content": c},
              st.sampled_from(["t1", "t2"]),
              st.text(max_size=3) | st.lists(st.just({"type": "text", "text": "r"}) | NOISE,
                                             max_size=2)),
    st.builds(lambda mark: {"type": "text", "text": "m", "cache_control": mark},
              st.just(EPHEMERAL) | JSON),
    NOISE)
TURN = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]) | JSON,
                              "content": st.text(min_size=1, max_size=4) |
                              st.lists(BLOCK, min_size=1, max_size=3) | JSON})
TOOLS = st.lists(st.fixed_dictionaries({"name": st.just("f"), "input_schema": st.just(
    {"type": "object"}) | JSON}), max_size=2)
BODY = st.fixed_dictionaries(
    {"model": st.just("auto"), "max_tokens": st.integers(0, 9),
     "messages": st.lists(TURN, max_size=4) | JSON},
    optional={key: JSON | st.lists(BLOCK, max_size=2) | TOOLS for key in (
        "system", "tools", "tool_choice", "temperature", "top_k", "stop_sequences", "metadata",
        "thinking", "stream")})


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(BODY)
def test_any_body_is_a_request_or_a_400(data: dict[str, Any]) -> None:
    try:
        req = messages_request(data)
    except InvalidRequestError as exc:
        assert exc.status == 400 and exc.param is not None and exc.message
        return
    assert req.body["messages"] and req.max_output_tokens == data["max_tokens"]
    try:  # and an Anthropic upstream's translation takes it, or names what it cannot send
        to_anthropic_request(req.body, "claude-x")
    except WireError as exc:
        assert exc.message

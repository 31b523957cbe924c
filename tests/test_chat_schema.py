"""The chat request schema (chat.py + chat_schema.py): every valid shape of the OpenAI Chat
Completions request passes, every invalid one is a 400 naming the field the way OpenAI does, and
(properties) any JSON body is either a ChatRequest or an InvalidRequestError with a param, and a
body the gateway accepts is either translated for the Anthropic Messages API or refused naming its
param."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmroute.chat import ChatRequest, chat_request, param_of
from llmroute.errors import InvalidRequestError
from llmroute.providers.anthropic_errors import WireError
from llmroute.providers.anthropic_wire import to_anthropic_request
from llmroute.server.openapi import build_openapi

USER = {"role": "user", "content": "hi"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "lookup", "description": "Looks up.",
                                         "parameters": {"type": "object", "properties": {}},
                                         "strict": True}}
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
FILE = {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA",
                                 "filename": "a.pdf"}}
CONVERSATION = [
    {"role": "system", "content": "Be brief.", "name": "setup"},
    {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
    {"role": "user", "content": [{"type": "text", "text": "Look"}, IMAGE, AUDIO, FILE]},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "42"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "It is"},
                                      {"type": "refusal", "refusal": "no"}], "refusal": None},
    {"role": "function", "name": "lookup", "content": None},
    USER,
]


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "auto", "messages": [USER], **fields}


@pytest.mark.parametrize("data", [
    body(),
    {"model": "auto", "messages": CONVERSATION, "tools": [TOOL]},
    body(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "lookup"}}),
    body(tools=[TOOL], tool_choice="required", parallel_tool_calls=False),
    body(tools=[{"type": "custom", "custom": {"name": "grep", "format": {"type": "text"}}}],
         tool_choice={"type": "custom", "custom": {"name": "grep"}}),
    body(tools=[TOOL], tool_choice={"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "lookup"}}]}}),
    body(response_format={"type": "text"}),
    body(response_format={"type": "json_object"}),
    body(response_format={"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object"}, "strict": True}}),
    body(stop="END"), body(stop=["a", "b", "c", "d"]), body(stop=None),
    body(logit_bias={"50256": -100, "1": 100}), body(logit_bias=None),
    body(n=1), body(n=128), body(temperature=0), body(temperature=2), body(temperature=1),
    body(top_p=0.5), body(frequency_penalty=-2), body(presence_penalty=2.0),
    body(logprobs=True, top_logprobs=20), body(seed=-(2**63)), body(seed=2**63 - 1),
    body(max_tokens=1), body(max_completion_tokens=4096),
    body(stream=True, stream_options={"include_usage": True}),
    body(metadata={"team": "a"}, store=True, modalities=["text"], user="u1"),
    body(reasoning_effort="brand-new-level", future_param={"anything": [1, 2]}),
    body(tools=None, tool_choice=None, response_format=None, user=None, functions=None),
    body(stream=None, parallel_tool_calls=None, service_tier="flex", verbosity="low",
         prediction={"type": "content", "content": "x"}, audio=None, safety_identifier="u"),
    body(functions=[{"name": "old", "parameters": {}}], function_call={"name": "old"}),
])
def test_valid_bodies_pass_and_are_forwarded_as_sent(data: dict[str, Any]) -> None:
    sent = copy.deepcopy(data)
    req = chat_request(data)
    assert req.body == sent  # unknown fields pass through, nothing is coerced or dropped
    assert data == sent


@pytest.mark.parametrize(("data", "param"), [
    (body(messages=[{"role": "wizard", "content": "hi"}]), "messages[0].role"),
    (body(messages=[{"content": "hi"}]), "messages[0].role"),
    (body(messages=[7]), "messages[0]"),
    (body(messages=[{"role": "user"}]), "messages[0].content"),
    (body(messages=[{"role": "user", "content": []}]), "messages[0].content"),
    (body(messages=[{"role": "system", "content": [IMAGE]}]), "messages[0].content[0].type"),
    (body(messages=[USER, {"role": "user", "content": [{"type": "text", "text": "a"}, {
        "type": "image_url", "image_url": {"url": 5}}]}]), "messages[1].content[1].image_url.url"),
    (body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {
        "url": "https://x", "detail": "ultra"}}]}]), "messages[0].content[0].image_url.detail"),
    (body(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
     "messages[0].content[0].image_url"),
    (body(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {
        "data": "AA", "format": "ogg"}}]}]), "messages[0].content[0].input_audio.format"),
    (body(messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": 3}}]}]),
     "messages[0].content[0].file.file_id"),
    (body(messages=[{"role": "user", "content": [{"type": "video", "video": {}}]}]),
     "messages[0].content[0].type"),
    (body(messages=[{"role": "user", "content": [{"text": "no type"}]}]),
     "messages[0].content[0].type"),
    (body(messages=[{"role": "assistant", "content": [IMAGE]}]), "messages[0].content[0].type"),
    (body(messages=[USER, {"role": "assistant"}]), "messages[1].content"),
    (body(messages=[{"role": "assistant", "tool_calls": [{**CALL, "id": None}]}]),
     "messages[0].tool_calls[0].id"),
    (body(messages=[{"role": "assistant", "tool_calls": [{**CALL, "type": "magic"}]}]),
     "messages[0].tool_calls[0].type"),
    (body(messages=[{"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f"}}]}]),
     "messages[0].tool_calls[0].function.arguments"),
    (body(messages=[{"role": "assistant", "tool_calls": {"id": "x"}}]),
     "messages[0].tool_calls"),
    (body(messages=[USER, {"role": "tool", "content": "42"}]), "messages[1].tool_call_id"),
    (body(messages=[USER, {"role": "tool", "content": "42", "tool_call_id": "nope"}]),
     "messages[1].tool_call_id"),
    (body(messages=[{"role": "function", "content": "x"}]), "messages[0].name"),
    (body(messages=[{"role": "user", "content": "hi", "name": 3}]), "messages[0].name"),
    (body(tools=[{"type": "function", "function": {"name": "has space"}}]),
     "tools[0].function.name"),
    (body(tools=[{"type": "function", "function": {"name": "x" * 65}}]), "tools[0].function.name"),
    (body(tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]),
     "tools[0].function.parameters"),
    (body(tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}]),
     "tools[0].function.strict"),
    (body(tools=[{"function": {"name": "f"}}]), "tools[0].type"),
    (body(tools=[TOOL, {"type": "function"}]), "tools[1].function"),
    (body(tools={"type": "function"}), "tools"),
    (body(tool_choice="sometimes"), "tool_choice"),
    (body(tool_choice="required"), "tool_choice"),
    (body(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "other"}}),
     "tool_choice.function.name"),
    (body(tool_choice={"type": "function", "function": {"name": "lookup"}}),
     "tool_choice.function.name"),
    (body(response_format={"type": "yaml"}), "response_format.type"),
    (body(response_format={"type": "json_schema"}), "response_format.json_schema"),
    (body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
     "response_format.json_schema.name"),
    (body(response_format={"type": "json_schema", "json_schema": {"name": "a b"}}),
     "response_format.json_schema.name"),
    (body(response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": []}}),
     "response_format.json_schema.schema"),
    (body(stop=["a", "b", "c", "d", "e"]), "stop"),
    (body(stop=[1]), "stop[0]"),
    (body(logit_bias={"hello": 1}), "logit_bias.hello"),
    (body(logit_bias={"42": 101}), "logit_bias.42"),
    (body(logit_bias={"42": 1.5}), "logit_bias.42"),
    (body(n=0), "n"), (body(n=129), "n"), (body(n=True), "n"),
    (body(temperature=2.01), "temperature"), (body(temperature="1"), "temperature"),
    (body(top_p=1.5), "top_p"), (body(frequency_penalty=-3), "frequency_penalty"),
    (body(presence_penalty=2.5), "presence_penalty"),
    (body(top_logprobs=21, logprobs=True), "top_logprobs"),
    (body(top_logprobs=3), "top_logprobs"), (body(logprobs="true"), "logprobs"),
    (body(seed=2**63), "seed"), (body(seed=1.5), "seed"),
    (body(max_tokens=0), "max_tokens"), (body(max_completion_tokens=-1), "max_completion_tokens"),
    (body(stream_options={"include_usage": True}), "stream_options"),
    (body(metadata={"a": 1}), "metadata.a"), (body(metadata={"Team": 1}), "metadata.Team"),
    (body(logit_bias={"INF": 1}), "logit_bias.INF"),
    (body(parallel_tool_calls="no"), "parallel_tool_calls"),
    (body(modalities=["video"]), "modalities[0]"),
    (body(reasoning_effort=3), "reasoning_effort"), (body(prediction="x"), "prediction"),
    (body(stream=1), "stream"),
])
def test_invalid_bodies_name_the_param(data: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat_request(data)
    assert caught.value.param == param, caught.value.message
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    assert param in caught.value.message


def test_the_message_limit_counts_messages() -> None:
    assert chat_request(body(messages=[USER] * 3), max_messages=3).model == "auto"
    with pytest.raises(InvalidRequestError) as caught:
        chat_request(body(messages=[USER] * 4), max_messages=3)
    assert caught.value.param == "messages" and "limit is 3" in caught.value.message


def test_param_of_drops_union_tags() -> None:
    loc = ("messages", 2, "role=user", "content", "list[...]", 0, "type=image_url", "image_url",
           "url")
    assert param_of(loc) == "messages[2].content[0].image_url.url"


# --------------------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "x"])
PART_TYPES = st.sampled_from(["text", "image_url", "input_audio", "file", "refusal", "video"])
FIELDS = st.sampled_from(["content", "name", "tool_calls", "tool_call_id", "refusal", "text",
                          "image_url", "url", "detail", "type", "function", "id", "arguments"])


def near(kind: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects that look like the schema's: a plausible tag and fields with arbitrary values."""
    return st.builds(lambda tag, rest: {**rest, "type": tag}, kind,
                     st.dictionaries(FIELDS, JSON | st.text(max_size=4), max_size=3))


MESSAGES = st.lists(st.builds(
    lambda role, content, rest: {**rest, "role": role, "content": content}, ROLES,
    st.none() | st.text(max_size=5) | st.lists(near(PART_TYPES), max_size=3) | JSON,
    st.dictionaries(FIELDS, JSON | st.lists(near(st.just("function")), max_size=2), max_size=2),
), min_size=0, max_size=4)
TOP = st.fixed_dictionaries({"model": st.just("auto") | JSON, "messages": MESSAGES | JSON}, optional={
    key: JSON | st.integers(-300, 300) | st.floats(-5, 5)
    for key in ("temperature", "top_p", "n", "stop", "logit_bias", "seed", "max_tokens",
                "top_logprobs", "logprobs", "frequency_penalty", "stream", "stream_options",
                "plugins", "models", "user", "metadata", "future_field")} | {
    "tools": st.lists(near(st.sampled_from(["function", "custom", "x"])), max_size=2) | JSON,
    "tool_choice": st.sampled_from(["none", "auto", "required", "x"]) | near(
        st.sampled_from(["function", "custom", "allowed_tools"])),
    "response_format": near(st.sampled_from(["text", "json_object", "json_schema", "x"])) | JSON,
})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOP)
def test_any_body_is_a_request_or_a_400_with_a_param(data: dict[str, Any]) -> None:
    try:
        req = chat_request(data)
    except InvalidRequestError as exc:
        assert exc.status == 400 and exc.param, exc.message
        return
    assert isinstance(req, ChatRequest) and req.model and req.body["messages"]


def documented_bodies() -> st.SearchStrategy[dict[str, Any]]:
    """Bodies the gateway's OpenAPI document describes as valid (schemathesis generates them from
    it), asking for `model: auto` when they name none."""
    schema = schemathesis.openapi.from_dict(build_openapi("test"))
    chat = next(op for op in (r.ok() for r in schema.get_all_operations())
                if op.path == "/v1/chat/completions")
    return chat.as_strategy().map(
        lambda case: {**case.body, "model": case.body.get("model") or "auto"})


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(TOP | documented_bodies())
def test_the_anthropic_translation_takes_a_valid_body_or_names_the_param(
        data: dict[str, Any]) -> None:
    try:
        req = chat_request(data)
    except InvalidRequestError:
        return
    try:
        payload = to_anthropic_request(req.body, "claude")
    except WireError as exc:
        assert exc.param, exc.message
        return
    assert payload["messages"] and payload["max_tokens"] >= 1

"""Tests of the OpenAI ⇄ Anthropic wire translation (requests, responses, streams, errors).

The fixtures are checked against the real SDK types: Anthropic requests are validated with the
`anthropic` SDK's TypedDicts (and sent through `anthropic.Anthropic` over a mock transport),
Anthropic responses and stream events with its pydantic models, and everything handed back
to OpenAI clients with `openai.types.chat` models and through `openai.OpenAI`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable, Iterator, Mapping
from itertools import pairwise
from typing import Any, Literal, get_args, get_origin

import anthropic
import openai
import pytest
from anthropic.types import (
    DocumentBlockParam,
    ImageBlockParam,
    Message,
    MetadataParam,
    RawMessageStreamEvent,
    StopReason,
    TextBlockParam,
    ToolChoiceAnyParam,
    ToolChoiceAutoParam,
    ToolChoiceNoneParam,
    ToolChoiceToolParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
)
from anthropic.types import message_create_params as mcp
from anthropic.types.shared.error_object import ErrorObject
from anthropic.types.shared.error_response import ErrorResponse
from anthropic.types.shared.error_type import ErrorType
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionFunctionToolParam
from pydantic import TypeAdapter

from llmroute.providers.anthropic_errors import (
    ERROR_TYPE_CATEGORIES,
    StreamError,
    WireError,
    classify_anthropic_error,
)
from llmroute.providers.anthropic_stream import AnthropicStreamTranslator
from llmroute.providers.anthropic_wire import (
    DROPPED_PARAMS,
    SAMPLING_PARAMS,
    from_anthropic_response,
    openai_finish_reason,
    to_anthropic_request,
)

# Recent anthropic/openai SDKs run on httpx2 (anthropic refuses httpx clients); older ones on httpx.
http: Any = importlib.import_module("httpx2" if importlib.util.find_spec("httpx2") else "httpx")

MODEL = "claude-sonnet-4-6"
CREATED = 1_700_000_000
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
PDF_B64 = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK"
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL: ChatCompletionFunctionToolParam = {"type": "function", "function": {"name": "get_time"}}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def body(*messages: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": list(messages) or [user("Hi")], **params}


# --------------------------------------------------------------------------- SDK validation

_BLOCK_PARAMS: dict[str, Any] = {
    "text": TextBlockParam,
    "image": ImageBlockParam,
    "document": DocumentBlockParam,
    "tool_use": ToolUseBlockParam,
    "tool_result": ToolResultBlockParam,
}
_TOOL_CHOICE_PARAMS: dict[str, Any] = {
    "auto": ToolChoiceAutoParam,
    "any": ToolChoiceAnyParam,
    "tool": ToolChoiceToolParam,
    "none": ToolChoiceNoneParam,
}
# anthropic SDK >= 1.0 dropped temperature/top_p/top_k from `messages.create` (and from
# MessageCreateParams); the API still takes them on models that allow sampling.
_SDK_LESS_KEYS = SAMPLING_PARAMS
_STREAMING = TypeAdapter(mcp.MessageCreateParamsStreaming)
_NON_STREAMING = TypeAdapter(mcp.MessageCreateParamsNonStreaming)
_EVENT = TypeAdapter(RawMessageStreamEvent)


def keys_of(typed_dict: Any) -> frozenset[str]:
    return frozenset(typed_dict.__required_keys__ | typed_dict.__optional_keys__)


def materialize(value: Any) -> Any:
    """Consume pydantic's lazy validators for `Iterable` fields, so nested errors surface."""
    if isinstance(value, Mapping):
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, list | tuple | Iterator):
        return [materialize(v) for v in value]
    return value


def assert_valid_anthropic_request(request: dict[str, Any]) -> None:
    """Check `request` against the anthropic SDK's MessageCreateParams, keys and nesting."""
    adapter = _STREAMING if request.get("stream") else _NON_STREAMING
    materialize(adapter.validate_python(request))
    assert set(request) <= keys_of(mcp.MessageCreateParamsStreaming) | _SDK_LESS_KEYS
    for key in ("temperature", "top_p"):
        assert 0 <= request.get(key, 0) <= 1
    assert not ("temperature" in request and "top_p" in request), "current models reject both"
    roles = [m["role"] for m in request["messages"]]
    assert all(a != b for a, b in pairwise(roles)), roles
    for message in request["messages"]:
        assert set(message) == {"role", "content"} and message["role"] in ("user", "assistant")
        assert message["content"], "Anthropic rejects empty turns"
        for block in message["content"]:
            assert set(block) <= keys_of(_BLOCK_PARAMS[block["type"]]), block
            if block["type"] == "text":
                assert block["text"], "Anthropic rejects empty text blocks"
        kinds = [b["type"] for b in message["content"]]
        assert kinds == sorted(kinds, key=lambda k: k != "tool_result"), "tool results first"
    for tool in request.get("tools", []):
        assert set(tool) <= keys_of(ToolParam)
        assert tool["input_schema"]["type"] == "object"
    if "tool_choice" in request:
        choice = request["tool_choice"]
        assert set(choice) <= keys_of(_TOOL_CHOICE_PARAMS[choice["type"]])
    if "metadata" in request:
        assert set(request["metadata"]) <= keys_of(MetadataParam)


def send_with_anthropic_sdk(request: dict[str, Any]) -> dict[str, Any]:
    """POST `request` with the real anthropic client (mock transport); return the sent JSON."""
    sent: dict[str, Any] = {}

    def handler(http_request: Any) -> Any:
        sent.update(json.loads(http_request.content))
        return http.Response(200, json=TOOL_MESSAGE)

    transport = http.MockTransport(handler)
    client = anthropic.Anthropic(api_key="test", http_client=http.Client(transport=transport))
    params = {k: v for k, v in request.items() if k not in _SDK_LESS_KEYS}
    extra_body = {k: v for k, v in request.items() if k in _SDK_LESS_KEYS}
    # A TypeError here means a key the SDK does not know.
    client.messages.create(**params, extra_body=extra_body or None)
    return sent


def test_validator_rejects_what_anthropic_would() -> None:
    """The helper above is only worth something if it catches malformed requests."""
    good = to_anthropic_request(body(), MODEL)
    assert_valid_anthropic_request(good)
    bad_image = {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "x"}}
    mutations: list[Callable[[dict[str, Any]], object]] = [
        lambda r: r["messages"][0]["content"].append(bad_image),
        lambda r: r["messages"][0]["content"].append({"type": "txt", "text": "x"}),
        lambda r: r["messages"].append({"role": "user", "content": [{"type": "text", "text": "x"}]}),
        lambda r: r.update(temperature_x=1),
        lambda r: r.update(tool_choice={"type": "any", "name": "x"}),
    ]
    for mutate in mutations:
        request = json.loads(json.dumps(good))
        mutate(request)
        with pytest.raises(Exception):  # noqa: B017 - pydantic or assertion
            assert_valid_anthropic_request(request)


# --------------------------------------------------------------------------- request params


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"max_tokens": 4096}),
        ({"max_tokens": 100}, {"max_tokens": 100}),
        ({"max_completion_tokens": 50, "max_tokens": 100}, {"max_tokens": 50}),
        ({"temperature": 1.7}, {"temperature": 1.0}),
        ({"temperature": 2}, {"temperature": 1.0}),
        ({"temperature": 0.3}, {"temperature": 0.3}),
        ({"temperature": 0}, {"temperature": 0.0}),
        ({"top_p": 0.9}, {"top_p": 0.9}),
        ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2}),
        ({"temperature": None, "top_p": 0.5}, {"top_p": 0.5}),
        ({"stop": "END"}, {"stop_sequences": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}),
        ({"stop": ["\n", "  ", "", "###"]}, {"stop_sequences": ["###"]}),
        ({"stop": "\n"}, {}),
        ({"stop": None}, {}),
        ({"user": "user-42"}, {"metadata": {"user_id": "user-42"}}),
        ({"safety_identifier": "sid-1"}, {"metadata": {"user_id": "sid-1"}}),
        ({"user": "u", "safety_identifier": "s"}, {"metadata": {"user_id": "u"}}),
        ({"stream": True}, {"stream": True}),
        ({"stream": False}, {"stream": False}),
        ({"top_k": 40}, {"top_k": 40}),
        ({"n": 1, "logprobs": False, "top_logprobs": None}, {}),
    ],
)
def test_request_params(params: dict[str, Any], expected: dict[str, Any]) -> None:
    request = to_anthropic_request(body(**params), MODEL)
    assert_valid_anthropic_request(request)
    base = {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    assert request == {**base, **expected}


def test_default_max_tokens_is_a_parameter() -> None:
    assert to_anthropic_request(body(), MODEL, default_max_tokens=1024)["max_tokens"] == 1024


@pytest.mark.parametrize("param", sorted(DROPPED_PARAMS))
def test_params_without_equivalent_are_dropped(param: str) -> None:
    request = to_anthropic_request(body(**{param: {"x": 1} if param != "seed" else 7}), MODEL)
    assert set(request) == {"model", "max_tokens", "messages"}


def test_unknown_params_are_dropped() -> None:
    request = to_anthropic_request(body(frobnicate=True, presence_penalty=1.5, seed=3), MODEL)
    assert set(request) == {"model", "max_tokens", "messages"}


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        (body(n=2), "n"),
        (body(logprobs=True), "logprobs"),
        (body(top_logprobs=5), "top_logprobs"),
        (body(modalities=["text", "audio"]), "modalities"),
        (body(audio={"voice": "alloy", "format": "wav"}), "modalities"),
        (body(functions=[{"name": "f"}]), "functions"),
        (body(function_call="auto"), "function_call"),
        (body(max_tokens=0), "max_tokens"),
        (body(max_completion_tokens="100"), "max_completion_tokens"),
        (body(max_tokens=True), "max_tokens"),
        (body(temperature="hot"), "temperature"),
        (body(stop=5), "stop"),
        (body(stop=["a", 1]), "stop"),
        (body(response_format={"type": "yaml"}), "response_format.type"),
        (body(response_format={"type": "json_schema"}), "response_format.json_schema"),
        ({"model": "m"}, "messages"),
        (body({"role": "system", "content": "only a system prompt"}), "messages"),
        (body({"role": "function", "name": "f", "content": "x"}), "messages[0].role"),
        (body("not a message"), "messages[0]"),  # type: ignore[arg-type]
        (body(user(None)), "messages[0].content"),
        (body(user([{"type": "video", "video": {}}])), "messages[0].content[0].type"),
        (body(user([{"type": "text", "text": 3}])), "messages[0].content[0].text"),
        (
            body(user([{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}])),
            "messages[0].content[0]",
        ),
        (
            body(user([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            body(user([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            body(user([{"type": "image_url", "image_url": {"url": "data:image/png,notbase64"}}])),
            "messages[0].content[0].image_url.url",
        ),
        (body(user([{"type": "file", "file": {"file_id": "file-1"}}])), "messages[0].content[0].file"),
        (
            body(user([{"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}}])),
            "messages[0].content[0].file.file_data",
        ),
        (body({"role": "system", "content": [{"type": "image_url"}]}), "messages[0].content[0]"),
        (body(user("q"), {"role": "tool", "content": "r"}), "messages[1].tool_call_id"),
        (
            body(user("q"), {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}),
            "messages[1].function_call",
        ),
        (body(tools=[{"type": "custom", "custom": {"name": "c"}}]), "tools[0].type"),
        (body(tools=[{"type": "function", "function": {}}]), "tools[0].function.name"),
        (body(tools=[WEATHER_TOOL], tool_choice={"type": "custom"}), "tool_choice"),
        (body(tools=[WEATHER_TOOL], tool_choice="sometimes"), "tool_choice"),
        (
            body(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {}}),
            "tool_choice.function.name",
        ),
    ],
)
def test_wire_errors_name_the_param(request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(WireError) as info:
        to_anthropic_request(request_body, MODEL)
    assert info.value.param == param
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def _assistant_call(arguments: Any, call_id: str = "call_1") -> dict[str, Any]:
    call = {"id": call_id, "type": "function", "function": {"name": "f", "arguments": arguments}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", '"text"', "null", 42])
def test_bad_tool_call_arguments_raise(arguments: Any) -> None:
    with pytest.raises(WireError) as info:
        to_anthropic_request(body(user("q"), _assistant_call(arguments)), MODEL)
    assert info.value.param == "messages[1].tool_calls[0].function.arguments"


# --------------------------------------------------------------------------- messages


def test_system_and_developer_messages_are_hoisted_and_joined() -> None:
    request = to_anthropic_request(
        body(
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            user("Hi"),
            {"role": "assistant", "content": "Salut"},
            {
                "role": "system",
                "content": [{"type": "text", "text": "Be kind."}, {"type": "text", "text": ""}],
            },
            user("Again"),
        ),
        MODEL,
    )
    assert_valid_anthropic_request(request)
    assert request["system"] == "You are terse.\n\nAnswer in French.\n\nBe kind."
    assert [m["role"] for m in request["messages"]] == ["user", "assistant", "user"]


def test_user_content_parts() -> None:
    parts = [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
        {
            "type": "file",
            "file": {"file_data": f"data:application/pdf;base64,{PDF_B64}", "filename": "a.pdf"},
        },
        {"type": "text", "text": ""},
    ]
    request = to_anthropic_request(body(user(parts)), MODEL)
    assert_valid_anthropic_request(request)
    assert request["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.webp"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
            "title": "a.pdf",
        },
    ]


def tool_conversation() -> list[dict[str, Any]]:
    """A user question, two parallel tool calls, their results, and a follow-up."""
    calls = [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {"id": "functions.get_time:1", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ]
    return [
        {"role": "system", "content": "sys"},
        user("Weather and time in Paris?"),
        {"role": "assistant", "content": "Checking.", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_a", "content": "18C, sunny"},
        {
            "role": "tool",
            "tool_call_id": "functions.get_time:1",
            "content": [{"type": "text", "text": "14:05"}],
        },
        user("Thanks! And tomorrow?"),
    ]


def test_tool_calls_and_results() -> None:
    request = to_anthropic_request(body(*tool_conversation(), tools=[WEATHER_TOOL, TIME_TOOL]), MODEL)
    assert_valid_anthropic_request(request)
    assert request["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather and time in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "functions_get_time_1", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "functions_get_time_1",
                    "content": [{"type": "text", "text": "14:05"}],
                },
                {"type": "text", "text": "Thanks! And tomorrow?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        pytest.param(
            [user("a"), user([{"type": "text", "text": "b"}])],
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            id="consecutive-users-merge",
        ),
        pytest.param(
            [
                user("a"),
                {"role": "assistant", "content": "x"},
                {"role": "assistant", "content": "y"},
                user("b"),
            ],
            [
                {"role": "user", "content": [{"type": "text", "text": "a"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}],
                },
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
            ],
            id="consecutive-assistants-merge",
        ),
        pytest.param(
            [user("a"), {"role": "assistant", "content": ""}, user("b")],
            [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            id="empty-assistant-dropped",
        ),
        pytest.param(
            [user("a"), {"role": "assistant", "content": "The answer is: \n"}],
            [
                {"role": "user", "content": [{"type": "text", "text": "a"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "The answer is:"}]},
            ],
            id="final-prefill-rstripped",
        ),
        pytest.param(
            [
                user("a"),
                {
                    "role": "assistant",
                    "content": [{"type": "text", "text": "x "}, {"type": "text", "text": " "}],
                },
            ],
            [
                {"role": "user", "content": [{"type": "text", "text": "a"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "x"}]},
            ],
            id="final-prefill-whitespace-blocks",
        ),
        pytest.param(
            [user("a"), {"role": "assistant", "content": "  "}],
            [{"role": "user", "content": [{"type": "text", "text": "a"}]}],
            id="whitespace-only-prefill-removed",
        ),
        pytest.param(
            [user("a "), {"role": "assistant", "content": "b "}, user("c ")],
            [
                {"role": "user", "content": [{"type": "text", "text": "a "}]},
                {"role": "assistant", "content": [{"type": "text", "text": "b "}]},
                {"role": "user", "content": [{"type": "text", "text": "c "}]},
            ],
            id="non-final-whitespace-kept",
        ),
        pytest.param(
            [
                user("a"),
                {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                user("ok"),
            ],
            [
                {"role": "user", "content": [{"type": "text", "text": "a"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "I can't help with that."}]},
                {"role": "user", "content": [{"type": "text", "text": "ok"}]},
            ],
            id="assistant-refusal-kept-as-text",
        ),
        pytest.param(
            [user("a"), {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]}, user("b")],
            [
                {"role": "user", "content": [{"type": "text", "text": "a"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "No."}]},
                {"role": "user", "content": [{"type": "text", "text": "b"}]},
            ],
            id="assistant-refusal-part",
        ),
        pytest.param(
            [
                user("q"),
                _assistant_call('{"x": 1}'),
                {"role": "tool", "tool_call_id": "call_1", "content": ""},
            ],
            [
                {"role": "user", "content": [{"type": "text", "text": "q"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1"}]},
            ],
            id="empty-tool-result",
        ),
        pytest.param(
            [user("q"), {**_assistant_call({"x": 1}), "name": "bot"}],
            [
                {"role": "user", "content": [{"type": "text", "text": "q"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}}],
                },
            ],
            id="arguments-as-object-and-name-dropped",
        ),
    ],
)
def test_turn_shaping(messages: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    request = to_anthropic_request(body(*messages), MODEL)
    assert_valid_anthropic_request(request)
    assert request["messages"] == expected


def test_input_is_not_mutated() -> None:
    original = body(*tool_conversation(), tools=[WEATHER_TOOL], tool_choice="auto", stop=["x"])
    snapshot = json.loads(json.dumps(original))
    to_anthropic_request(original, MODEL)
    assert original == snapshot


# --------------------------------------------------------------------------- tools


def test_tools_are_converted() -> None:
    request = to_anthropic_request(body(tools=[WEATHER_TOOL, TIME_TOOL]), MODEL)
    assert_valid_anthropic_request(request)
    assert request["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in request


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        (None, None, None),
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"type": "function", "function": {"name": "get_time"}}, None, {"type": "tool", "name": "get_time"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            False,
            {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
        ),
        ("none", False, {"type": "none"}),
        ("auto", True, {"type": "auto"}),
    ],
)
def test_tool_choice(tool_choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    params: dict[str, Any] = {"tools": [WEATHER_TOOL, TIME_TOOL]}
    if tool_choice is not None:
        params["tool_choice"] = tool_choice
    if parallel is not None:
        params["parallel_tool_calls"] = parallel
    request = to_anthropic_request(body(**params), MODEL)
    assert_valid_anthropic_request(request)
    assert request.get("tool_choice") == expected


@pytest.mark.parametrize(("mode", "anthropic_type"), [("auto", "auto"), ("required", "any")])
def test_allowed_tools_sends_only_those_tools(mode: str, anthropic_type: str) -> None:
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": mode, "tools": [{"type": "function", "function": {"name": "get_time"}}]},
    }
    request = to_anthropic_request(body(tools=[WEATHER_TOOL, TIME_TOOL], tool_choice=choice), MODEL)
    assert_valid_anthropic_request(request)
    assert [t["name"] for t in request["tools"]] == ["get_time"]
    assert request["tool_choice"] == {"type": anthropic_type}


def test_tool_choice_without_tools_is_dropped() -> None:
    request = to_anthropic_request(body(tool_choice="none", parallel_tool_calls=False), MODEL)
    assert "tool_choice" not in request and "tools" not in request


# --------------------------------------------------------------------------- response_format


def test_response_format_json_object_adds_instruction() -> None:
    request = to_anthropic_request(
        body(
            {"role": "system", "content": "You extract data."},
            user("x"),
            response_format={"type": "json_object"},
        ),
        MODEL,
    )
    assert_valid_anthropic_request(request)
    assert request["system"].startswith("You extract data.\n\nRespond only with a single valid JSON object")


def test_response_format_json_schema_includes_schema() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "person", "description": "A person", "schema": schema, "strict": True},
    }
    request = to_anthropic_request(body(response_format=response_format), MODEL)
    assert_valid_anthropic_request(request)
    system = request["system"]
    assert "JSON" in system and "'person'" in system and "A person" in system
    assert json.loads(system.split(":\n", 1)[1]) == schema


def test_response_format_text_adds_nothing() -> None:
    assert "system" not in to_anthropic_request(body(response_format={"type": "text"}), MODEL)


# --------------------------------------------------------------------------- SDK round trips


def test_request_is_accepted_by_the_anthropic_sdk() -> None:
    request = to_anthropic_request(
        body(
            *tool_conversation(),
            tools=[WEATHER_TOOL, TIME_TOOL],
            tool_choice="required",
            parallel_tool_calls=False,
            temperature=0.5,
            stop=["END"],
            user="u-1",
            max_completion_tokens=256,
            response_format={"type": "json_object"},
            top_k=5,
        ),
        MODEL,
    )
    assert_valid_anthropic_request(request)
    assert send_with_anthropic_sdk(request) == request


def test_multimodal_request_is_accepted_by_the_anthropic_sdk() -> None:
    parts = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.gif"}},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF_B64}"}},
    ]
    request = to_anthropic_request(body(user(parts)), MODEL)
    assert_valid_anthropic_request(request)
    assert send_with_anthropic_sdk(request) == request


def openai_gateway(
    stream_events: list[tuple[str, dict[str, Any]]],
) -> tuple[openai.OpenAI, list[dict[str, Any]]]:
    """An openai client whose transport plays the gateway: translate, then answer from fixtures."""
    seen: list[dict[str, Any]] = []

    def handler(http_request: Any) -> Any:
        openai_body = json.loads(http_request.content)
        request = to_anthropic_request(openai_body, MODEL)
        assert_valid_anthropic_request(request)
        seen.append(request)
        if not openai_body.get("stream"):
            return http.Response(
                200, json=from_anthropic_response(TOOL_MESSAGE, openai_body["model"], CREATED)
            )
        include_usage = bool((openai_body.get("stream_options") or {}).get("include_usage"))
        translator = AnthropicStreamTranslator(openai_body["model"], CREATED, include_usage)
        chunks = [c for event, data in stream_events for c in translator.feed(event, data)]
        assert translator.finished
        sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return http.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"})

    http_client = http.Client(transport=http.MockTransport(handler))
    return openai.OpenAI(api_key="t", base_url="http://gateway/v1", http_client=http_client), seen


def test_openai_sdk_end_to_end() -> None:
    client, seen = openai_gateway(TOOL_STREAM)
    completion = client.chat.completions.create(
        model="smart",
        messages=tool_conversation(),  # type: ignore[arg-type]  # plain dicts, not the SDK's TypedDicts
        tools=[WEATHER_TOOL, TIME_TOOL],
        max_completion_tokens=300,
        parallel_tool_calls=False,
    )
    assert seen[0]["max_tokens"] == 300 and seen[0]["system"] == "sys"
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.content == "Let me check the weather."
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name) for c in calls] == [("toolu_01", "get_weather"), ("toolu_02", "get_time")]  # type: ignore[union-attr]
    assert completion.usage is not None and completion.usage.prompt_tokens == 125


def test_openai_sdk_end_to_end_stream() -> None:
    client, _ = openai_gateway(TOOL_STREAM)
    stream = client.chat.completions.create(
        model="smart",
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 185
    assert accumulate([c.model_dump(exclude_none=True) for c in chunks]) == accumulate(
        translate(TOOL_STREAM, True)
    )


# --------------------------------------------------------------------------- responses

TOOL_MESSAGE: dict[str, Any] = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [
        {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig"},
        {"type": "text", "text": "Let me check"},
        {"type": "text", "text": " the weather."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 25,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 0,
        "output_tokens": 60,
    },
}


def anthropic_message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        **TOOL_MESSAGE,
        "content": content,
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def convert(message: dict[str, Any]) -> dict[str, Any]:
    Message.model_validate(message)  # the fixture is a real Anthropic message
    completion = from_anthropic_response(message, "smart", CREATED)
    ChatCompletion.model_validate(completion)
    return completion


def test_response_with_text_and_tool_calls() -> None:
    completion = convert(TOOL_MESSAGE)
    assert completion == {
        "id": "chatcmpl-msg_01",
        "object": "chat.completion",
        "created": CREATED,
        "model": "smart",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check the weather.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "toolu_01",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "toolu_02",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{}"},
                        },
                    ],
                    # thinking comes back: its text, and the block with its signature
                    "reasoning_content": "The user wants weather.",
                    "thinking_blocks": [{"type": "thinking", "thinking": "The user wants weather.",
                                         "signature": "sig"}],
                },
                "finish_reason": "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 125,
            "completion_tokens": 60,
            "total_tokens": 185,
            "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 0},
            # no count from Anthropic: 23 characters of thinking, ≈4 per token
            "completion_tokens_details": {"reasoning_tokens": 6},
        },
    }


@pytest.mark.parametrize(
    ("content", "expected_content"),
    [
        ([{"type": "text", "text": "Hello"}], "Hello"),
        ([{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}}], None),
        ([], ""),
        ([{"type": "text", "text": "Ünïcödé ✓"}], "Ünïcödé ✓"),
    ],
)
def test_response_content(content: list[dict[str, Any]], expected_content: str | None) -> None:
    completion = convert(anthropic_message(content))
    assert completion["choices"][0]["message"]["content"] == expected_content


def test_tool_arguments_round_trip_as_json() -> None:
    tool_input = {"query": "café", "filters": {"n": 3, "tags": ["a", "b"]}}
    message = anthropic_message(
        [{"type": "tool_use", "id": "toolu_1", "name": "search", "input": tool_input}], "tool_use"
    )
    call = convert(message)["choices"][0]["message"]["tool_calls"][0]
    assert json.loads(call["function"]["arguments"]) == tool_input


EXPECTED_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


@pytest.mark.parametrize("stop_reason", get_args(StopReason))
def test_every_sdk_stop_reason_is_mapped(stop_reason: str) -> None:
    """Fails when the SDK learns a stop reason nobody decided a finish_reason for."""
    assert stop_reason in EXPECTED_FINISH_REASONS, f"decide a finish_reason for {stop_reason!r}"
    completion = convert(anthropic_message([{"type": "text", "text": "x"}], stop_reason))
    assert completion["choices"][0]["finish_reason"] == EXPECTED_FINISH_REASONS[stop_reason]


def test_unknown_stop_reason_is_stop() -> None:
    assert openai_finish_reason(None) == "stop"
    assert openai_finish_reason("something_new") == "stop"


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {"input_tokens": 10, "output_tokens": 5},
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cached": 0},
        ),
        (
            {
                "input_tokens": 10,
                "output_tokens": 5,
                "cache_read_input_tokens": 300,
                "cache_creation_input_tokens": 40,
            },
            {"prompt_tokens": 350, "completion_tokens": 5, "total_tokens": 355, "cached": 300},
        ),
        (
            {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": None},
            {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "cached": 0},
        ),
    ],
)
def test_usage(usage: dict[str, Any], expected: dict[str, int]) -> None:
    message = {**anthropic_message([{"type": "text", "text": "x"}]), "usage": usage}
    got = convert(message)["usage"]
    assert got["prompt_tokens"] == expected["prompt_tokens"]
    assert got["completion_tokens"] == expected["completion_tokens"]
    assert got["total_tokens"] == expected["total_tokens"]
    assert got["prompt_tokens_details"]["cached_tokens"] == expected["cached"]


def test_thinking_tokens_become_reasoning_tokens() -> None:
    message = {
        **anthropic_message([{"type": "text", "text": "x"}]),
        "usage": {"input_tokens": 1, "output_tokens": 50, "output_tokens_details": {"thinking_tokens": 30}},
    }
    assert convert(message)["usage"]["completion_tokens_details"] == {"reasoning_tokens": 30}


# --------------------------------------------------------------------------- streaming


def ev(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return data["type"], data


def start(message_id: str = "msg_01", **usage: int) -> tuple[str, dict[str, Any]]:
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 1, **usage},
    }
    return ev({"type": "message_start", "message": message})


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ev({"type": "content_block_start", "index": index, "content_block": block})


def delta(index: int, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ev({"type": "content_block_delta", "index": index, "delta": payload})


def text(index: int, value: str) -> tuple[str, dict[str, Any]]:
    return delta(index, {"type": "text_delta", "text": value})


def json_part(index: int, value: str) -> tuple[str, dict[str, Any]]:
    return delta(index, {"type": "input_json_delta", "partial_json": value})


def stop(index: int) -> tuple[str, dict[str, Any]]:
    return ev({"type": "content_block_stop", "index": index})


def message_delta(stop_reason: str, output_tokens: int) -> tuple[str, dict[str, Any]]:
    return ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
    )


PING = ev({"type": "ping"})
MESSAGE_STOP = ev({"type": "message_stop"})

# The streamed twin of TOOL_MESSAGE.
TOOL_STREAM = [
    start(cache_read_input_tokens=100, cache_creation_input_tokens=0),
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    delta(0, {"type": "thinking_delta", "thinking": "The user wants weather."}),
    delta(0, {"type": "signature_delta", "signature": "sig"}),
    stop(0),
    block_start(1, {"type": "text", "text": ""}),
    PING,
    text(1, "Let me check"),
    text(1, " the weather."),
    stop(1),
    block_start(2, {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}),
    json_part(2, ""),
    json_part(2, '{"city": "Par'),
    json_part(2, 'is"}'),
    stop(2),
    block_start(3, {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}),
    stop(3),
    message_delta("tool_use", 60),
    MESSAGE_STOP,
]
TEXT_STREAM = [
    start(),
    block_start(0, {"type": "text", "text": ""}),
    text(0, "Hello"),
    text(0, ", world"),
    stop(0),
    message_delta("end_turn", 7),
    MESSAGE_STOP,
]


def test_stream_fixtures_are_real_anthropic_events() -> None:
    for stream in (TOOL_STREAM, TEXT_STREAM):
        for name, data in stream:
            if name != "ping":
                assert _EVENT.validate_python(data).type == name


def translate(events: list[tuple[str, dict[str, Any]]], include_usage: bool = False) -> list[dict[str, Any]]:
    translator = AnthropicStreamTranslator("smart", CREATED, include_usage)
    chunks = [chunk for name, data in events for chunk in translator.feed(name, data)]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return chunks


def accumulate(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold chunks into a message, the way OpenAI clients do."""
    content, finish, usage = "", None, None
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            d = choice["delta"]
            content += d.get("content") or ""
            for call in d.get("tool_calls") or []:
                slot = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {
        "content": content,
        "tool_calls": [calls[i] for i in sorted(calls)],
        "finish": finish,
        "usage": usage,
    }


def test_text_stream() -> None:
    chunks = translate(TEXT_STREAM)
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": ", world"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_01"}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "smart" for c in chunks)
    assert all("usage" not in c for c in chunks)


def test_tool_stream_deltas() -> None:
    chunks = translate(TOOL_STREAM)
    tool_deltas = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert tool_deltas == [
        {
            "index": 0,
            "id": "toolu_01",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        },
        {"index": 0, "function": {"arguments": '{"city": "Par'}},
        {"index": 0, "function": {"arguments": 'is"}'}},
        {"index": 1, "id": "toolu_02", "type": "function", "function": {"name": "get_time", "arguments": ""}},
        {"index": 1, "function": {"arguments": "{}"}},
    ]


def test_stream_agrees_with_the_non_streamed_response() -> None:
    streamed = accumulate(translate(TOOL_STREAM, include_usage=True))
    message = convert(TOOL_MESSAGE)["choices"][0]["message"]
    assert streamed["content"] == message["content"]
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in streamed["tool_calls"]] == [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message["tool_calls"]
    ]
    assert streamed["finish"] == "tool_calls"
    assert streamed["usage"] == convert(TOOL_MESSAGE)["usage"]


def test_include_usage_adds_final_usage_chunk() -> None:
    chunks = translate(TEXT_STREAM, include_usage=True)
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == 25
    assert chunks[-1]["usage"]["completion_tokens"] == 7
    assert chunks[-1]["usage"]["total_tokens"] == 32


def test_finished_only_after_message_stop() -> None:
    translator = AnthropicStreamTranslator("smart", CREATED, include_usage=False)
    for name, data in TEXT_STREAM[:-1]:
        translator.feed(name, data)
        assert not translator.finished
    translator.feed(*MESSAGE_STOP)
    assert translator.finished
    assert translator.finish_reason == "stop"
    assert translator.usage["completion_tokens"] == 7
    assert translator.feed(*PING) == []


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("stop_sequence", "stop"),
    ],
)
def test_stream_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    events = [*TEXT_STREAM[:-2], message_delta(stop_reason, 3), MESSAGE_STOP]
    assert accumulate(translate(events))["finish"] == finish_reason


def test_missing_message_delta_still_closes_the_choice() -> None:
    chunks = translate([*TEXT_STREAM[:-2], MESSAGE_STOP], include_usage=True)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []


def test_ignorable_events_produce_nothing() -> None:
    translator = AnthropicStreamTranslator("smart", CREATED, include_usage=False)
    translator.feed(*start())
    for name, data in [
        PING,
        ("some_future_event", {"type": "some_future_event"}),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        stop(0),
        block_start(1, {"type": "text", "text": ""}),
        text(1, ""),
        delta(1, {"type": "citations_delta", "citation": {}}),
    ]:
        assert translator.feed(name, data) == [], name


def test_event_name_may_come_from_data() -> None:
    translator = AnthropicStreamTranslator("m", 1, include_usage=False)
    chunks = [c for _, data in TEXT_STREAM for c in translator.feed("", data)]
    assert translator.finished
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"


def test_error_event_raises_stream_error() -> None:
    translator = AnthropicStreamTranslator("smart", CREATED, include_usage=True)
    for name, data in TEXT_STREAM[:3]:
        translator.feed(name, data)
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    ErrorResponse.model_validate(error)
    with pytest.raises(StreamError) as info:
        translator.feed("error", error)
    assert (info.value.error_type, info.value.message) == ("overloaded_error", "Overloaded")
    assert info.value.category == "overloaded"
    assert not translator.finished


def test_stream_error_category_uses_the_message() -> None:
    err = StreamError("invalid_request_error", "Output blocked by content filtering policy")
    assert err.category == "content_policy"


@pytest.mark.parametrize("first", [text(0, "x"), block_start(0, {"type": "text", "text": ""}), MESSAGE_STOP])
def test_events_before_message_start_are_a_protocol_error(first: tuple[str, dict[str, Any]]) -> None:
    with pytest.raises(StreamError):
        AnthropicStreamTranslator("smart", CREATED, include_usage=False).feed(*first)


def test_second_message_start_is_a_protocol_error() -> None:
    translator = AnthropicStreamTranslator("smart", CREATED, include_usage=False)
    translator.feed(*start())
    with pytest.raises(StreamError):
        translator.feed(*start())


# --------------------------------------------------------------------------- errors

# https://docs.anthropic.com/en/api/errors: HTTP status → error type → expected category.
DOCUMENTED_ERRORS: list[tuple[int, str, str]] = [
    (400, "invalid_request_error", "bad_request"),
    (401, "authentication_error", "auth"),
    (402, "billing_error", "payment"),
    (403, "permission_error", "permission"),
    (404, "not_found_error", "not_found"),
    (413, "request_too_large", "bad_request"),
    (429, "rate_limit_error", "rate_limit"),
    (500, "api_error", "server"),
    (504, "timeout_error", "timeout"),
    (529, "overloaded_error", "overloaded"),
]


def sdk_error_types() -> set[str]:
    """Every error type the installed anthropic SDK knows, from its type definitions."""
    types = set(get_args(ErrorType))
    (union,) = get_args(ErrorObject)[:1]
    for model in get_args(union):
        annotation = model.model_fields["type"].annotation
        assert get_origin(annotation) is Literal
        types.update(get_args(annotation))
    return types


@pytest.mark.parametrize("error_type", sorted({t for _, t, _ in DOCUMENTED_ERRORS} | sdk_error_types()))
def test_every_documented_error_type_is_mapped(error_type: str) -> None:
    assert error_type in ERROR_TYPE_CATEGORIES, f"map Anthropic error type {error_type!r}"
    body = {"type": "error", "error": {"type": error_type, "message": "x"}}
    assert classify_anthropic_error(400, body) == ERROR_TYPE_CATEGORIES[error_type]


@pytest.mark.parametrize(("status", "error_type", "category"), DOCUMENTED_ERRORS)
def test_documented_errors(status: int, error_type: str, category: str) -> None:
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": "Something happened"}}
    assert classify_anthropic_error(status, body) == category
    assert classify_anthropic_error(status, body["error"]) == category  # bare error object
    assert classify_anthropic_error(status, None) == category  # status alone, no body


def _err(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_1"}


@pytest.mark.parametrize(
    ("status", "body", "category"),
    [
        (
            400,
            _err("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            "context_window",
        ),
        (
            400,
            _err(
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000, "
                "decrease input length or `max_tokens` and try again",
            ),
            "context_window",
        ),
        (
            400,
            _err(
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API. "
                "Please go to Plans & Billing to upgrade or purchase credits.",
            ),
            "payment",
        ),
        (400, _err("invalid_request_error", "Output blocked by content filtering policy"), "content_policy"),
        (400, _err("invalid_request_error", "messages.1.content: Field required"), "bad_request"),
        (402, _err("billing_error", "Payment required"), "payment"),
        (
            429,
            _err("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
            "rate_limit",
        ),
        (529, _err("overloaded_error", "Overloaded"), "overloaded"),
        (500, _err("api_error", "Internal server error"), "server"),
        (
            200,
            {
                "type": "error",
                "error": {"details": None, "type": "overloaded_error", "message": "Overloaded"},
            },
            "overloaded",
        ),
        (502, None, "server"),
        (503, None, "overloaded"),
        (418, None, "bad_request"),
        (422, {"detail": "unprocessable"}, "bad_request"),
        (500, {"error": "not an object"}, "server"),
        (429, {"type": "error", "error": {"type": "brand_new_error", "message": "?"}}, "rate_limit"),
    ],
)
def test_error_classification(status: int, body: dict[str, Any] | None, category: str) -> None:
    assert classify_anthropic_error(status, body) == category

"""What reaches the upstream: OpenAI parameters pass through unchanged, the gateway's own routing
controls do not, and tool calls come back to the SDK (plain and streamed)."""

from __future__ import annotations

import json
from typing import Any

import openai

from llmroute.testing.upstream import FakeUpstream

from .support import user

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
    },
}
FORCE_WEATHER: dict[str, Any] = {"type": "function", "function": {"name": "get_weather"}}


def test_openai_parameters_reach_the_upstream_unchanged(client: openai.OpenAI,
                                                        up: FakeUpstream) -> None:
    sent: dict[str, Any] = {
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "response_format": {"type": "json_object"},
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["\n\n", "END"],
        "n": 2,
        "seed": 42,
        "user": "user-1234",
        "max_tokens": 50,
        "presence_penalty": 0.5,
        "logit_bias": {"50256": -100},
        "metadata": {"trace": "abc"},
    }
    messages = [{"role": "system", "content": "Answer in JSON."}, *user("weather in Paris?")]

    client.chat.completions.create(model="fake/mid", messages=messages,
                                   **sent)

    [request] = up.requests
    assert request.body is not None
    assert request.body["model"] == "mid-up"
    assert request.body["messages"] == messages
    assert request.body["stream"] is False
    for key, value in sent.items():
        assert request.body[key] == value, key


def test_unknown_parameters_pass_through(client: openai.OpenAI, up: FakeUpstream) -> None:
    client.chat.completions.create(model="fake/mini", messages=user("hi"),
                                   extra_body={"reasoning_effort": "low", "vendor_knob": {"a": [1]}})

    [request] = up.requests
    assert request.body is not None
    assert request.body["reasoning_effort"] == "low"
    assert request.body["vendor_knob"] == {"a": [1]}


def test_routing_controls_do_not_reach_the_upstream(client: openai.OpenAI, up: FakeUpstream) -> None:
    client.chat.completions.create(
        model="auto", messages=user("hi"),
        extra_body={"plugins": [{"id": "auto-router", "allowed_models": ["fake/*"]}],
                    "models": ["fake/big"]})

    [request] = up.requests
    assert request.body is not None
    assert "plugins" not in request.body
    assert "models" not in request.body
    assert request.body["model"] == "mini-up"


def test_a_tool_call_comes_back_to_the_sdk(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(model="fake/mid", messages=user("weather in Paris?"),
                                          tools=[WEATHER_TOOL],
                                          tool_choice=FORCE_WEATHER)

    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {}
    assert up.requests[0].body is not None and up.requests[0].body["tool_choice"] == FORCE_WEATHER


def test_a_streamed_tool_call_comes_back_to_the_sdk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="fake/mid", messages=user("weather in Paris?"),
                                            tools=[WEATHER_TOOL],
                                            tool_choice=FORCE_WEATHER,
                                            stream=True)
    name, arguments, finish = "", "", None
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                name += (call.function and call.function.name) or ""
                arguments += (call.function and call.function.arguments) or ""
            finish = choice.finish_reason or finish

    assert (name, json.loads(arguments), finish) == ("get_weather", {}, "tool_calls")


def test_a_tool_call_through_the_anthropic_deployment(client: openai.OpenAI, up: FakeUpstream) -> None:
    resp = client.chat.completions.create(model="anthropic-ish/claude",
                                          messages=user("weather in Paris?"),
                                          tools=[WEATHER_TOOL],
                                          tool_choice=FORCE_WEATHER)

    [request] = up.requests
    assert request.protocol == "anthropic" and request.body is not None
    assert request.body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert request.body["tools"][0]["name"] == "get_weather"
    assert request.body["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    assert [c.function.name for c in choice.message.tool_calls] == ["get_weather"]

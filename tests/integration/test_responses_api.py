"""OpenAI's Responses API (`POST /v1/responses`) through a served gateway with the official `openai`
SDK as the client: translated to a chat request, routed like one (auto, concrete models, fallbacks,
the ledger with cost), translated back, streaming events included, with OpenAI or Anthropic
behind."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from llmroute.testing.behaviours import Ok, server_error
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve
from .test_ledger import ledger_config, wait_for_entries

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}}


def test_text_answer_routed_by_auto_with_usage_and_cost(serve: Serve, up: FakeUpstream,
                                                        tmp_path: Path) -> None:
    gw: GatewayServer = serve(ledger_config(tmp_path))
    with gw.client() as client:
        raw = client.responses.with_raw_response.create(model="auto", input="hi there")
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.model == raw.headers["x-llmroute-model"] == "fake/mini"
    assert response.output_text == "echo from mini-up: hi there"
    assert response.id == "resp_" + raw.headers["x-llmroute-request-id"].removeprefix("req_")
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens == 0
    sent = up.requests[-1].body
    assert sent["messages"] == [{"role": "user", "content": "hi there"}]
    [entry] = wait_for_entries(tmp_path, 1)
    assert entry.request_id == raw.headers["x-llmroute-request-id"]
    assert entry.model == "fake/mini" and entry.status == "ok"
    assert entry.input_tokens == usage.input_tokens and entry.output_tokens == usage.output_tokens
    expected = (Decimal(usage.input_tokens) * Decimal("0.15")
                + Decimal(usage.output_tokens) * Decimal("0.6")) / Decimal(1_000_000)
    assert entry.cost_usd == expected == Decimal(raw.headers["x-llmroute-cost-usd"])
    assert entry.response_text == response.output_text


def test_instructions_options_and_concrete_model(client: openai.OpenAI, up: FakeUpstream) -> None:
    response = client.responses.create(
        model="fake/big", instructions="Be brief.", input=[
            {"role": "user", "content": [{"type": "input_text", "text": "Describe this"},
                                         {"type": "input_image",
                                          "image_url": "data:image/png;base64,AAAA"}]}],
        temperature=0.2, top_p=0.9, max_output_tokens=50, metadata={"team": "a"})
    assert response.model == "fake/big" and response.instructions == "Be brief."
    assert response.metadata == {"team": "a"} and response.max_output_tokens == 50
    body = up.requests[-1].body
    assert body["model"] == "big-up" and body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["max_completion_tokens"] == 50 and "metadata" not in body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Describe this"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]


def test_function_calling_round_trip(client: openai.OpenAI, up: FakeUpstream) -> None:
    first = client.responses.create(model="fake/mid", input="Weather in Paris?",
                                    tools=[WEATHER],  # type: ignore[list-item]
                                    tool_choice={"type": "function", "name": "get_weather"})
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {}
    sent = up.requests[-1].body
    assert sent["tools"] == [{"type": "function", "function": {
        k: v for k, v in WEATHER.items() if k != "type"}}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    up.script("mid-up", Ok(text="It is sunny in Paris."))
    second = client.responses.create(
        model="fake/mid", tools=[WEATHER],  # type: ignore[list-item]
        input=[{"role": "user", "content": "Weather in Paris?"},
               {"type": "function_call", "call_id": call.call_id, "name": call.name,
                "arguments": call.arguments},
               {"type": "function_call_output", "call_id": call.call_id,
                "output": '{"sky": "sunny"}'}])
    assert second.output_text == "It is sunny in Paris."
    messages = up.requests[-1].body["messages"]
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.call_id, "type": "function",
         "function": {"name": "get_weather", "arguments": call.arguments}}]}
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id,
                           "content": '{"sky": "sunny"}'}


def test_json_schema_text_format(client: openai.OpenAI, up: FakeUpstream) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}},
              "required": ["answer"], "additionalProperties": False}
    up.script("mid-up", Ok(text='{"answer": 4}'))
    response = client.responses.create(
        model="fake/mid", input="2+2?",
        text={"format": {"type": "json_schema", "name": "sum", "schema": schema, "strict": True}})
    assert json.loads(response.output_text) == {"answer": 4}
    assert up.requests[-1].body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "sum", "schema": schema, "strict": True}}


def test_anthropic_model_behind_both_ways(client: openai.OpenAI, up: FakeUpstream) -> None:
    response = client.responses.create(model="anthropic-ish/claude", instructions="Be brief.",
                                       input="hello claude", max_output_tokens=64)
    assert response.model == "anthropic-ish/claude"
    assert response.output_text == "echo from claude-up: hello claude"
    sent = up.requests[-1]
    assert sent.protocol == "anthropic" and sent.body["system"] == "Be brief."
    assert sent.body["max_tokens"] == 64
    called = client.responses.create(model="anthropic-ish/claude",
                                     input="weather? [[tool:get_weather]]",
                                     tools=[WEATHER],  # type: ignore[list-item]
                                     tool_choice="required")
    [call] = called.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id and up.requests[-1].body["tool_choice"] == {"type": "any"}
    with client.responses.stream(model="anthropic-ish/claude", input="stream claude") as stream:
        final = stream.get_final_response()
    assert final.output_text == "echo from claude-up: stream claude"
    assert final.usage is not None and final.usage.output_tokens > 0


def test_fallback_to_another_provider(client: openai.OpenAI, up: FakeUpstream) -> None:
    up.script("mini-up", server_error(500), server_error(500))
    response = client.responses.create(model="auto", input="hi")
    assert response.model == "anthropic-ish/claude"
    assert response.output_text == "echo from claude-up: hi"


def test_stream_events_in_order_with_usage(client: openai.OpenAI, up: FakeUpstream) -> None:
    events = list(client.responses.create(model="fake/mid", input="stream these words",
                                          stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == "echo from mid-up: stream these words"
    done = events[-1]
    assert done.type == "response.completed"
    assert done.response.output_text == "".join(deltas) and done.response.model == "fake/mid"
    assert done.response.usage is not None and done.response.usage.output_tokens > 0


def test_stream_helper_with_a_function_call(client: openai.OpenAI, up: FakeUpstream) -> None:
    with client.responses.stream(model="fake/mid", input="weather",
                                 tools=[WEATHER],  # type: ignore[list-item]
                                 tool_choice={"type": "function", "name": "get_weather"}
                                 ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    [call] = final.output
    assert call.type == "function_call" and call.name == "get_weather" and call.arguments == "{}"


def test_stream_failing_mid_way_ends_with_response_failed(client: openai.OpenAI,
                                                         up: FakeUpstream) -> None:
    from llmroute.testing.behaviours import ErrorMidStream

    up.script("mid-up", ErrorMidStream(after_chunks=2))
    events = list(client.responses.create(model="fake/mid", input="one two three four",
                                          stream=True))
    kinds = [e.type for e in events]
    assert kinds[-2:] == ["response.failed", "error"] and "response.completed" not in kinds
    assert events[-2].response.status == "failed"  # type: ignore[union-attr]


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"previous_response_id": "resp_123"}, "previous_response_id"),
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
     "input[0].call_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0].type"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
    ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ({"temperature": 7}, "temperature"),
    ({"extra_body": {"frobnicate": 1}}, "frobnicate"),
])
def test_bad_requests_are_400s_naming_the_param(client: openai.OpenAI, kwargs: dict[str, object],
                                                param: str) -> None:
    args: dict[str, object] = {"model": "auto", "input": "hi", **kwargs}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(**args)  # type: ignore[call-overload]
    assert caught.value.param == param
    assert caught.value.status_code == 400


def test_errors_are_the_sdks_exceptions(client: openai.OpenAI, up: FakeUpstream) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no/such-model", input="x")
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="auto", input=[])
    assert caught.value.param == "input"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="auto", input="x", stream=True, tool_choice="required")


def test_stream_is_ledgered_with_usage_and_cost(serve: Serve, up: FakeUpstream,
                                                tmp_path: Path) -> None:
    gw = serve(ledger_config(tmp_path))
    with gw.client() as client, client.responses.stream(model="fake/mid",
                                                        input="count my words") as stream:
        final = stream.get_final_response()
    [entry] = wait_for_entries(tmp_path, 1)
    assert entry.stream and entry.model == "fake/mid" and entry.status == "ok"
    assert final.usage is not None and entry.output_tokens == final.usage.output_tokens
    assert entry.cost_usd == (Decimal(final.usage.input_tokens) * Decimal("0.4") + Decimal(
        final.usage.output_tokens) * Decimal("1.6")) / 1_000_000
    assert entry.response_text == final.output_text
    assert final.id == "resp_" + entry.request_id.removeprefix("req_")


@pytest.mark.parametrize("body", [
    {"model": "auto", "input": 5}, {"model": "auto", "input": [5]},
    {"model": "auto", "input": [{"role": "user", "content": [7]}]},
    {"model": "auto", "input": [{"role": "user", "content": {"a": 1}}]},
    {"model": "auto", "input": [{"type": "function_call", "call_id": 1}]},
    {"model": "auto", "input": "x", "tools": {"a": 1}},
    {"model": "auto", "input": "x", "tools": [{"type": "function"}]},
    {"model": "auto", "input": "x", "tools": [WEATHER], "tool_choice": 3},
    {"model": "auto", "input": "x", "tools": [WEATHER], "tool_choice": {"type": "function"}},
    {"model": "auto", "input": "x", "text": "json"},
    {"model": "auto", "input": "x", "text": {"format": {"type": "yaml"}}},
    {"model": "auto", "input": "x", "metadata": {"a": 1}},
    {"model": "auto", "input": "x", "instructions": ["a"]},
    {"model": "auto", "input": "x", "max_output_tokens": "many"},
    {"model": 3, "input": "x"}, {"input": "x"}, [], "text",
])
def test_malformed_bodies_are_400s_never_500s(gw: GatewayServer, body: object) -> None:
    with gw.http() as http:
        answer = http.post("/v1/responses", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_the_response_cache_serves_a_repeated_response(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"cache": {"response": {"enabled": True}}})
    with gw.client() as client:
        first = client.responses.with_raw_response.create(model="auto", input="cache me",
                                                          temperature=0)
        again = client.responses.with_raw_response.create(model="auto", input="cache me",
                                                          temperature=0)
        streamed = list(client.responses.create(model="auto", input="cache me", temperature=0,
                                                stream=True))
    assert first.headers["x-llmroute-cache"] == "miss"
    assert again.headers["x-llmroute-cache"] == "hit" and up.call_count() == 1
    assert again.parse().output_text == first.parse().output_text
    assert again.parse().id != first.parse().id  # a new request, with its own id
    done = streamed[-1]
    assert done.type == "response.completed" and up.call_count() == 1
    assert done.response.output_text == first.parse().output_text


def test_sdk_parse_with_a_pydantic_text_format(client: openai.OpenAI, up: FakeUpstream) -> None:
    from pydantic import BaseModel

    class Sum(BaseModel):
        answer: int

    up.script("mid-up", Ok(text='{"answer": 4}'))
    parsed = client.responses.parse(model="fake/mid", input="2+2?", text_format=Sum)
    assert parsed.output_parsed == Sum(answer=4)
    sent = up.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Sum"
    assert sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["schema"]["required"] == ["answer"]

"""The Responses API's pure translations (request -> chat body, chat answer -> Response, chat
stream -> Responses events) and the `embeddings:` config check; the served behaviour is in
tests/integration/test_responses_api.py and test_embeddings_api.py."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from helpers import check_yaml
from llmroute.embeddings import check_body
from llmroute.embeddings_config import embedding_price
from llmroute.errors import InvalidRequestError, UpstreamError
from llmroute.responses_answer import from_chat
from llmroute.responses_request import chat_body, echoed
from llmroute.responses_stream import ResponsesStream


def test_consecutive_function_calls_become_one_assistant_message() -> None:
    body = chat_body({"model": "auto", "input": [
        {"role": "user", "content": "two cities"},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"c\":1}"},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{\"c\":2}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sun"},
        {"type": "function_call_output", "call_id": "c2",
         "output": [{"type": "input_text", "text": "rain"}]},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Sun and rain."}]}]})
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1", "c2"]
    assert messages[3] == {"role": "tool", "tool_call_id": "c2", "content": "rain"}
    assert messages[4] == {"role": "assistant", "content": "Sun and rain."}


def test_stream_asks_for_usage_and_text_format_json_object() -> None:
    body = chat_body({"model": "m", "input": "x", "stream": True,
                      "text": {"format": {"type": "json_object"}}, "store": False})
    assert body["stream_options"] == {"include_usage": True}
    assert body["response_format"] == {"type": "json_object"}
    assert "store" not in body


@pytest.mark.parametrize(("data", "param"), [
    ({"input": [{"type": "input_image", "image_url": "x"}]}, "input[0].type"),
    ({"input": [{"role": "assistant", "content": [
        {"type": "input_image", "image_url": "data:x"}]}]}, "input[0].content"),
    ({"input": "x", "conversation": "conv_1"}, "conversation"),
    ({"input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice.type"),
    ({}, "input"),
])
def test_refusals_name_the_param(data: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        chat_body({"model": "m", **data})
    assert caught.value.param == param and caught.value.status == 400


def test_a_truncated_answer_is_incomplete_with_usage_translated() -> None:
    completion = {"model": "fake/mid", "created": 5, "choices": [{"finish_reason": "length",
                  "message": {"role": "assistant", "content": "cut"}}],
                  "usage": {"prompt_tokens": 10, "completion_tokens": 3,
                            "prompt_tokens_details": {"cached_tokens": 8}, "cost": 0.5}}
    response = from_chat(completion, "req_abc", echoed({"input": "x"}))
    assert response["id"] == "resp_abc" and response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["usage"]["input_tokens_details"] == {"cached_tokens": 8}
    assert response["usage"]["total_tokens"] == 13 and response["usage"]["cost"] == 0.5
    assert response["output"][0]["content"][0]["text"] == "cut"


def test_stream_of_text_then_a_call_closes_items_in_order() -> None:
    state = ResponsesStream("req_1", "m", echoed({"input": "x"}))
    events = state.start()
    chunks = [{"choices": [{"delta": {"content": "Hi"}}]},
              {"choices": [{"delta": {"tool_calls": [
                  {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{"}}]}}]},
              {"choices": [{"delta": {"tool_calls": [
                  {"index": 0, "function": {"arguments": "}"}}]}, "finish_reason": "tool_calls"}]},
              {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}]
    for chunk in chunks:
        events += list(state.feed(chunk))
    events += list(state.end())
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    assert added == [0, 1]
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]
    assert final["output"][1]["arguments"] == "{}" and final["usage"]["output_tokens"] == 2


def test_a_failed_stream_ends_with_response_failed_and_error() -> None:
    state = ResponsesStream("req_1", "m", echoed({"input": "x"}))
    state.start()
    list(state.feed({"choices": [{"delta": {"content": "Hi"}}]}))
    failed, error = state.fail(UpstreamError("server", "boom", provider="p", model="m"))
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert error["type"] == "error" and error["message"] == "boom"


def test_embedding_input_checks_and_prices() -> None:
    assert check_body({"model": "e", "input": ["abcd", "x"]}) == ("e", 3)
    assert check_body({"model": "e", "input": [[1, 2, 3], [4]]}) == ("e", 4)
    for bad in ({"model": "e", "input": ""}, {"model": "e", "input": [1, "a"]},
                {"model": "e", "input": "x", "encoding_format": "int8"},
                {"model": "e", "input": "x", "dimensions": 0}):
        with pytest.raises(InvalidRequestError):
            check_body(bad)
    assert embedding_price("text-embedding-3-small", "x", None) == Decimal("0.02")
    assert embedding_price("acme/embed", "acme-embed", None) is None


def test_config_check_reports_embedding_problems(tmp_path: Path) -> None:
    checked = check_yaml(tmp_path, """
embeddings:
  models:
    acme/embed: {deployment: nowhere}
    openai/unpriced-embed: {deployment: openai}
    text-embedding-3-small: {deployment: openai}
""")
    found = {p.path: p.severity for p in checked.problems if p.path.startswith("embeddings")}
    assert found == {"embeddings.models.acme/embed.deployment": "error",
                     "embeddings.models.openai/unpriced-embed": "warning"}

"""The Gemini translation, pure: what the end-to-end tests cannot easily make the fake send
(thinking tokens, several candidates, a safety stop mid-answer, proxies' error shapes)."""

from __future__ import annotations

import pytest

from llmroute.providers.anthropic_errors import WireError
from llmroute.providers.gemini_errors import classify, from_error, retry_delay
from llmroute.providers.gemini_stream import GeminiStreamTranslator
from llmroute.providers.gemini_wire import (
    SafetyBlock,
    finish_reason,
    from_gemini_response,
    openai_usage,
    to_gemini_request,
)


def test_usage_counts_thoughts_as_completion_and_cached_content_as_cached() -> None:
    usage = openai_usage({"promptTokenCount": 1200, "cachedContentTokenCount": 1024,
                          "candidatesTokenCount": 30, "thoughtsTokenCount": 200,
                          "toolUsePromptTokenCount": 5, "totalTokenCount": 1435})
    assert usage == {"prompt_tokens": 1205, "completion_tokens": 230, "total_tokens": 1435,
                     "prompt_tokens_details": {"cached_tokens": 1024},
                     "completion_tokens_details": {"reasoning_tokens": 200}}


def test_thought_parts_are_left_out_and_candidates_become_choices() -> None:
    answer = {"responseId": "r1", "candidates": [
        {"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
            {"text": "pondering", "thought": True}, {"text": "Hello"}]}},
        {"index": 1, "finishReason": "MAX_TOKENS", "content": {"parts": [{"text": "Hi"}]}}],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}
    out = from_gemini_response(answer, "gemini-2.5-pro", 7)
    assert out["id"] == "chatcmpl-r1"
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in out["choices"]] == [
        (0, "Hello", "stop"), (1, "Hi", "length")]


def test_function_calls_get_distinct_ids_and_json_arguments() -> None:
    answer = {"responseId": "r2", "candidates": [{"finishReason": "STOP", "content": {"parts": [
        {"functionCall": {"name": "a", "args": {"x": 1}}},
        {"functionCall": {"name": "b", "args": {}}}]}}]}
    choice = from_gemini_response(answer, "m", 0)["choices"][0]
    calls = choice["message"]["tool_calls"]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("a", '{"x":1}'), ("b", "{}")]
    assert len({c["id"] for c in calls}) == 2


@pytest.mark.parametrize(("reason", "mapped"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"),
    ("OTHER", "stop"), (None, "stop")])
def test_finish_reasons(reason: str | None, mapped: str) -> None:
    assert finish_reason(reason, called=False) == mapped


def test_a_blocked_prompt_and_an_answer_blocked_before_content_are_safety_blocks() -> None:
    with pytest.raises(SafetyBlock, match="SAFETY"):
        from_gemini_response({"promptFeedback": {"blockReason": "SAFETY"}}, "m", 0)
    with pytest.raises(SafetyBlock):
        from_gemini_response({"candidates": [{"finishReason": "SAFETY"}]}, "m", 0)
    partial = {"candidates": [{"finishReason": "SAFETY", "content": {"parts": [{"text": "Par"}]}}]}
    assert from_gemini_response(partial, "m", 0)["choices"][0]["finish_reason"] == "content_filter"


def test_stream_translation_text_calls_finish_and_usage() -> None:
    t = GeminiStreamTranslator("m", 1, include_usage=True)
    chunks = t.feed({"responseId": "s", "candidates": [{"content": {"parts": [{"text": "Hel"}]}}],
                     "usageMetadata": {"promptTokenCount": 4}})
    chunks += t.feed({"candidates": [{"content": {"parts": [
        {"text": "lo"}, {"functionCall": {"name": "f", "args": {"a": 1}}}]},
        "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 3,
                          "thoughtsTokenCount": 2}})
    assert t.finished
    chunks += t.end()
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content") or "" for d in deltas) == "Hello"
    (call,) = [tc for d in deltas for tc in d.get("tool_calls") or ()]
    assert call["index"] == 0 and call["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == 5 and chunks[-1]["choices"] == []


def test_a_stream_unfinished_is_not_finished() -> None:
    t = GeminiStreamTranslator("m", 1, include_usage=False)
    t.feed({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})
    assert not t.finished


def test_request_mapping_of_roles_tools_and_choices() -> None:
    body = {"messages": [
        {"role": "developer", "content": "Rules."},
        {"role": "user", "content": [{"type": "text", "text": "see"},
                                     {"type": "image_url",
                                      "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": "calling", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"q\":1}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "plain text"},
        {"role": "tool", "tool_call_id": "c2", "content": "{\"ok\": true}"}],
        "n": 2, "seed": 3, "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "allowed_tools", "allowed_tools": {
            "mode": "required", "tools": [{"type": "function", "function": {"name": "f"}}]}},
        "response_format": {"type": "json_object"}, "user": "u1", "parallel_tool_calls": False}
    out = to_gemini_request(body)
    assert out["systemInstruction"] == {"parts": [{"text": "Rules."}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "see"},
                                   {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
        {"role": "model", "parts": [{"text": "calling"},
                                    {"functionCall": {"name": "f", "args": {"q": 1}}},
                                    {"functionCall": {"name": "g", "args": {}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "f", "response": {"content": "plain text"}}},
            {"functionResponse": {"name": "g", "response": {"ok": True}}}]}]
    assert out["generationConfig"] == {"seed": 3, "candidateCount": 2,
                                       "responseMimeType": "application/json"}
    assert out["tools"] == [{"functionDeclarations": [{"name": "f"}]}]
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY",
                                                           "allowedFunctionNames": ["f"]}}


@pytest.mark.parametrize(("body", "param"), [
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"stop": ["a", "b", "c", "d", "e", "f"]}, "stop"),
    ({"functions": []}, "functions"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0].type"),
    ({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
     "messages[0].tool_call_id"),
])
def test_what_gemini_cannot_express_names_the_param(body: dict[str, object], param: str) -> None:
    with pytest.raises(WireError) as caught:
        to_gemini_request({"messages": [{"role": "user", "content": "hi"}], **body})
    assert caught.value.param == param


@pytest.mark.parametrize(("status", "name", "message", "kind"), [
    (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "auth"),
    (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers", "auth"),
    (403, "PERMISSION_DENIED", "Permission denied on resource", "permission"),
    (400, "INVALID_ARGUMENT", "The input token count (9) exceeds the maximum number of tokens "
                              "allowed (8).", "context_window"),
    (400, "INVALID_ARGUMENT", "Invalid value at 'generation_config'", "bad_request"),
    (400, "FAILED_PRECONDITION", "User location is not supported", "bad_request"),
    (404, "NOT_FOUND", "models/x is not found", "not_found"),
    (429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", "rate_limit"),
    (500, "INTERNAL", "An internal error has occurred", "server"),
    (503, "UNAVAILABLE", "The model is overloaded", "overloaded"),
    (504, "DEADLINE_EXCEEDED", "Deadline exceeded", "timeout"),
    (502, "", "", "server"),
])
def test_error_classification(status: int, name: str, message: str, kind: str) -> None:
    assert classify(status, name, message) == kind


def test_retry_delay_from_retry_info_and_the_list_shaped_body() -> None:
    body = [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                    "retryDelay": "37s"}]}}]
    error = from_error(429, body, {}, "gem", "m")
    assert (error.kind, error.retry_after, error.code) == ("rate_limit", 37.0, "RESOURCE_EXHAUSTED")
    assert retry_delay({}, {"retry-after": "2"}) == 2.0

"""Gemini translation benchmark: CPU per OpenAI → Gemini request (a small one, and a 62-message
agent loop with 20 tool calls and results and 5 tools), per Gemini answer → chat.completion,
and per stream event. Run by hand: `PYTHONPATH=src python bench/bench_gemini_translation.py`."""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

from llmroute.providers.gemini_stream import GeminiStreamTranslator
from llmroute.providers.gemini_wire import from_gemini_response, to_gemini_request

SMALL: dict[str, Any] = {"max_tokens": 50, "temperature": 0.2, "messages": [
    {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]}
ANSWER: dict[str, Any] = {
    "responseId": "r", "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 50},
    "candidates": [{"index": 0, "finishReason": "STOP",
                    "content": {"parts": [{"text": "hello " * 50}]}}]}


def agent() -> dict[str, Any]:
    tools = [{"type": "function", "function": {"name": f"t{i}", "parameters": {
        "type": "object", "properties": {"a": {"type": "string"}}}}} for i in range(5)]
    messages: list[dict[str, Any]] = [{"role": "system", "content": "x" * 500}]
    for i in range(20):
        call = {"id": f"c{i}", "type": "function",
                "function": {"name": "t1", "arguments": '{"a":"b"}'}}
        messages += [{"role": "user", "content": f"question {i}"},
                     {"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": f"c{i}", "content": '{"ok":1}'}]
    return {"messages": [*messages, {"role": "user", "content": "final"}], "tools": tools}


def stream() -> None:
    translator = GeminiStreamTranslator("m", 0, include_usage=True)
    for _ in range(20):
        translator.feed({"candidates": [{"content": {"parts": [{"text": "w "}]}}]})
    translator.feed({"candidates": [{"content": {"parts": [{"text": "end"}]},
                                     "finishReason": "STOP"}],
                     "usageMetadata": {"promptTokenCount": 3}})
    translator.end()


def per_call_us(fn: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    big = agent()
    print(f"request, small:           {per_call_us(lambda: to_gemini_request(SMALL), 20000):6.1f} µs")
    print(f"request, 62-message agent: {per_call_us(lambda: to_gemini_request(big), 2000):6.1f} µs")
    answer = per_call_us(lambda: from_gemini_response(ANSWER, "m", 0), 20000)
    print(f"answer -> chat.completion: {answer:6.1f} µs")
    print(f"stream event:              {per_call_us(stream, 2000) / 21:6.2f} µs")


if __name__ == "__main__":
    main()

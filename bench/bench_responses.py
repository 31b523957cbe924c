"""Responses API translation benchmark: CPU per request for what `/v1/responses` adds to a chat
request — the request's translation (`chat_body`) before `chat_request`, the answer's
(`from_chat`), and per chunk of a stream (`ResponsesStream.feed`) — for a small request and an
agent loop (60 input items with function calls and outputs, 8 tools). Run by hand:
`python bench/bench_responses.py`."""

from __future__ import annotations

import timeit
from typing import Any

from llmroute.chat import chat_request
from llmroute.responses_answer import from_chat
from llmroute.responses_request import chat_body, echoed
from llmroute.responses_stream import ResponsesStream

SMALL: dict[str, Any] = {"model": "auto", "instructions": "You are a helpful assistant.",
                         "input": "What is the capital of France?", "temperature": 0.7,
                         "max_output_tokens": 256}


def agent() -> dict[str, Any]:
    """60 items: user turns, function calls and their outputs, 8 function tools."""
    tools = [{"type": "function", "name": f"tool_{i}", "description": "Looks something up.",
              "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                             "required": ["q"]}} for i in range(8)]
    items: list[dict[str, Any]] = []
    for i in range(20):
        items.append({"role": "user", "content": [
            {"type": "input_text", "text": f"Step {i}: look it up. " * 20},
            {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"}]})
        items.append({"type": "function_call", "call_id": f"call_{i}", "name": f"tool_{i % 8}",
                      "arguments": '{"q": "x"}'})
        items.append({"type": "function_call_output", "call_id": f"call_{i}",
                      "output": "result " * 40})
    return {"model": "auto", "instructions": "You are an agent. " * 50, "input": items,
            "tools": tools, "tool_choice": "auto", "top_p": 0.9}


ANSWER = {"id": "x", "model": "fake/mid", "created": 1, "choices": [{
    "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris. " * 40}}],
    "usage": {"prompt_tokens": 30, "completion_tokens": 80, "cost": 0.0001}}
CHUNK = {"choices": [{"index": 0, "delta": {"content": "Paris "}}]}


def us(fn: Any, number: int) -> float:
    """Best of 5 runs, µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> None:
    for name, body in (("small", SMALL), ("agent (60 items)", agent())):
        translated = chat_body(body)
        n = 20_000 if name == "small" else 500
        print(f"{name}: chat_body {us(lambda b=body: chat_body(b), n):.1f} µs, then "
              f"chat_request {us(lambda t=translated: chat_request(t), n):.1f} µs")
    echo = echoed(SMALL)
    print(f"answer: from_chat {us(lambda: from_chat(ANSWER, 'req_ab', echo), 20_000):.1f} µs")
    state = ResponsesStream("req_ab", "fake/mid", echo)
    state.start()
    print(f"stream: per text chunk {us(lambda: list(state.feed(CHUNK)), 50_000):.2f} µs")


if __name__ == "__main__":
    main()

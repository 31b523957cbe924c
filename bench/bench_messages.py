"""Messages API translation benchmark: CPU per `messages_request` (validation, translation to the
chat body, and the chat validation it ends with) next to `chat_request` on the same conversation
in OpenAI form, for a small request and an agent's (60 messages: tool_use / tool_result rounds,
8 tools, an image per user turn); and per answer translated back (`to_message`) and per streamed
chunk (`MessageStream.feed`). Run by hand: `python bench/bench_messages.py`; results in
docs/benchmarks.md."""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from typing import Any

from llmroute.chat import chat_request
from llmroute.messages_reply import MessageStream, to_message
from llmroute.messages_request import messages_request

PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
SMALL: dict[str, Any] = {
    "model": "auto", "max_tokens": 256, "system": "You are a helpful assistant.",
    "messages": [{"role": "user", "content": "What is the capital of France?"}]}


def large() -> dict[str, Any]:
    """60 messages: user turns (text + image, then tool results) and assistant tool calls."""
    tools = [{"name": f"tool_{i}", "description": "Looks something up.",
              "input_schema": {"type": "object", "properties": {"q": {"type": "string"}},
                               "required": ["q"]}} for i in range(8)]
    messages: list[dict[str, Any]] = []
    for i in range(30):
        user: list[dict[str, Any]] = [{"type": "text", "text": f"Step {i}: look it up. " * 20},
                                      {"type": "image", "source": PNG}]
        if i:
            user.insert(0, {"type": "tool_result", "tool_use_id": f"toolu_{i - 1}",
                            "content": "result " * 40})
        messages.append({"role": "user", "content": user})
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{i}", "name": f"tool_{i % 8}",
             "input": {"q": "x"}}]})
    return {"model": "auto", "max_tokens": 1024, "system": "You are an agent. " * 50,
            "messages": messages, "tools": tools,
            "tool_choice": {"type": "auto"}, "stop_sequences": ["\n\n"]}


def per_call_us(fn: Callable[[], object], number: int) -> float:
    """The best of 7 runs of `number` calls, in µs of this process's CPU per call."""
    runs = timeit.repeat(fn, number=number, repeat=7, timer=time.process_time)
    return min(runs) / number * 1e6


COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-1", "model": "fake/mini", "choices": [{
        "index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "Paris is the capital of France."}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}}
CHUNK: dict[str, Any] = {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {
    "content": "Paris "}, "finish_reason": None}]}


def main() -> None:
    for name, body, number in (("small", SMALL, 20000), ("agent, 60 messages", large(), 500)):
        chat_body = dict(messages_request(body).body)
        ours = per_call_us(lambda b=body: messages_request(b), number)  # type: ignore[misc]
        base = per_call_us(lambda b=chat_body: chat_request(b), number)  # type: ignore[misc]
        print(f"{name}: messages_request {ours:.1f} µs, chat_request on the same chat body "
              f"{base:.1f} µs (translation {ours - base:.1f} µs)")
    print(f"answer -> message: {per_call_us(lambda: to_message(COMPLETION), 50000):.2f} µs")
    stream = MessageStream("fake/mini", "req_1")
    stream.feed(CHUNK)
    print(f"stream chunk -> events: {per_call_us(lambda: stream.feed(CHUNK), 50000):.2f} µs")


if __name__ == "__main__":
    main()

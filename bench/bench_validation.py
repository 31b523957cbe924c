"""Chat-request validation benchmark: CPU per `chat_request` (schema + cross-field checks) for a
typical small request and a large one (an agent loop: 60 messages with tool calls and results, 8
tools, an image part). Run by hand: `python bench/bench_validation.py`; results in
docs/benchmarks.md."""

from __future__ import annotations

import time
import timeit
from typing import Any

from llmroute.chat import chat_request

SMALL: dict[str, Any] = {
    "model": "auto", "temperature": 0.7, "max_tokens": 256,
    "messages": [{"role": "system", "content": "You are a helpful assistant."},
                 {"role": "user", "content": "What is the capital of France?"}]}


def large() -> dict[str, Any]:
    """60 messages: a system prompt, then user / assistant tool call / tool result rounds."""
    tools = [{"type": "function", "function": {
        "name": f"tool_{i}", "description": "Looks something up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                       "required": ["q"]}}} for i in range(8)]
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are an agent. " * 50}]
    for i in range(20):
        messages.append({"role": "user", "content": [
            {"type": "text", "text": f"Step {i}: look it up. " * 20},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png",
                                                "detail": "low"}}]})
        messages.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": f"call_{i}", "type": "function",
            "function": {"name": f"tool_{i % 8}", "arguments": '{"q": "x"}'}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": "result " * 40})
    return {"model": "auto", "messages": messages[:60], "tools": tools, "tool_choice": "auto",
            "stop": ["\n\n"], "logit_bias": {"50256": -100}, "seed": 7, "top_p": 0.9}


def per_call_us(body: dict[str, Any], number: int) -> float:
    """The best of 7 runs of `number` calls, in µs of this process's CPU per call (CPU time, so
    that other jobs on a shared machine do not count)."""
    runs = timeit.repeat(lambda: chat_request(body), number=number, repeat=7,
                         timer=time.process_time)
    return min(runs) / number * 1e6


def main() -> None:
    print(f"small request: {per_call_us(SMALL, 20000):.1f} µs per chat_request")
    print(f"large request (60 messages, 8 tools): {per_call_us(large(), 1000):.1f} µs")


if __name__ == "__main__":
    main()

"""A chat completion (OpenAI-shaped, whichever provider answered) as an Anthropic Messages API
response, and a completion's stream as the Messages API's events. Pure; the reverse of
`providers/anthropic_wire.from_anthropic_response` and `providers/anthropic_stream.py`.

* finish_reason -> stop_reason through `anthropic_wire.FINISH_REASONS` read backwards (stop ->
  end_turn, length -> max_tokens, tool_calls -> tool_use, content_filter -> refusal).
* usage: `input_tokens` is the prompt less its cache reads and writes (OpenAI's prompt count
  includes them); `cache_read_input_tokens` / `cache_creation_input_tokens` from
  `prompt_tokens_details`.
* the id: an Anthropic upstream's own message id when the completion carries one, else `msg_`
  and the completion's id. `model` is the model that answered.
* tool call arguments that are not a JSON object (an upstream's malformed call) are kept under
  `input._raw_arguments` rather than lost.
* reasoning comes first, as thinking blocks: the message's `thinking_blocks` (an Anthropic
  upstream's, with their signatures), else its `reasoning_content` (another upstream's: one
  thinking block without a signature).

The stream: `message_start` (usage counted at the end: `input_tokens` 0 there, the real counts
in `message_delta`, which the Anthropic SDKs read), `ping`, one `content_block_*` triple per
thinking run, text run or tool call (`thinking_delta` from `reasoning_content`, then the
`signature_delta` a `thinking_blocks` delta carries, which closes it; a redacted block whole;
`text_delta`, `input_json_delta`), `message_delta` with stop_reason and usage, `message_stop`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from .providers.anthropic_wire import FINISH_REASONS

JSONDict = dict[str, Any]
#: OpenAI finish_reason -> Anthropic stop_reason (the first Anthropic reason of each).
STOP_REASONS: Final[Mapping[str, str]] = {
    **{v: k for k, v in reversed(list(FINISH_REASONS.items()))}, "function_call": "tool_use"}


def stop_reason(finish_reason: str | None) -> str:
    """The Anthropic stop_reason of an OpenAI finish_reason."""
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def message_id(completion_id: Any) -> str:
    """The message id for a completion id (an Anthropic upstream's own id when it shows)."""
    raw = str(completion_id or "")
    raw = raw.removeprefix("chatcmpl-")
    return raw if raw.startswith("msg_") else f"msg_{raw}"


def anthropic_usage(usage: Any) -> JSONDict:
    """Messages API usage for an OpenAI usage object (absent: zeros)."""
    usage = usage if isinstance(usage, Mapping) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, Mapping) else {}
    read = int(details.get("cached_tokens") or 0)
    write = int(details.get("cache_write_tokens") or 0)
    return {"input_tokens": max(0, int(usage.get("prompt_tokens") or 0) - read - write),
            "output_tokens": int(usage.get("completion_tokens") or 0),
            "cache_read_input_tokens": read, "cache_creation_input_tokens": write}


def tool_input(arguments: Any) -> JSONDict:
    """A tool call's arguments as the `input` object."""
    if isinstance(arguments, Mapping):
        return dict(arguments)
    try:
        parsed = json.loads(arguments) if arguments else {}
    except (TypeError, ValueError):
        parsed = None
    return parsed if isinstance(parsed, dict) else {"_raw_arguments": arguments}


def to_message(completion: Mapping[str, Any]) -> JSONDict:
    """The Messages API response for a chat completion."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content = thinking_blocks(message)
    text = message.get("content")
    if isinstance(text, list):  # content parts, as a few OpenAI-compatible servers answer
        text = "".join(p.get("text") or "" for p in text if isinstance(p, Mapping))
    if text or not message.get("tool_calls"):
        content.append({"type": "text", "text": text or ""})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": tool_input(function.get("arguments"))})
    return {"id": message_id(completion.get("id")), "type": "message", "role": "assistant",
            "model": completion.get("model"), "content": content,
            "stop_reason": stop_reason(choice.get("finish_reason")), "stop_sequence": None,
            "usage": anthropic_usage(completion.get("usage"))}


def thinking_blocks(message: Mapping[str, Any]) -> list[JSONDict]:
    """The thinking blocks of a chat message's reasoning."""
    blocks = message.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        return [dict(b) for b in blocks if isinstance(b, Mapping)]
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        return [{"type": "thinking", "thinking": reasoning, "signature": ""}]
    return []


def sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event as the Messages API writes it."""
    return f"event: {name}\ndata: ".encode() + json.dumps(
        {"type": name, **data}, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


class MessageStream:
    """Chat-completion chunks -> Messages API events for one streamed answer."""

    def __init__(self, model: str, request_id: str):
        self.model = model
        self.id = f"msg_{request_id}"
        self.index = -1  # the content block being written
        self.open: str | None = None  # "text", or "tool:<chunk index>"
        self.finish: str | None = None
        self.usage: Any = None

    def start(self) -> list[bytes]:
        """message_start and a ping."""
        message: JSONDict = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": anthropic_usage(None)}
        return [sse_event("message_start", {"message": message}), sse_event("ping", {})]

    def feed(self, chunk: Mapping[str, Any]) -> list[bytes]:
        """The events for one chunk."""
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        out: list[bytes] = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            out += self._thinking(delta)
            if delta.get("content"):
                out += self._block("text", {"type": "text", "text": ""})
                out.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                out += self._tool(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def end(self) -> list[bytes]:
        """The close of the last block, message_delta and message_stop."""
        out = self._close()
        usage = anthropic_usage(self.usage)
        out.append(sse_event("message_delta", {
            "delta": {"stop_reason": stop_reason(self.finish), "stop_sequence": None},
            "usage": usage}))
        out.append(sse_event("message_stop", {}))
        return out

    def _thinking(self, delta: Mapping[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        if delta.get("reasoning_content"):
            out += self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            out.append(self._delta({"type": "thinking_delta",
                                    "thinking": delta["reasoning_content"]}))
        for block in delta.get("thinking_blocks") or ():
            if block.get("type") == "redacted_thinking":
                out += self._block("redacted", dict(block))
                out += self._close()
            elif block.get("signature"):
                out += self._block("thinking", {"type": "thinking", "thinking": "",
                                                "signature": ""})
                out.append(self._delta({"type": "signature_delta",
                                        "signature": block["signature"]}))
                out += self._close()  # a signature ends its block
        return out

    def _tool(self, call: Mapping[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        key = f"tool:{call.get('index', 0)}"
        function = call.get("function") or {}
        if self.open != key:
            out += self._block(key, {"type": "tool_use", "id": call.get("id"),
                                     "name": function.get("name"), "input": {}})
        if function.get("arguments"):
            out.append(self._delta({"type": "input_json_delta",
                                    "partial_json": function["arguments"]}))
        return out

    def _block(self, key: str, block: JSONDict) -> list[bytes]:
        if self.open == key:
            return []
        out = self._close()
        self.index += 1
        self.open = key
        return [*out, sse_event("content_block_start", {"index": self.index,
                                                        "content_block": block})]

    def _delta(self, delta: JSONDict) -> bytes:
        return sse_event("content_block_delta", {"index": self.index, "delta": delta})

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        self.open = None
        return [sse_event("content_block_stop", {"index": self.index})]


async def message_events(stream: MessageStream, chunks: AsyncIterator[Mapping[str, Any]]
                         ) -> AsyncIterator[bytes]:
    """The whole event stream for the gateway's chunks, the events of one chunk in one write
    (errors propagate to the caller)."""
    yield b"".join(stream.start())
    async for chunk in chunks:
        events = stream.feed(chunk)
        if events:
            yield b"".join(events)
    yield b"".join(stream.end())

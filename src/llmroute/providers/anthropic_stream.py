"""Translate an Anthropic Messages event stream into OpenAI `chat.completion.chunk` objects.

Feed each server-sent event (its `event:` name and parsed `data:` JSON) to
`AnthropicStreamTranslator.feed`; send the returned chunks as `data:` lines. Writing the
final `data: [DONE]` is the caller's job, as is deciding what to do if the upstream ends
before `message_stop` (`translator.finished` stays False).

Mapping: message_start → a first chunk with `role: assistant`; text deltas → `content`;
a tool_use block → a `tool_calls` delta with its id, name and empty arguments, then its
input_json_delta fragments as `arguments` (a tool whose input streamed no JSON gets "{}");
message_delta → a chunk with `finish_reason`; message_stop → with `include_usage`, a final
chunk with `choices: []` and the usage; thinking deltas → `reasoning_content`, a thinking
block's signature (or a redacted block) → a `thinking_blocks` delta holding it (what a client
sends back; anthropic_thinking); `ping` and citation deltas → nothing; unknown events are
ignored (Anthropic may add event types); an `error` event → `StreamError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from llmroute.providers.anthropic_errors import StreamError
from llmroute.providers.anthropic_thinking import with_reasoning_tokens
from llmroute.providers.anthropic_wire import (
    JSONDict,
    openai_completion_id,
    openai_finish_reason,
    openai_usage,
)

__all__ = ["AnthropicStreamTranslator", "StreamError"]

_Handler = Callable[["AnthropicStreamTranslator", Mapping[str, Any]], list[JSONDict]]


class AnthropicStreamTranslator:
    """Stateful translator for one streamed Anthropic message; see the module docstring."""

    def __init__(self, model: str, created: int, include_usage: bool) -> None:
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.finished = False
        self.finish_reason: str | None = None
        self._id: str | None = None
        self._usage: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # Anthropic block index → OpenAI tool_calls index
        self._tool_has_args: dict[int, bool] = {}
        self._thinking_chars = 0

    @property
    def usage(self) -> JSONDict:
        """The OpenAI usage of the stream so far (complete once `finished`)."""
        return with_reasoning_tokens(openai_usage(self._usage), self._thinking_chars)

    def feed(self, event: str, data: Mapping[str, Any]) -> list[JSONDict]:
        """The OpenAI chunks for one Anthropic event (possibly none)."""
        name = event or str(data.get("type", ""))
        if name == "error":
            error = data.get("error")
            error = error if isinstance(error, Mapping) else {}
            raise StreamError(str(error.get("type", "api_error")), str(error.get("message", "")))
        if self.finished or name == "ping":
            return []
        if name == "message_start":
            return self._on_message_start(data)
        handler = self._handlers.get(name)
        if handler is None:
            return []
        if self._id is None:
            raise StreamError("api_error", f"stream event {name!r} arrived before message_start")
        return handler(self, data)

    def _on_message_start(self, data: Mapping[str, Any]) -> list[JSONDict]:
        if self._id is not None:
            raise StreamError("api_error", "stream sent message_start twice")
        message = data.get("message") or {}
        self._id = openai_completion_id(str(message.get("id", "")))
        self._update_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, data: Mapping[str, Any]) -> list[JSONDict]:
        block = data.get("content_block") or {}
        index = int(data.get("index", 0))
        if block.get("type") == "text":
            text = block.get("text") or ""
            return [self._chunk({"content": text})] if text else []
        if block.get("type") == "thinking" and block.get("thinking"):
            return [self._thinking(str(block["thinking"]))]
        if block.get("type") == "redacted_thinking":
            redacted = {"type": "redacted_thinking", "data": block.get("data") or ""}
            return [self._chunk({"thinking_blocks": [redacted]})]
        if block.get("type") != "tool_use":
            return []  # thinking (its deltas follow), server tools: no Chat Completions field
        tool_index = self._tool_index[index] = len(self._tool_index)
        initial = block.get("input")
        arguments = json.dumps(initial, ensure_ascii=False) if initial else ""
        self._tool_has_args[index] = bool(arguments)
        call = {
            "index": tool_index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": arguments},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _on_block_delta(self, data: Mapping[str, Any]) -> list[JSONDict]:
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta":
            text = delta.get("text") or ""
            return [self._chunk({"content": text})] if text else []
        if delta.get("type") == "thinking_delta":
            return [self._thinking(str(delta.get("thinking") or ""))]
        if delta.get("type") == "signature_delta":
            block = {"type": "thinking", "thinking": "", "signature": delta.get("signature") or ""}
            return [self._chunk({"thinking_blocks": [block]})]
        index = int(data.get("index", 0))
        if delta.get("type") != "input_json_delta" or index not in self._tool_index:
            return []  # citations deltas have no equivalent
        fragment = delta.get("partial_json") or ""
        if not fragment:
            return []
        self._tool_has_args[index] = True
        return [self._tool_arguments(index, fragment)]

    def _on_block_stop(self, data: Mapping[str, Any]) -> list[JSONDict]:
        index = int(data.get("index", 0))
        if index in self._tool_index and not self._tool_has_args[index]:
            self._tool_has_args[index] = True
            return [self._tool_arguments(index, "{}")]
        return []

    def _on_message_delta(self, data: Mapping[str, Any]) -> list[JSONDict]:
        self._update_usage(data.get("usage"))
        stop_reason = (data.get("delta") or {}).get("stop_reason")
        if stop_reason is None or self.finish_reason is not None:
            return []
        self.finish_reason = openai_finish_reason(stop_reason)
        return [self._chunk({}, self.finish_reason)]

    def _on_message_stop(self, data: Mapping[str, Any]) -> list[JSONDict]:
        self.finished = True
        chunks = []
        if self.finish_reason is None:  # no stop_reason was streamed; still close the choice
            self.finish_reason = "stop"
            chunks.append(self._chunk({}, self.finish_reason))
        if self.include_usage:
            chunks.append({**self._envelope(), "choices": [], "usage": self.usage})
        return chunks

    _handlers: ClassVar[Mapping[str, _Handler]] = {
        "content_block_start": _on_block_start,
        "content_block_delta": _on_block_delta,
        "content_block_stop": _on_block_stop,
        "message_delta": _on_message_delta,
        "message_stop": _on_message_stop,
    }

    def _update_usage(self, usage: Any) -> None:
        # Anthropic usage counts are cumulative: later values replace earlier ones.
        if isinstance(usage, Mapping):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _thinking(self, text: str) -> JSONDict:
        self._thinking_chars += len(text)
        return self._chunk({"reasoning_content": text})

    def _tool_arguments(self, index: int, fragment: str) -> JSONDict:
        call = {"index": self._tool_index[index], "function": {"arguments": fragment}}
        return self._chunk({"tool_calls": [call]})

    def _envelope(self) -> JSONDict:
        envelope: JSONDict = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }
        if self.include_usage:
            envelope["usage"] = None  # OpenAI sends null usage on every chunk but the last
        return envelope

    def _chunk(self, delta: JSONDict, finish_reason: str | None = None) -> JSONDict:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return {**self._envelope(), "choices": [choice]}

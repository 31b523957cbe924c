"""Translate a Gemini `streamGenerateContent?alt=sse` stream into OpenAI chat chunks.

Each SSE `data:` is a partial GenerateContentResponse: its text parts are new text (not the text
so far), a `functionCall` part arrives whole, `finishReason` comes on the candidate's last chunk,
and `usageMetadata` (cumulative) on each. Gemini ends the stream by closing it, without a
sentinel: a stream that closes before every candidate has its finishReason was cut. The first
chunk carries `role: assistant`; with `include_usage`, the usage follows the finish as a chunk
with `choices: []`. A safety block (prompt or answer, before any content) raises `SafetyBlock`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .gemini_messages import JSONDict
from .gemini_wire import (
    SafetyBlock,
    candidate_parts,
    check_blocked,
    finish_reason,
    openai_usage,
    thoughts,
)


class GeminiStreamTranslator:
    """Stateful translator for one streamed Gemini answer."""

    def __init__(self, model: str, created: int, include_usage: bool, candidates: int = 1):
        self.model = model
        self.created = created
        self.include_usage = include_usage
        self.expected = candidates
        self._id: str | None = None
        self._usage: Mapping[str, Any] = {}
        self._calls: dict[int, int] = {}      # candidate -> tool calls sent
        self._finished: set[int] = set()
        self._content_seen = False

    @property
    def finished(self) -> bool:
        """Every candidate has finished."""
        return len(self._finished) >= self.expected

    def feed(self, data: Mapping[str, Any]) -> list[JSONDict]:
        """The OpenAI chunks for one Gemini stream event."""
        if not self._content_seen:
            check_blocked(data)
        if isinstance(data.get("usageMetadata"), Mapping):
            self._usage = data["usageMetadata"]
        chunks: list[JSONDict] = []
        if self._id is None:
            self._id = f"chatcmpl-{data.get('responseId') or self.created}"
            chunks += [self._chunk(i, {"role": "assistant", "content": ""})
                       for i in range(self.expected)]
        for position, candidate in enumerate(data.get("candidates") or []):
            chunks += self._candidate(int(candidate.get("index", position)), candidate)
        return chunks

    def end(self) -> list[JSONDict]:
        """The closing usage chunk (with `include_usage`), once the stream has closed."""
        if not self.include_usage:
            return []
        return [{**self._envelope(), "choices": [], "usage": openai_usage(self._usage)}]

    def _candidate(self, index: int, candidate: Mapping[str, Any]) -> list[JSONDict]:
        sent = self._calls.get(index, 0)
        text, calls = candidate_parts(candidate, f"{self._id}_{index}_{sent}")
        chunks = []
        if thought := thoughts(candidate):
            chunks.append(self._chunk(index, {"reasoning_content": thought}))
        if text:
            self._content_seen = True
            chunks.append(self._chunk(index, {"content": text}))
        if calls:
            self._content_seen = True
            deltas = [{"index": sent + i, **call} for i, call in enumerate(calls)]
            self._calls[index] = sent + len(calls)
            chunks.append(self._chunk(index, {"tool_calls": deltas}))
        reason = candidate.get("finishReason")
        if reason and index not in self._finished:
            self._finished.add(index)
            if not self._content_seen and reason in ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST"):
                raise SafetyBlock(f"the answer was blocked ({reason})")
            mapped = finish_reason(reason, self._calls.get(index, 0) > 0)
            chunks.append(self._chunk(index, {}, mapped))
        return chunks

    def _envelope(self) -> JSONDict:
        envelope: JSONDict = {"id": self._id, "object": "chat.completion.chunk",
                              "created": self.created, "model": self.model}
        if self.include_usage:
            envelope["usage"] = None
        return envelope

    def _chunk(self, index: int, delta: JSONDict, finish: str | None = None) -> JSONDict:
        choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**self._envelope(), "choices": [choice]}

"""A complete answer and its stream, both ways: `chunks` replays a stored answer as the
`chat.completion.chunk`s a stream would have sent (role, reasoning — `reasoning_content`, a
thinking block's signature as a `thinking_blocks` delta — content, refusal and tool-call deltas,
the finish chunk, and the usage chunk when the client asked for one); `Assembler` builds the
complete answer from a relayed stream's chunks, so an answer first streamed can serve a later
request of either kind."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
_HEAD = ("id", "created", "model", "system_fingerprint", "service_tier")


def chunks(body: Mapping[str, Any], *, include_usage: bool) -> Iterator[JSON]:
    """The stream of `body` (a `chat.completion`): per choice a role chunk, its content, refusal
    and tool-call deltas and a finish chunk; then the usage chunk when `include_usage`."""
    head: JSON = {k: body[k] for k in _HEAD if k in body}
    head["object"] = "chat.completion.chunk"

    def chunk(index: int, delta: JSON, finish: str | None = None, **extra: Any) -> JSON:
        choice: JSON = {"index": index, "delta": delta, "finish_reason": finish, **extra}
        return {**head, "choices": [choice]}

    for choice in body.get("choices") or ():
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        content = message.get("content")
        yield chunk(index, {"role": message.get("role", "assistant"),
                            **({"content": ""} if isinstance(content, str) else {})})
        for delta in reasoning_deltas(message):
            yield chunk(index, delta)
        if content:
            logprobs = choice.get("logprobs")
            yield chunk(index, {"content": content}, **({"logprobs": logprobs} if logprobs else {}))
        if message.get("refusal"):
            yield chunk(index, {"refusal": message["refusal"]})
        for i, call in enumerate(message.get("tool_calls") or ()):
            yield chunk(index, {"tool_calls": [{"index": i, **call}]})
        yield chunk(index, {}, choice.get("finish_reason") or "stop")
    if include_usage and isinstance(body.get("usage"), Mapping):
        yield {**head, "choices": [], "usage": body["usage"]}


def reasoning_deltas(message: Mapping[str, Any]) -> Iterator[JSON]:
    """A message's reasoning as stream deltas: per thinking block its text, then its signature
    (a redacted block whole); without blocks, the `reasoning_content`."""
    blocks = message.get("thinking_blocks")
    if not isinstance(blocks, list) or not blocks:
        if isinstance(message.get("reasoning_content"), str) and message["reasoning_content"]:
            yield {"reasoning_content": message["reasoning_content"]}
        return
    for block in blocks:
        if block.get("type") == "thinking":
            if block.get("thinking"):
                yield {"reasoning_content": block["thinking"]}
            block = {**block, "thinking": ""}
        yield {"thinking_blocks": [block]}


@dataclass
class _Thinking:
    """A stream's reasoning put back together (the reverse of `reasoning_deltas`)."""

    text: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)  # the text of the block not yet signed
    blocks: list[JSON] = field(default_factory=list)

    def add(self, delta: Mapping[str, Any]) -> None:
        if isinstance(delta.get("reasoning_content"), str):
            self.text.append(delta["reasoning_content"])
            self.open.append(delta["reasoning_content"])
        for block in delta.get("thinking_blocks") or ():
            if block.get("type") == "thinking":
                block = {**block, "thinking": "".join(self.open)}
                self.open = []
            self.blocks.append(dict(block))

    def into(self, message: JSON) -> None:
        if self.text:
            message["reasoning_content"] = "".join(self.text)
        if self.blocks:
            message["thinking_blocks"] = self.blocks


@dataclass
class _Choice:
    role: str = "assistant"
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    calls: dict[int, JSON] = field(default_factory=dict)
    logprobs: list[Any] = field(default_factory=list)
    has_content: bool = False
    finish: str | None = None
    thinking: _Thinking = field(default_factory=_Thinking)

    def add(self, choice: Mapping[str, Any]) -> None:
        delta = choice.get("delta") or {}
        self.role = delta.get("role") or self.role
        self.thinking.add(delta)
        if isinstance(delta.get("content"), str):
            self.has_content = True
            self.content.append(delta["content"])
        if isinstance(delta.get("refusal"), str):
            self.refusal.append(delta["refusal"])
        for call in delta.get("tool_calls") or ():
            self._call(call)
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, Mapping) and isinstance(logprobs.get("content"), list):
            self.logprobs += logprobs["content"]
        self.finish = choice.get("finish_reason") or self.finish

    def _call(self, delta: Mapping[str, Any]) -> None:
        call = self.calls.setdefault(int(delta.get("index", 0)),
                                     {"id": None, "type": "function",
                                      "function": {"name": "", "arguments": ""}})
        call["id"] = delta.get("id") or call["id"]
        call["type"] = delta.get("type") or call["type"]
        function = delta.get("function") or {}
        call["function"]["name"] += function.get("name") or ""
        call["function"]["arguments"] += function.get("arguments") or ""

    def message(self) -> JSON:
        message: JSON = {"role": self.role,
                         "content": "".join(self.content) if self.has_content else None}
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        self.thinking.into(message)
        return message


@dataclass
class Assembler:
    """Collects a stream's chunks into the `chat.completion` they add up to."""

    head: JSON = field(default_factory=dict)
    choices: dict[int, _Choice] = field(default_factory=dict)

    def add(self, chunk: Mapping[str, Any]) -> None:
        for name in _HEAD:
            if name not in self.head and chunk.get(name) is not None:
                self.head[name] = chunk[name]
        for choice in chunk.get("choices") or ():
            self.choices.setdefault(int(choice.get("index", 0)), _Choice()).add(choice)

    def body(self, usage: JSON | None) -> JSON:
        """The complete answer (`usage`: the stream's usage object, cost included)."""
        choices = [{"index": i, "message": c.message(), "finish_reason": c.finish,
                    "logprobs": {"content": c.logprobs} if c.logprobs else None}
                   for i, c in sorted(self.choices.items())]
        body: JSON = {**self.head, "object": "chat.completion", "choices": choices}
        if usage is not None:
            body["usage"] = usage
        return body

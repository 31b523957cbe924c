"""Shared wire helpers for the fake upstream: JSON, token counts, the answer to give, SSE framing."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from llmroute.testing.behaviours import Error
from llmroute.testing.behaviours import Protocol as ProtocolName

JsonObject = dict[str, Any]

_TOOL_MARKER = re.compile(r"\[\[tool:([A-Za-z0-9_.\-]+)\]\]")


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _json_backend() -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    try:
        import orjson  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - depends on the environment
        return _std_dumps, json.loads
    return orjson.dumps, orjson.loads  # pragma: no cover


dumps, _loads = _json_backend()


def parse_object(raw: bytes) -> JsonObject | None:
    """The JSON object in `raw`, or None when it is not a JSON object."""
    try:
        value = _loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def text_of(content: Any) -> str:
    """The text in a message `content`: a string, or a list of parts/blocks with `text`
    (nested `content`, as in Anthropic tool_result blocks, is included)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for part in content:
        if isinstance(part, dict):
            text = part.get("text")
            parts.append(text if isinstance(text, str) else text_of(part.get("content")))
    return "".join(parts)


def count_tokens(text: str) -> int:
    """The fake tokenizer: characters // 4 + 1."""
    return len(text) // 4 + 1


def prompt_tokens_for(messages: Any, system: Any = None) -> int:
    """Prompt tokens the fake reports: total characters of all message contents (plus the
    Anthropic `system` text) // 4 + 1."""
    total = len(text_of(system))
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                total += len(text_of(message.get("content")))
    return total // 4 + 1


def last_user_text(messages: Any) -> str:
    """Text of the last message with role 'user' ('' when there is none)."""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return text_of(message.get("content"))
    return ""


def default_answer(model: str, messages: Any) -> str:
    """The answer the fake gives when nothing is scripted."""
    return f"echo from {model}: {last_user_text(messages)[:200]}"


def marker_tool(messages: Any) -> str | None:
    """NAME from a `[[tool:NAME]]` marker in the last user message."""
    found = _TOOL_MARKER.search(last_user_text(messages))
    return found.group(1) if found else None


def split_answer(text: str) -> list[str]:
    """Stream pieces of `text`, one per word (trailing space kept); joined they equal `text`."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + ([words[-1]] if words[-1] else [])


TOOL_ARGUMENTS = "{}"


@dataclass(frozen=True, slots=True)
class CacheUsage:
    """What one request read from and wrote to the prompt cache, out of `prompt_tokens`."""

    prompt_tokens: int
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def written(self) -> int:
        return self.write_5m + self.write_1h


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake answers to one request."""

    model: str
    text: str
    tool_name: str | None
    prompt_tokens: int
    seq: int
    created: int
    #: False: the upstream reports no usage (the OpenAI dialect leaves it out).
    usage: bool = True
    #: The prompt cache's part of the usage (`_prompt_cache`); None: nothing to report.
    cache: CacheUsage | None = None
    #: The thinking before the answer, when the request asked for it (it counts as output).
    thinking: str | None = None

    @property
    def thinking_tokens(self) -> int:
        return count_tokens(self.thinking) if self.thinking else 0

    @property
    def completion_tokens(self) -> int:
        if self.tool_name is not None:
            return count_tokens(self.tool_name + TOOL_ARGUMENTS) + self.thinking_tokens
        return count_tokens(self.text) + self.thinking_tokens


def make_reply(
    model: str, text: str, tool_name: str | None, prompt_tokens: int, seq: int, *,
    usage: bool = True,
) -> Reply:
    return Reply(model, text, tool_name, prompt_tokens, seq, int(time.time()), usage)


class Wire(Protocol):
    """One provider's HTTP dialect, as the fake upstream speaks it."""

    name: ProtocolName

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool: ...

    def validate(self, body: JsonObject | None) -> Error | None: ...

    def reply(self, body: JsonObject, model: str, seq: int) -> Reply: ...

    def completion(self, reply: Reply) -> bytes: ...

    def stream_frames(self, reply: Reply, body: JsonObject) -> list[bytes]: ...

    def error(self, err: Error, request_id: str) -> tuple[int, bytes, dict[str, str]]: ...

    def stream_error(self, err: Error) -> bytes: ...

    def models(self, models: list[str]) -> bytes: ...

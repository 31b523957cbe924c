"""Automatic prompt-cache breakpoints (`cache.prompt.auto_breakpoints`): for an Anthropic
Messages request that carries no `cache_control` of its own, mark the long stable prefixes —
the last tool definition, the end of the system prompt, and the end of the turns before the
newest user turn (what the next request of the conversation repeats) — at most
`MAX_BREAKPOINTS`, each only where the prefix up to it is at least the model's minimum
(`ModelSpec.cache_min_tokens`, else `cache.prompt.min_tokens`).

Prefix lengths are estimated at ≈4 characters per token (a text block's text, a tool result's
texts, any other block's or tool's JSON), like the gateway's other estimates. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .config import PromptCacheConfig

JSONDict = dict[str, Any]

#: Anthropic refuses more marked blocks than this in one request.
MAX_BREAKPOINTS: Final = 4
KEY: Final = "cache_control"


@dataclass(frozen=True)
class AutoBreakpoints:
    """The policy one Anthropic deployment applies: the config, and the minimum prefix of each
    upstream model it serves."""

    config: PromptCacheConfig
    min_tokens: Mapping[str, int] = field(default_factory=dict)

    def apply(self, payload: JSONDict, upstream_model: str) -> JSONDict:
        """`payload` with breakpoints placed (unchanged when it has marks of its own)."""
        minimum = self.min_tokens.get(upstream_model, self.config.min_tokens)
        return place_breakpoints(payload, minimum, self.config)


def place_breakpoints(payload: JSONDict, min_tokens: int, config: PromptCacheConfig
                      ) -> JSONDict:
    """A copy of the Messages request `payload` with `cache_control` on its long stable
    prefixes (see the module docstring); `payload` itself when it is marked already or no
    prefix is long enough."""
    if has_marks(payload):
        return payload
    mark: JSONDict = {"type": "ephemeral"} if config.ttl == "5m" else \
        {"type": "ephemeral", "ttl": config.ttl}
    out = dict(payload)
    placed = 0
    for place in _places(payload, config.places):
        if placed == MAX_BREAKPOINTS or _prefix_chars(payload, place) // 4 < min_tokens:
            continue
        _mark(out, place, mark)
        placed += 1
    return out if placed else payload


def has_marks(payload: Mapping[str, Any]) -> bool:
    """Whether any tool, system block or message block carries `cache_control`."""
    system = payload.get("system")
    blocks = [*_list(payload.get("tools")), *(_list(system))]
    for message in _list(payload.get("messages")):
        blocks.extend(_list(message.get("content")) if isinstance(message, Mapping) else ())
    return any(isinstance(b, Mapping) and b.get(KEY) is not None for b in blocks)


#: A place: ("tools", i), ("system", -1) or ("messages", turn index): its last block is marked.
Place = tuple[str, int]


def _places(payload: Mapping[str, Any], wanted: tuple[str, ...]) -> list[Place]:
    places: list[Place] = []
    tools = _list(payload.get("tools"))
    if "tools" in wanted and tools:
        places.append(("tools", len(tools) - 1))
    if "system" in wanted and payload.get("system"):
        places.append(("system", -1))
    turns = _list(payload.get("messages"))
    newest_user = max((i for i, t in enumerate(turns)
                       if isinstance(t, Mapping) and t.get("role") == "user"), default=-1)
    if "history" in wanted and newest_user >= 1 and turns[newest_user - 1].get("content"):
        places.append(("messages", newest_user - 1))
    return places


def _prefix_chars(payload: Mapping[str, Any], place: Place) -> int:
    """Characters of everything in cache order (tools, system, messages) up to `place`."""
    kind, index = place
    tools = _list(payload.get("tools"))
    chars = sum(_json_chars(t) for t in tools[: index + 1 if kind == "tools" else len(tools)])
    if kind == "tools":
        return chars
    system = payload.get("system")
    chars += len(system) if isinstance(system, str) else sum(_block_chars(b) for b in _list(system))
    if kind == "system":
        return chars
    for turn in _list(payload.get("messages"))[: index + 1]:
        content = turn.get("content") if isinstance(turn, Mapping) else None
        chars += len(content) if isinstance(content, str) else \
            sum(_block_chars(b) for b in _list(content))
    return chars


def _mark(out: JSONDict, place: Place, mark: JSONDict) -> None:
    """Put `mark` on the last block at `place` in `out` (copying what it changes)."""
    kind, index = place
    if kind == "tools":
        tools = list(out["tools"])
        tools[index] = {**tools[index], KEY: mark}
        out["tools"] = tools
    elif kind == "system":
        system = out["system"]
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
        blocks[-1] = {**blocks[-1], KEY: mark}
        out["system"] = blocks
    else:
        turns = list(out["messages"])
        content = turns[index]["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        blocks[-1] = {**blocks[-1], KEY: mark}
        turns[index] = {**turns[index], "content": blocks}
        out["messages"] = turns


def _block_chars(block: Any) -> int:
    if isinstance(block, Mapping) and block.get("type") == "text":
        text = block.get("text")
        return len(text) if isinstance(text, str) else 0
    if isinstance(block, Mapping) and block.get("type") == "tool_result":
        content = block.get("content")
        return len(content) if isinstance(content, str) else \
            sum(_block_chars(b) for b in _list(content))
    return _json_chars(block)


def _json_chars(value: Any) -> int:
    return len(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []

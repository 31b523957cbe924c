"""Anthropic-style `cache_control` marks in OpenAI chat requests (as LiteLLM and OpenRouter accept
them): their shape, the breakpoints a request sets in the Messages API's cache order (tools,
then system, then the conversation) within the provider's limits, and removing them for
upstreams that do not take them. Pure; used by the Anthropic translation and the
OpenAI-compatible adapter.

A mark sits on a content part (`messages[i].content[j].cache_control`), on a message (it applies
to the message's last block) or on a tool definition (`tools[i].cache_control`):
`{"type": "ephemeral"}`, optionally with `"ttl": "5m" | "1h"`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from llmroute.providers.anthropic_errors import WireError

JSONDict = dict[str, Any]

#: Anthropic refuses a request with more blocks marked than this.
MAX_BREAKPOINTS: Final = 4
TTLS: Final = ("5m", "1h")
KEY: Final = "cache_control"
_SYSTEM_ROLES: Final = frozenset({"system", "developer"})


def cache_control_of(value: Any, where: str) -> JSONDict | None:
    """The Messages API's `cache_control` for a mark (None when there is none); a mark of
    another shape is a WireError naming `where`."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or value.get("type") != "ephemeral":
        raise WireError('`cache_control.type` must be "ephemeral"', f"{where}.type")
    ttl = value.get("ttl")
    if ttl is None:
        return {"type": "ephemeral"}
    if ttl not in TTLS:
        raise WireError('`cache_control.ttl` must be "5m" or "1h"', f"{where}.ttl")
    return {"type": "ephemeral", "ttl": ttl}


def breakpoints(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every breakpoint `body` sets, as (param, ttl), in cache order: tools, system messages,
    then the other messages. A message's own mark and its last part's mark are one block."""
    found: list[tuple[str, str]] = []
    tools = body.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else ()):
        if isinstance(tool, Mapping):
            found.extend(_marks([(f"tools[{i}].{KEY}", tool.get(KEY))]))
    messages = body.get("messages")
    indexed = list(enumerate(messages if isinstance(messages, list) else ()))
    ordered = ([m for m in indexed if _is_system(m[1])]
               + [m for m in indexed if not _is_system(m[1])])
    for i, message in ordered:
        if isinstance(message, Mapping):
            found.extend(_marks(_message_marks(message, f"messages[{i}]")))
    return found


def has_marks(body: Mapping[str, Any]) -> bool:
    """Whether any tool, message or content part of `body` has a `cache_control` key (the
    quick test that spares unmarked requests the rest; plain JSON dicts expected)."""
    tools, messages = body.get("tools"), body.get("messages")
    if type(tools) is list and any(type(t) is dict and KEY in t for t in tools):
        return True
    for message in messages if type(messages) is list else ():
        if type(message) is not dict:
            continue
        if KEY in message:
            return True
        content = message.get("content")
        if type(content) is list and any(type(p) is dict and KEY in p for p in content):
            return True
    return False


def check_breakpoints(body: Mapping[str, Any]) -> None:
    """Refuse what Anthropic would: more than MAX_BREAKPOINTS, or a 1-hour breakpoint after a
    5-minute one (longer TTLs must come first in cache order)."""
    if not has_marks(body):
        return
    found = breakpoints(body)
    if len(found) > MAX_BREAKPOINTS:
        raise WireError(f"at most {MAX_BREAKPOINTS} blocks may carry `cache_control` "
                        f"(this request marks {len(found)})", found[MAX_BREAKPOINTS][0])
    seen_short = False
    for param, ttl in found:
        if ttl == "1h" and seen_short:
            raise WireError('a `cache_control` with ttl "1h" must come before any "5m" one '
                            "(tools, then system, then messages)", param)
        seen_short = seen_short or ttl == "5m"


def _is_system(message: Any) -> bool:
    return isinstance(message, Mapping) and message.get("role") in _SYSTEM_ROLES


def _message_marks(message: Mapping[str, Any], where: str) -> list[tuple[str, Any]]:
    """(param, mark) of a message's marked blocks: its parts' marks, and its own mark unless its
    last part has one (a tool message is one block: the first of its marks)."""
    content = message.get("content")
    parts = content if isinstance(content, list) else []
    marks = [(f"{where}.content[{j}].{KEY}", part.get(KEY)) for j, part in enumerate(parts)
             if isinstance(part, Mapping) and part.get(KEY) is not None]
    own = message.get(KEY)
    last_marked = bool(parts) and isinstance(parts[-1], Mapping) and parts[-1].get(KEY) is not None
    if own is not None and not last_marked:
        marks.append((f"{where}.{KEY}", own))
    if message.get("role") == "tool":
        return marks[:1]
    return marks


def _marks(pairs: list[tuple[str, Any]]) -> Iterator[tuple[str, str]]:
    for param, value in pairs:
        mark = cache_control_of(value, param)
        if mark is not None:
            yield param, str(mark.get("ttl", "5m"))


def strip_cache_control(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """`body` without `cache_control` marks on tools, messages and content parts (the same
    object when it has none; the caller's objects are never changed)."""
    if not has_marks(body):
        return body
    tools, messages = body.get("tools"), body.get("messages")
    new_tools = _strip_list(tools) if isinstance(tools, list) else None
    new_messages = _strip_messages(messages) if isinstance(messages, list) else None
    if new_tools is None and new_messages is None:
        return body
    out = dict(body)
    if new_tools is not None:
        out["tools"] = new_tools
    if new_messages is not None:
        out["messages"] = new_messages
    return out


def _strip_list(items: list[Any]) -> list[Any] | None:
    """The items without their own `cache_control` key; None when none had one."""
    if not any(isinstance(item, Mapping) and KEY in item for item in items):
        return None
    return [{k: v for k, v in item.items() if k != KEY} if isinstance(item, Mapping) else item
            for item in items]


def _strip_messages(messages: list[Any]) -> list[Any] | None:
    out: list[Any] = []
    changed = False
    for message in messages:
        if not isinstance(message, Mapping):
            out.append(message)
            continue
        content = message.get("content")
        parts = _strip_list(content) if isinstance(content, list) else None
        if parts is None and KEY not in message:
            out.append(message)
            continue
        changed = True
        stripped = {k: v for k, v in message.items() if k != KEY}
        if parts is not None:
            stripped["content"] = parts
        out.append(stripped)
    return out if changed else None

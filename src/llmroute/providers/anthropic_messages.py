"""Convert OpenAI chat `messages` into an Anthropic `system` prompt and alternating turns.

Used by `anthropic_wire.to_anthropic_request`; see its module docstring for the decisions
where the formats differ (hoisted system messages, merged turns, tool results first, stripped
final prefill, image/PDF data URLs, sanitized tool call ids).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from llmroute.providers.anthropic_errors import WireError
from llmroute.providers.anthropic_thinking import history_blocks
from llmroute.providers.cache_control import KEY as CACHE_KEY
from llmroute.providers.cache_control import cache_control_of

JSONDict = dict[str, Any]

#: Image types the Messages API accepts in a base64 source.
IMAGE_MEDIA_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

_DATA_URL = re.compile(r"data:(?P<mime>[^;,]+)(?P<params>(?:;[^;,]*)*?);base64,(?P<data>.*)", re.S)
_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def convert_messages(messages: Any) -> tuple[list[JSONDict], list[JSONDict]]:
    """Split OpenAI messages into system text blocks and alternating Anthropic turns; the
    messages' and parts' `cache_control` marks land on the blocks they mark."""
    if not isinstance(messages, list):
        raise WireError("`messages` must be a list", "messages")
    system: list[JSONDict] = []
    turns: list[JSONDict] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise WireError("each message must be an object", where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_mark_last(_plain_blocks(message.get("content"), f"{where}.content"),
                                     message, where))
        elif role == "user":
            blocks = _user_blocks(message.get("content"), f"{where}.content")
            _append_turn(turns, "user", _mark_last(blocks, message, where))
        elif role == "assistant":
            _append_turn(turns, "assistant",
                         _mark_last(_assistant_blocks(message, where), message, where))
        elif role == "tool":
            _append_turn(turns, "user", [_tool_result_block(message, where)])
        else:
            raise WireError(f"unsupported message role {role!r}", f"{where}.role")
    if turns:
        _strip_final_prefill(turns)
    if not turns:
        raise WireError("at least one user or assistant message is required", "messages")
    return system, turns


def _append_turn(turns: list[JSONDict], role: str, blocks: list[JSONDict]) -> None:
    """Add blocks as a turn, merging into the previous turn when it has the same role."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        merged = turns[-1]["content"] + blocks
        # Anthropic wants tool results first in a user turn; sorted() is stable.
        turns[-1]["content"] = sorted(merged, key=lambda b: b["type"] != "tool_result")
    else:
        turns.append({"role": role, "content": blocks})


def _strip_final_prefill(turns: list[JSONDict]) -> None:
    """Anthropic rejects a final assistant turn (a prefill) that ends with whitespace."""
    if turns[-1]["role"] != "assistant":
        return
    blocks = turns[-1]["content"]
    while blocks and blocks[-1]["type"] == "text":
        text = blocks[-1]["text"].rstrip()
        if text:
            blocks[-1] = {**blocks[-1], "text": text}
            return
        blocks.pop()
    if not blocks:
        turns.pop()


def _plain_blocks(content: Any, where: str) -> list[JSONDict]:
    """The text blocks of a string or a list of text parts (system, developer and tool
    content), with the parts' `cache_control`; empty texts are dropped."""
    if content is None:
        return []
    if isinstance(content, str):
        return _text_blocks([content])
    if not isinstance(content, list):
        raise WireError("content must be a string or a list of parts", where)
    blocks: list[JSONDict] = []
    for j, part in enumerate(content):
        if not isinstance(part, Mapping) or part.get("type") != "text":
            raise WireError("only text parts are allowed here", f"{where}[{j}]")
        text = _text_of(part, f"{where}[{j}].text")
        if text:  # Anthropic rejects empty text blocks
            blocks.append(_marked({"type": "text", "text": text}, part, f"{where}[{j}]"))
    return blocks


def _marked(block: JSONDict, part: Mapping[str, Any], where: str) -> JSONDict:
    """`block` with the `cache_control` of the part it came from (if any)."""
    if CACHE_KEY not in part:
        return block
    mark = cache_control_of(part[CACHE_KEY], f"{where}.{CACHE_KEY}")
    return block if mark is None else {**block, CACHE_KEY: mark}


def _mark_last(blocks: list[JSONDict], message: Mapping[str, Any], where: str
               ) -> list[JSONDict]:
    """A message's own `cache_control` marks its last block (unless that one has its own)."""
    if CACHE_KEY not in message:
        return blocks
    mark = cache_control_of(message[CACHE_KEY], f"{where}.{CACHE_KEY}")
    if mark is not None and blocks and CACHE_KEY not in blocks[-1]:
        blocks[-1] = {**blocks[-1], CACHE_KEY: mark}
    return blocks


def _text_of(part: Mapping[str, Any], where: str, key: str = "text") -> str:
    text = part.get(key)
    if not isinstance(text, str):
        raise WireError(f"`{key}` must be a string", where)
    return text


def _text_blocks(texts: Sequence[str]) -> list[JSONDict]:
    # Anthropic rejects empty text blocks.
    return [{"type": "text", "text": t} for t in texts if t]


def _user_blocks(content: Any, where: str) -> list[JSONDict]:
    if isinstance(content, str):
        return _text_blocks([content])
    if not isinstance(content, list):
        raise WireError("user content must be a string or a list of parts", where)
    blocks: list[JSONDict] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            text = _text_of(part, f"{at}.text")
            if text:
                blocks.append(_marked({"type": "text", "text": text}, part, at))
        elif kind == "image_url":
            blocks.append(_marked(_image_block(part.get("image_url"), f"{at}.image_url"), part, at))
        elif kind == "file":
            blocks.append(_marked(_document_block(part.get("file"), f"{at}.file"), part, at))
        elif kind == "input_audio":
            raise WireError("Anthropic models do not accept audio input", at)
        else:
            raise WireError(f"unsupported content part type {kind!r}", f"{at}.type")
    return blocks


def _image_block(image_url: Any, where: str) -> JSONDict:
    url = image_url.get("url") if isinstance(image_url, Mapping) else image_url
    if not isinstance(url, str):
        raise WireError("`image_url.url` must be a string", f"{where}.url")
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    mime, data = _parse_data_url(url, f"{where}.url")
    mime = "image/jpeg" if mime == "image/jpg" else mime
    if mime not in IMAGE_MEDIA_TYPES:
        allowed = ", ".join(sorted(IMAGE_MEDIA_TYPES))
        raise WireError(f"image type {mime!r} is not supported (use {allowed})", f"{where}.url")
    return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}


def _document_block(file: Any, where: str) -> JSONDict:
    data_url = file.get("file_data") if isinstance(file, Mapping) else None
    if not isinstance(data_url, str):
        raise WireError("only inline `file_data` is supported, not `file_id`", where)
    mime, data = _parse_data_url(data_url, f"{where}.file_data")
    if mime != "application/pdf":
        raise WireError(f"file type {mime!r} is not supported (only PDF)", f"{where}.file_data")
    block: JSONDict = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": data},
    }
    if isinstance(file, Mapping) and file.get("filename"):
        block["title"] = str(file["filename"])
    return block


def _parse_data_url(url: str, where: str) -> tuple[str, str]:
    """(media type, base64 payload) of a `data:<type>;base64,<payload>` URL."""
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise WireError("expected an http(s) URL or a base64 `data:` URL", where)
    return match["mime"].strip().lower(), match["data"]


def _assistant_blocks(message: Mapping[str, Any], where: str) -> list[JSONDict]:
    if message.get("function_call") is not None:
        raise WireError("`function_call` is deprecated and not supported", f"{where}.function_call")
    content = message.get("content")
    if content is None or isinstance(content, str):
        blocks = _text_blocks([content or ""])
    elif isinstance(content, list):
        blocks = []
        for j, part in enumerate(content):
            at = f"{where}.content[{j}]"
            text = _assistant_part_text(part, at)
            if text:
                blocks.append(_marked({"type": "text", "text": text}, part, at))
    else:
        raise WireError("assistant content must be a string, a list of parts or null", where)
    if not blocks and isinstance(message.get("refusal"), str):
        blocks = _text_blocks([message["refusal"]])
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise WireError("`tool_calls` must be a list", f"{where}.tool_calls")
    for j, call in enumerate(tool_calls):
        blocks.append(_tool_use_block(call, f"{where}.tool_calls[{j}]"))
    return [*history_blocks(message, where), *blocks] if blocks else blocks


def _assistant_part_text(part: Any, where: str) -> str:
    kind = part.get("type") if isinstance(part, Mapping) else None
    if kind == "text":
        return _text_of(part, f"{where}.text")
    if kind == "refusal":
        return _text_of(part, f"{where}.refusal", key="refusal")
    raise WireError(f"unsupported assistant content part type {kind!r}", f"{where}.type")


def _tool_use_block(call: Any, where: str) -> JSONDict:
    if not isinstance(call, Mapping) or call.get("type", "function") != "function":
        raise WireError("only function tool calls are supported", f"{where}.type")
    function = call.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise WireError("a tool call needs `function.name`", f"{where}.function.name")
    if not isinstance(call.get("id"), str):
        raise WireError("a tool call needs an `id`", f"{where}.id")
    return {
        "type": "tool_use",
        "id": anthropic_tool_id(call["id"]),
        "name": function["name"],
        "input": _parse_arguments(function.get("arguments"), f"{where}.function.arguments"),
    }


def _parse_arguments(arguments: Any, where: str) -> JSONDict:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if not isinstance(arguments, str):
        raise WireError("tool call arguments must be a JSON string", where)
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise WireError(f"tool call arguments are not valid JSON: {exc.msg}", where) from exc
    if not isinstance(parsed, dict):
        raise WireError("tool call arguments must be a JSON object", where)
    return parsed


def _tool_result_block(message: Mapping[str, Any], where: str) -> JSONDict:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise WireError("a tool message needs `tool_call_id`", f"{where}.tool_call_id")
    block: JSONDict = {"type": "tool_result", "tool_use_id": anthropic_tool_id(call_id)}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content is not None:
        texts = _plain_blocks(content, f"{where}.content")
        # A tool message is one block: the first of its parts' marks, else its own, marks it.
        marks = [b.pop(CACHE_KEY) for b in texts if CACHE_KEY in b]
        if marks:
            block[CACHE_KEY] = marks[0]
        if texts:
            block["content"] = texts
    return _mark_last([block], message, where)[0]


def anthropic_tool_id(call_id: str) -> str:
    """An OpenAI tool call id in the alphabet Anthropic accepts for `tool_use` ids."""
    return _BAD_ID_CHARS.sub("_", call_id)

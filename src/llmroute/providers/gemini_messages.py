"""Convert OpenAI chat `messages` into a Gemini `systemInstruction` and `contents`.

Used by `gemini_wire.to_gemini_request`. System and developer messages, wherever they are, join
the system instruction; user turns are role `user`, assistant turns role `model` (their
`tool_calls` become `functionCall` parts); a `tool` message becomes a `functionResponse` part of a
user turn, named after the call it answers (Gemini matches results to calls by name, not id).
Consecutive turns of one role are merged (parallel calls' results go back in one turn). A
result that is a JSON object is sent as the response; any other text as `{"content": text}`.
Images must be data URLs (`inlineData`): Gemini cannot fetch an http(s) image itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .anthropic_errors import WireError

JSONDict = dict[str, Any]
_DATA_URL = re.compile(r"data:(?P<mime>[^;,]+)(?:;[^;,]*)*?;base64,(?P<data>.*)", re.S)


def convert_messages(messages: Any) -> tuple[list[JSONDict], list[JSONDict]]:
    """(system instruction parts, contents) for OpenAI `messages`."""
    if not isinstance(messages, list):
        raise WireError("`messages` must be a list", "messages")
    system: list[JSONDict] = []
    contents: list[JSONDict] = []
    names: dict[str, str] = {}  # tool call id -> function name
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise WireError("each message must be an object", where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), f"{where}.content"))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            _append(contents, "model", _model_parts(message, where, names))
        elif role == "tool":
            _append(contents, "user", [_function_response(message, where, names)])
        else:
            raise WireError(f"unsupported message role {role!r}", f"{where}.role")
    if not contents:
        raise WireError("at least one user or assistant message is required", "messages")
    return system, contents


def _append(contents: list[JSONDict], role: str, parts: list[JSONDict]) -> None:
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _text_parts(content: Any, where: str) -> list[JSONDict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise WireError("`content` must be a string or a list of parts", where)
    parts = []
    for j, part in enumerate(content):
        if not isinstance(part, Mapping) or part.get("type") != "text":
            raise WireError("only text parts are allowed here", f"{where}[{j}]")
        parts.append({"text": str(part.get("text") or "")})
    return parts


def _user_parts(content: Any, where: str) -> list[JSONDict]:
    if not isinstance(content, list):
        return _text_parts(content, where)
    parts: list[JSONDict] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            parts.append({"text": str(part.get("text") or "")})
        elif kind == "image_url":
            parts.append(_image(part.get("image_url"), f"{where}[{j}].image_url"))
        else:
            raise WireError(f"Gemini deployments take text and image parts, not {kind!r}",
                            f"{where}[{j}].type")
    return parts


def _image(image: Any, where: str) -> JSONDict:
    url = image.get("url") if isinstance(image, Mapping) else image
    found = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if found is None:
        raise WireError("Gemini deployments take images as base64 data URLs only", f"{where}.url")
    return {"inlineData": {"mimeType": found["mime"], "data": found["data"]}}


def _model_parts(message: Mapping[str, Any], where: str, names: dict[str, str]
                 ) -> list[JSONDict]:
    parts = _text_parts(message.get("content"), f"{where}.content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise WireError("`tool_calls` must be a list", f"{where}.tool_calls")
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str):
            raise WireError("a tool call needs `function.name`", f"{at}.function.name")
        args = _arguments(function.get("arguments") if function else None, f"{at}.function")
        if isinstance(call.get("id"), str):
            names[call["id"]] = name
        parts.append({"functionCall": {"name": name, "args": args}})
    return parts


def _arguments(raw: Any, where: str) -> JSONDict:
    try:
        args = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except ValueError:
        raise WireError("tool call arguments must be a JSON object", f"{where}.arguments") from None
    if not isinstance(args, dict):
        raise WireError("tool call arguments must be a JSON object", f"{where}.arguments")
    return args


def _function_response(message: Mapping[str, Any], where: str, names: Mapping[str, str]
                       ) -> JSONDict:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise WireError("a tool message must answer a tool call of an earlier assistant message",
                        f"{where}.tool_call_id")
    text = "".join(p["text"] for p in _text_parts(message.get("content"), f"{where}.content"))
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"content": text}
    return {"functionResponse": {"name": name, "response": response}}

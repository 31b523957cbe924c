"""The Anthropic Messages API request (`POST /v1/messages`) as it arrives: validated and turned
into the OpenAI chat body the core routes (`chat.chat_request` -> `ChatRequest`). Pure; the
reverse of `providers/anthropic_messages.py` and `providers/anthropic_wire.py`.

Where the formats differ:

* `system` (a string or text blocks) becomes the first message, role `system`; blocks keep their
  `cache_control`, as do content blocks, tools, `tool_use` and `tool_result` (the Anthropic
  adapter passes them on; OpenAI-compatible upstreams have them stripped).
* a user turn's `tool_result` blocks become `tool` messages, before the turn's other content;
  images and documents inside a tool result follow as a user message (OpenAI tool messages
  hold text only);
  `is_error` has no OpenAI field and is dropped.
* `image` (base64 or URL) -> `image_url`; `document` (base64 PDF) -> a `file` part, a plain-text
  document -> a text part; URL documents are refused.
* assistant `thinking` / `redacted_thinking` blocks become the chat message's `thinking_blocks`
  (with their signatures: the Anthropic adapter sends them back, as tool use with thinking
  needs; other upstreams ignore them); `thinking` in the request is forwarded as the chat
  body's `thinking` (llmroute.reasoning: Anthropic's own form, an effort or a budget for the
  others).
* `stop_sequences` -> `stop`, `metadata.user_id` -> `user`, `top_k` passes as it is,
  `tool_choice` any -> required, tool -> a named function, `disable_parallel_tool_use` ->
  `parallel_tool_calls: false`. Unknown top-level keys are ignored.

Errors are `InvalidRequestError`s whose `param` is the path as Anthropic writes it
(`messages.1.content.0.source.data`); the endpoint puts it at the head of the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from .chat import ChatRequest, chat_request
from .errors import InvalidRequestError
from .providers.anthropic_messages import IMAGE_MEDIA_TYPES
from .providers.cache_control import KEY as CACHE_KEY
from .reasoning import reasoning_of

JSONDict = dict[str, Any]
#: Tool choice types and their chat-completions value.
_CHOICES: Final = {"auto": "auto", "any": "required", "none": "none"}
_THINKING_BLOCKS: Final = frozenset({"thinking", "redacted_thinking"})


def bad(where: str, message: str) -> InvalidRequestError:
    """A 400 naming the field as Anthropic does (`messages.0.content`)."""
    return InvalidRequestError(f"{where}: {message}", param=where)


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):  # JSON objects are dicts (and a dict check is 3x an ABC's)
        raise bad(where, "Input should be an object")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise bad(where, "Input should be a string")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad(where, "Input should be a list")
    return value


def _marked(out: JSONDict, block: Mapping[str, Any]) -> JSONDict:
    """`out` with the `cache_control` of the block it came from."""
    if block.get(CACHE_KEY) is not None:
        out[CACHE_KEY] = block[CACHE_KEY]
    return out


def messages_request(data: Mapping[str, Any], *, max_messages: int | None = None) -> ChatRequest:
    """Validate a Messages API body and build the ChatRequest the gateway routes."""
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", "Field required (a model name, or 'auto' to route)")
    max_tokens = data.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad("max_tokens", "Field required: a positive integer")
    messages = _system(data.get("system"))
    turns = _list(data.get("messages"), "messages")
    if not turns:
        raise bad("messages", "at least one message is required")
    for i, turn in enumerate(turns):
        messages += _turn(turn, f"messages.{i}")
    body: JSONDict = {"model": model, "max_tokens": max_tokens, "messages": messages}
    body.update(_sampling(data))
    budget = (body.get("thinking") or {}).get("budget_tokens")
    if budget is not None and budget >= max_tokens:  # as Anthropic: thinking counts in it
        raise bad("thinking.budget_tokens", "must be less than max_tokens")
    body.update(_tools(data))
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad("stream", "Input should be a valid boolean")
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    try:
        return chat_request(body, max_messages=max_messages)
    except InvalidRequestError as exc:  # the chat schema's own rules (e.g. at most 4 stops)
        raise _renamed(exc) from None


#: Chat-body fields -> the Messages API's (messages keep no index: the chat form has more).
_RENAMES: Final = ((re.compile(r"^stop\b"), "stop_sequences"),
                   (re.compile(r"^tools\[(\d+)\]\.function\.parameters"), r"tools.\1.input_schema"),
                   (re.compile(r"^tools\[(\d+)\]\.function\."), r"tools.\1."),
                   (re.compile(r"^messages\[.*"), "messages"))


def _renamed(exc: InvalidRequestError) -> InvalidRequestError:
    """A 400 of the chat validation, naming the Messages API's field."""
    param = exc.param or ""
    for pattern, name in _RENAMES:
        param = pattern.sub(name, param)
    return bad(param, exc.message) if param else exc


def _system(system: Any) -> list[JSONDict]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    parts = [_text_part(b, f"system.{i}") for i, b in enumerate(_list(system, "system"))]
    return [{"role": "system", "content": parts}] if parts else []


def _text_part(block: Any, where: str) -> JSONDict:
    block = _obj(block, where)
    if block.get("type") != "text":
        raise bad(f"{where}.type", "only text blocks are allowed here")
    return _marked({"type": "text", "text": _str(block.get("text"), f"{where}.text")}, block)


def _turn(turn: Any, where: str) -> list[JSONDict]:
    turn = _obj(turn, where)
    role = turn.get("role")
    content = turn.get("content")
    if role not in ("user", "assistant"):
        raise bad(f"{where}.role", "Input should be 'user' or 'assistant'")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    blocks = _list(content, f"{where}.content")
    if role == "assistant":
        return [_assistant(blocks, f"{where}.content")]
    return _user(blocks, f"{where}.content")


def _assistant(blocks: list[Any], where: str) -> JSONDict:
    parts: list[JSONDict] = []
    calls: list[JSONDict] = []
    thinking: list[JSONDict] = []
    mark: Any = None
    for j, block in enumerate(blocks):
        at = f"{where}.{j}"
        kind = _obj(block, at).get("type")
        if kind == "text":
            parts.append(_text_part(block, at))
        elif kind == "tool_use":
            calls.append(_tool_call(block, at))
            mark = block.get(CACHE_KEY) or mark
        elif kind in _THINKING_BLOCKS:
            thinking.append(_thinking_block(block, kind, at))
        else:
            raise bad(f"{at}.type", f"unsupported assistant block type {kind!r}")
    message: JSONDict = {"role": "assistant", "content": parts or ("" if not calls else None)}
    if thinking:
        message["thinking_blocks"] = thinking
    if calls:
        message["tool_calls"] = calls
        if mark is not None:  # a message's mark lands on its last block: the last tool_use
            message[CACHE_KEY] = mark
    return message


def _thinking_block(block: Mapping[str, Any], kind: str, where: str) -> JSONDict:
    if kind == "redacted_thinking":
        return {"type": kind, "data": _str(block.get("data"), f"{where}.data")}
    return {"type": kind, "thinking": _str(block.get("thinking"), f"{where}.thinking"),
            "signature": _str(block.get("signature", ""), f"{where}.signature")}


def _tool_call(block: Mapping[str, Any], where: str) -> JSONDict:
    call_input = block.get("input", {})
    if not isinstance(call_input, dict):
        raise bad(f"{where}.input", "Input should be an object")
    return {"id": _str(block.get("id"), f"{where}.id"), "type": "function",
            "function": {"name": _str(block.get("name"), f"{where}.name"),
                         "arguments": orjson.dumps(call_input).decode()}}


def _user(blocks: list[Any], where: str) -> list[JSONDict]:
    results: list[JSONDict] = []
    parts: list[JSONDict] = []
    for j, block in enumerate(blocks):
        at = f"{where}.{j}"
        kind = _obj(block, at).get("type")
        if kind == "tool_result":
            results.append(_tool_result(block, at, parts))
        else:
            parts.append(_user_part(block, kind, at))
    return [*results, *([{"role": "user", "content": parts}] if parts else [])]


def _user_part(block: Mapping[str, Any], kind: Any, where: str) -> JSONDict:
    if kind == "text":
        return _text_part(block, where)
    if kind == "image":
        return _marked({"type": "image_url", "image_url": {"url": _image_url(block, where)}}, block)
    if kind == "document":
        return _marked(_document(block, where), block)
    raise bad(f"{where}.type", f"unsupported user block type {kind!r}")


def _image_url(block: Mapping[str, Any], where: str) -> str:
    source = _obj(block.get("source"), f"{where}.source")
    if source.get("type") == "url":
        return _str(source.get("url"), f"{where}.source.url")
    if source.get("type") != "base64":
        raise bad(f"{where}.source.type", "Input should be 'base64' or 'url'")
    media = source.get("media_type")
    if media not in IMAGE_MEDIA_TYPES:
        allowed = ", ".join(sorted(IMAGE_MEDIA_TYPES))
        raise bad(f"{where}.source.media_type", f"Input should be one of {allowed}")
    return f"data:{media};base64,{_str(source.get('data'), f'{where}.source.data')}"


def _document(block: Mapping[str, Any], where: str) -> JSONDict:
    source = _obj(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if kind == "text":
        return {"type": "text", "text": _str(source.get("data"), f"{where}.source.data")}
    if kind != "base64" or source.get("media_type") != "application/pdf":
        raise bad(f"{where}.source", "only base64 PDF and plain-text documents are supported")
    data = _str(source.get("data"), f"{where}.source.data")
    file: JSONDict = {"file_data": f"data:application/pdf;base64,{data}"}
    if isinstance(block.get("title"), str):
        file["filename"] = block["title"]
    return {"type": "file", "file": file}


def _tool_result(block: Mapping[str, Any], where: str, parts: list[JSONDict]) -> JSONDict:
    """The `tool` message of a tool_result; its images and documents are appended to `parts`
    (the user message that follows the tool messages)."""
    message: JSONDict = {"role": "tool",
                         "tool_call_id": _str(block.get("tool_use_id"), f"{where}.tool_use_id")}
    content = block.get("content")
    if content is None or isinstance(content, str):
        message["content"] = content or ""
    else:
        texts: list[JSONDict] = []
        for k, item in enumerate(_list(content, f"{where}.content")):
            at = f"{where}.content.{k}"
            kind = _obj(item, at).get("type")
            if kind in ("image", "document"):
                parts.append(_user_part(item, kind, at))
            else:
                texts.append(_text_part(item, at))
        message["content"] = texts or ""
    return _marked(message, block)


def _sampling(data: Mapping[str, Any]) -> JSONDict:
    out: JSONDict = {}
    for key in ("temperature", "top_p"):
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise bad(key, "Input should be a number from 0 to 1")
        out[key] = value
    top_k = data.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise bad("top_k", "Input should be a non-negative integer")
        out["top_k"] = top_k
    stops = data.get("stop_sequences")
    if stops is not None:
        out["stop"] = [_str(s, f"stop_sequences.{i}")
                       for i, s in enumerate(_list(stops, "stop_sequences"))] or None
    metadata = data.get("metadata")
    if metadata is not None:
        user = _obj(metadata, "metadata").get("user_id")
        if user is not None:
            out["user"] = _str(user, "metadata.user_id")
    thinking = data.get("thinking")
    if thinking is not None:
        if _obj(thinking, "thinking").get("type") not in ("enabled", "disabled", "adaptive"):
            raise bad("thinking.type", "Input should be 'enabled', 'disabled' or 'adaptive'")
        out["thinking"] = _thinking(thinking)
    return {k: v for k, v in out.items() if v is not None}


def _thinking(thinking: Mapping[str, Any]) -> JSONDict:
    """The request's `thinking`, checked (a 400 naming `thinking.budget_tokens`)."""
    if thinking["type"] != "enabled":
        return {"type": thinking["type"]}
    try:
        reasoning_of({"thinking": thinking})
    except InvalidRequestError as exc:
        raise bad(exc.param or "thinking", exc.message) from None
    return {"type": "enabled", "budget_tokens": thinking["budget_tokens"]}


def _tools(data: Mapping[str, Any]) -> JSONDict:
    out: JSONDict = {}
    tools = data.get("tools")
    if tools:
        out["tools"] = [_tool(t, f"tools.{i}") for i, t in enumerate(_list(tools, "tools"))]
    choice = data.get("tool_choice")
    if choice is None:
        return out
    choice = _obj(choice, "tool_choice")
    kind = choice.get("type")
    if kind == "tool":
        name = _str(choice.get("name"), "tool_choice.name")
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    elif kind in _CHOICES:
        out["tool_choice"] = _CHOICES[kind]
    else:
        raise bad("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    if kind != "none" and not tools:
        raise bad("tool_choice", "tool_choice needs tools")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    if kind == "none" and not tools:
        out.pop("tool_choice")
    return out


def _tool(tool: Any, where: str) -> JSONDict:
    tool = _obj(tool, where)
    if tool.get("type", "custom") not in ("custom", None):
        raise bad(f"{where}.type", f"server tool {tool.get('type')!r} is not supported by the "
                                   "gateway; only custom (client) tools are")
    schema = _obj(tool.get("input_schema"), f"{where}.input_schema")
    function: JSONDict = {"name": _str(tool.get("name"), f"{where}.name"),
                          "parameters": dict(schema)}
    if tool.get("description") is not None:
        function["description"] = _str(tool["description"], f"{where}.description")
    return _marked({"type": "function", "function": function}, tool)

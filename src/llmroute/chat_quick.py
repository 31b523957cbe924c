"""A fast path for the common chat-completions body (issue 17): plain checks over the parsed dict
that say "certainly valid" for the bodies most requests send, so that pydantic's validation and the
checks across fields (`chat.checked_request`) run only for the rest.

`certain` answers True only for a body that `chat_schema.ChatBody` accepts *and* that passes every
check `chat.checked_request` makes after the schema (the message limit, an assistant message's
content, a tool message's call, `top_logprobs`/`stream_options`, `tool_choice: required` with
tools, `reasoning_effort`, a model named), with none of the gateway's own keys (`plugins`,
`models`) and none of the fields it does not check itself (custom tools, a named tool_choice,
response_format, logit_bias, images, audio, files, ...). For anything else it answers False,
and the full validation decides: every error (status, type, message, param) is the full
validation's, unchanged. Types are checked exactly (`type(v) is str`), as strict pydantic does
for JSON values; a subclass falls back. Pure: no I/O, no state.

tests/test_chat_quick.py compares the two paths on random valid and invalid bodies."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

INT64 = 2**63
#: `chat_schema.Name` (pydantic's regex is Rust's: `$` is the end of the text, as `fullmatch`).
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
#: ChatBody's fields this module does not check: present (even null), the full validation runs.
_NOT_CHECKED = frozenset({
    "functions", "function_call", "response_format", "logit_bias",
    "modalities", "thinking", "audio", "prediction", "web_search_options", "plugins", "models"})


def _str_or_none(value: object) -> bool:
    return value is None or type(value) is str


def _bool_or_none(value: object) -> bool:
    return value is None or type(value) is bool


def _int_in(low: int, high: int) -> Callable[[object], bool]:
    """An int (not a bool) in [low, high], or None."""

    def check(value: object) -> bool:
        return value is None or (type(value) is int and low <= value <= high)

    return check


def _number_in(low: float, high: float) -> Callable[[object], bool]:
    """A float or an int (strict pydantic takes both for a float; not a bool) in [low, high], or
    None."""

    def check(value: object) -> bool:
        return value is None or ((type(value) is float or type(value) is int)
                                 and low <= value <= high)

    return check


def _stop(value: object) -> bool:
    if value is None or type(value) is str:
        return True
    return type(value) is list and len(value) <= 4 and all(type(s) is str for s in value)


def _metadata(value: object) -> bool:
    if value is None:
        return True
    return type(value) is dict and all(type(k) is str and type(v) is str
                                       for k, v in value.items())


def _stream_options(value: object) -> bool:
    if value is None:
        return True
    return (type(value) is dict and type(value.get("include_usage", False)) is bool
            and type(value.get("include_obfuscation", False)) is bool)


def _tools(value: object) -> bool:
    """None, or a list of function tools (a custom one falls back)."""
    return value is None or (type(value) is list and all(_function_tool(t) for t in value))


def _function_tool(tool: object) -> bool:
    if type(tool) is not dict or type(tool.get("type")) is not str or tool["type"] != "function":
        return False
    function = tool.get("function")
    if not _cache(tool.get("cache_control")) or type(function) is not dict:
        return False
    name = function.get("name")
    if type(name) is not str or _NAME.fullmatch(name) is None:
        return False
    if "description" in function and type(function["description"]) is not str:
        return False
    parameters = function.get("parameters", {})
    return (type(parameters) is dict and all(type(k) is str for k in parameters)
            and _bool_or_none(function.get("strict")))


def _tool_choice(value: object) -> bool:
    """None or one of the plain choices (a named tool falls back)."""
    return value is None or (type(value) is str and value in ("none", "auto", "required"))


def _effort(value: object) -> bool:
    """`reasoning_effort`: a string (the schema), not empty (`reasoning.reasoning_of`)."""
    return value is None or (type(value) is str and value != "")


#: The top-level fields checked here (besides `model` and `messages`), each with its check.
_CHECKS: dict[str, Callable[[object], bool]] = {
    "stream": _bool_or_none, "stream_options": _stream_options,
    "max_tokens": _int_in(1, INT64 - 1), "max_completion_tokens": _int_in(1, INT64 - 1),
    "n": _int_in(1, 128), "temperature": _number_in(0, 2), "top_p": _number_in(0, 1),
    "frequency_penalty": _number_in(-2, 2), "presence_penalty": _number_in(-2, 2),
    "logprobs": _bool_or_none, "top_logprobs": _int_in(0, 20),
    "seed": _int_in(-INT64, INT64 - 1), "stop": _stop, "parallel_tool_calls": _bool_or_none,
    "user": _str_or_none, "metadata": _metadata, "store": _bool_or_none,
    "reasoning_effort": _effort, "service_tier": _str_or_none, "verbosity": _str_or_none,
    "safety_identifier": _str_or_none, "prompt_cache_key": _str_or_none, "tools": _tools,
    "tool_choice": _tool_choice,
}


def certain(data: Mapping[str, Any], max_messages: int | None) -> bool:
    """True when `data` is certainly a valid chat body of the common kind (see the module);
    False when not sure."""
    if type(data) is not dict:
        return False
    model = data.get("model")
    if type(model) is not str or not model:
        return False
    for key, value in data.items():
        check = _CHECKS.get(key)
        if check is not None:
            if not check(value):
                return False
        elif key in _NOT_CHECKED:
            return False
    if data.get("top_logprobs") is not None and data.get("logprobs") is not True:
        return False
    if data.get("stream_options") is not None and data.get("stream") is not True:
        return False
    if data.get("tool_choice") == "required" and not data.get("tools"):
        return False
    messages = data.get("messages")
    if type(messages) is not list or not messages:
        return False
    if max_messages is not None and len(messages) > max_messages:
        return False
    return _messages(messages)


def _messages(messages: list[Any]) -> bool:
    """Each message of a kind checked here, valid, and a tool message answering a call of an
    earlier assistant message (the common kinds inline: a call each costs)."""
    calls: set[str] = set()
    for message in messages:
        if type(message) is not dict:
            return False
        role = message.get("role")
        if type(role) is not str:
            return False
        cache = message.get("cache_control")
        if cache is not None and not _cache(cache):
            return False
        if role == "user" or role == "system" or role == "developer":
            content = message.get("content")
            if type(content) is not str and not _text_list(content):
                return False
            if "name" in message and type(message["name"]) is not str:
                return False
        elif role == "assistant":
            if not _assistant(message, calls):
                return False
        elif role == "tool":
            call, content = message.get("tool_call_id"), message.get("content")
            if type(call) is not str or call not in calls or (
                    type(content) is not str and not _text_list(content)):
                return False
        else:
            return False
    return True


def _name(message: Mapping[str, Any]) -> bool:
    return "name" not in message or type(message["name"]) is str


def _text_list(content: object) -> bool:
    """A non-empty list of text parts."""
    return type(content) is list and bool(content) and all(_text_part(p) for p in content)


def _text_part(part: object) -> bool:
    return (type(part) is dict and type(part.get("type")) is str and part["type"] == "text"
            and type(part.get("text")) is str and _cache(part.get("cache_control")))


def _cache(value: object) -> bool:
    """A prompt-cache breakpoint (`{"type": "ephemeral", "ttl"?: "5m" | "1h"}`), or None."""
    if value is None:
        return True
    if type(value) is not dict or type(value.get("type")) is not str or value["type"] != "ephemeral":
        return False
    ttl = value.get("ttl", "5m")
    return type(ttl) is str and ttl in ("5m", "1h")


def _assistant(message: Mapping[str, Any], calls: set[str]) -> bool:
    """An assistant message with text (or refusal) content or function tool calls; the ids of
    its calls go to `calls`."""
    for key in ("audio", "function_call", "thinking_blocks"):
        if message.get(key) is not None:
            return False
    if not (_name(message) and _str_or_none(message.get("refusal"))
            and _str_or_none(message.get("reasoning_content"))):
        return False
    content = message.get("content")
    if content is not None and type(content) is not str and not (
            type(content) is list and content and all(_assistant_part(p) for p in content)):
        return False
    tool_calls = message.get("tool_calls")
    if tool_calls is None:
        if "tool_calls" in message:
            return False  # the schema's list[ToolCall] is not nullable
        tool_calls = ()
    elif type(tool_calls) is not list or not all(_function_call(c) for c in tool_calls):
        return False
    if content is None and not tool_calls and not message.get("refusal"):
        return False  # chat.check_messages: content needed unless there are calls
    calls.update(call["id"] for call in tool_calls)
    return True


def _assistant_part(part: object) -> bool:
    if type(part) is not dict:
        return False
    if type(part.get("type")) is not str:
        return False
    if part["type"] == "refusal":
        return type(part.get("refusal")) is str
    return _text_part(part)


def _function_call(call: object) -> bool:
    if type(call) is not dict or type(call.get("type")) is not str or type(call.get("id")) is not str:
        return False
    if call["type"] != "function":
        return False
    function = call.get("function")
    return (type(function) is dict and type(function.get("name")) is str
            and type(function.get("arguments")) is str)

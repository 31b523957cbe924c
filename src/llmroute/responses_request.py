"""OpenAI's Responses API request (`POST /v1/responses`) translated to a chat-completions body,
which `chat.chat_request` then validates into the core `ChatRequest`: a Responses request is
routed exactly like a chat request (no second implementation). Pure: no I/O.

What translates: `input` (a string, or items: messages with input_text / input_image /
output_text parts, function_call and function_call_output items), `instructions` (a system
message first), function `tools`, `tool_choice`, `max_output_tokens`, `temperature`, `top_p`,
`parallel_tool_calls`, `user`, `text.format` (json_schema / json_object -> `response_format`),
`stream`, `reasoning` (responses_reasoning: effort, and reasoning items carried back), and the
gateway's own `models` / `plugins`. The gateway keeps no conversation state:
`previous_response_id`, `conversation` and `background` are refused with a 400 naming them, and
built-in tools (web_search, file_search, ...) too. Errors name the Responses parameter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidRequestError
from .responses_reasoning import reasoning_effort, thinking_block

JSON = dict[str, Any]

#: Parameters translated into the chat body (or read by the answer's translation).
_TRANSLATED = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "max_output_tokens", "temperature",
    "top_p", "parallel_tool_calls", "user", "text", "stream", "metadata", "models", "plugins",
    "reasoning"})
#: Accepted and without effect here (the gateway stores nothing).
_IGNORED = frozenset({
    "store", "include", "truncation", "service_tier", "stream_options",
    "prompt_cache_key", "safety_identifier", "top_logprobs", "max_tool_calls", "prompt"})
#: Refused: they need state kept by the server.
_STATEFUL = {
    "previous_response_id": "the gateway keeps no conversation state; send the whole "
                            "conversation in 'input'",
    "conversation": "the gateway keeps no conversations; send the whole conversation in 'input'",
    "background": "background responses need state the gateway does not keep",
}
_ROLES = frozenset({"user", "assistant", "system", "developer"})


def _bad(param: str, message: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{param}': {message}", param=param)


def _obj(value: Any, param: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(param, "expected an object.")
    return value


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _bad(param, "expected a string.")
    return value


def check_top_level(data: Mapping[str, Any]) -> None:
    """Refuse stateful, unknown and mistyped top-level parameters."""
    for key, why in _STATEFUL.items():
        if data.get(key) not in (None, False):
            raise InvalidRequestError(f"Unsupported parameter '{key}': {why}.", param=key,
                                      code="unsupported_parameter")
    for key in data:
        if key not in _TRANSLATED and key not in _IGNORED and key not in _STATEFUL:
            raise InvalidRequestError(f"Unknown parameter: '{key}'.", param=key,
                                      code="unknown_parameter")
    if "input" not in data:
        raise InvalidRequestError("Missing required parameter: 'input'.", param="input",
                                  code="missing_required_parameter")
    metadata = data.get("metadata")
    if metadata is not None and not (isinstance(metadata, Mapping) and all(
            isinstance(v, str) for v in metadata.values())):
        raise _bad("metadata", "expected an object of strings.")


def _content_part(part: Any, param: str) -> JSON:
    """One content part as its chat form."""
    part = _obj(part, param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _str(part.get("text"), f"{param}.text")}
    if kind == "refusal":
        return {"type": "text", "text": _str(part.get("refusal"), f"{param}.refusal")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise _bad(f"{param}.image_url", "an image needs an 'image_url' (a URL or a data "
                       "URL); uploaded files ('file_id') are not supported by the gateway.")
        image: JSON = {"url": url}
        if part.get("detail") is not None:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise _bad(f"{param}.type", f"unsupported content type {kind!r} (input_text, input_image, "
               "output_text, refusal).")


def _message(item: Mapping[str, Any], param: str) -> JSON:
    role = item.get("role")
    if role not in _ROLES:
        raise _bad(f"{param}.role", f"expected one of {', '.join(sorted(_ROLES))}.")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _bad(f"{param}.content", "expected a string or a list of content parts.")
    parts = [_content_part(p, f"{param}.content[{i}]") for i, p in enumerate(content)]
    if role != "user":  # only user messages take images; the others take text
        if any(p["type"] != "text" for p in parts):
            raise _bad(f"{param}.content", f"a {role} message takes text parts only.")
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _function_call(item: Mapping[str, Any], param: str) -> JSON:
    return {"id": _str(item.get("call_id"), f"{param}.call_id"), "type": "function",
            "function": {"name": _str(item.get("name"), f"{param}.name"),
                         "arguments": _str(item.get("arguments"), f"{param}.arguments")}}


def _tool_output(item: Mapping[str, Any], param: str, calls: set[str]) -> JSON:
    call_id = _str(item.get("call_id"), f"{param}.call_id")
    if call_id not in calls:
        raise _bad(f"{param}.call_id", f"no function_call with call_id {call_id!r} precedes it.")
    output = item.get("output")
    if isinstance(output, list):  # output parts: their text
        output = "".join(_content_part(p, f"{param}.output[{i}]").get("text", "")
                         for i, p in enumerate(output))
    return {"role": "tool", "tool_call_id": call_id, "content": _str(output, f"{param}.output")}


def input_messages(value: Any) -> list[JSON]:
    """`input` as chat messages: consecutive function calls become one assistant message."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise _bad("input", "expected a string or a non-empty list of items.")
    messages: list[JSON] = []
    calls: set[str] = set()
    thinking: list[JSON] = []  # reasoning items waiting for the assistant turn they precede
    for i, raw in enumerate(value):
        param = f"input[{i}]"
        item = _obj(raw, param)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, param))
        elif kind == "function_call":
            call = _function_call(item, param)
            calls.add(call["id"])
            last = messages[-1] if messages else None
            if last and last["role"] == "assistant" and last.get("tool_calls") and not thinking:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages.append(_tool_output(item, param, calls))
        elif kind == "reasoning":
            block = thinking_block(item, param)
            thinking += [block] if block is not None else []
            continue
        else:
            raise _bad(f"{param}.type", f"unsupported item type {kind!r} (message, "
                       "function_call, function_call_output, reasoning).")
        if thinking and messages[-1]["role"] == "assistant":
            messages[-1]["thinking_blocks"] = thinking
            thinking = []
    return messages


def chat_tools(value: Any) -> list[JSON]:
    """Function tools as chat tools; a built-in tool is a 400 naming it."""
    if not isinstance(value, list):
        raise _bad("tools", "expected a list.")
    tools: list[JSON] = []
    for i, raw in enumerate(value):
        tool = _obj(raw, f"tools[{i}]")
        if tool.get("type") != "function":
            raise InvalidRequestError(
                f"Unsupported tool type {tool.get('type')!r} in 'tools[{i}].type': the gateway "
                "serves function tools only (built-in tools run on OpenAI's servers).",
                param=f"tools[{i}].type", code="unsupported_tool")
        function: JSON = {"name": _str(tool.get("name"), f"tools[{i}].name")}
        for key in ("description", "parameters", "strict"):
            if tool.get(key) is not None:
                function[key] = tool[key]
        tools.append({"type": "function", "function": function})
    return tools


def chat_tool_choice(value: Any) -> str | JSON:
    """`tool_choice` as its chat form."""
    if value in ("auto", "none", "required"):
        return str(value)
    choice = _obj(value, "tool_choice")
    if choice.get("type") != "function":
        raise _bad("tool_choice.type", "expected 'function' (built-in tools are not served).")
    return {"type": "function", "function": {"name": _str(choice.get("name"),
                                                          "tool_choice.name")}}


def response_format(text: Any) -> JSON | None:
    """`text.format` as the chat `response_format` (None: plain text)."""
    fmt = _obj(text, "text").get("format")
    if fmt is None:
        return None
    fmt = _obj(fmt, "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = _obj(fmt.get("schema"), "text.format.schema")
        spec: JSON = {"name": _str(fmt.get("name"), "text.format.name"), "schema": dict(schema)}
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                spec[key] = fmt[key]
        return {"type": "json_schema", "json_schema": spec}
    raise _bad("text.format.type", "expected text, json_object or json_schema.")


def chat_body(data: Mapping[str, Any]) -> JSON:
    """The chat-completions body a Responses request means (validated field by field)."""
    check_top_level(data)
    messages = input_messages(data["input"])
    instructions = data.get("instructions")
    if instructions is not None:
        messages.insert(0, {"role": "system", "content": _str(instructions, "instructions")})
    body: JSON = {"messages": messages}
    for key in ("model", "models", "plugins", "temperature", "top_p", "parallel_tool_calls",
                "user", "stream"):
        if data.get(key) is not None:
            body[key] = data[key]
    if data.get("stream") is True:  # the usage event (with the cost) ends every stream
        body["stream_options"] = {"include_usage": True}
    if data.get("max_output_tokens") is not None:
        body["max_completion_tokens"] = data["max_output_tokens"]
    if data.get("tools"):
        body["tools"] = chat_tools(data["tools"])
    elif data.get("parallel_tool_calls") is not None:
        del body["parallel_tool_calls"]  # chat refuses it without tools
    choice = data.get("tool_choice")
    if choice is not None and (body.get("tools") or choice not in ("auto", "none")):
        body["tool_choice"] = chat_tool_choice(choice)  # without tools: chat's 400 says so
    if data.get("text") is not None and (fmt := response_format(data["text"])) is not None:
        body["response_format"] = fmt
    if (effort := reasoning_effort(data.get("reasoning"))) is not None:
        body["reasoning_effort"] = effort
    return body


def echoed(data: Mapping[str, Any]) -> JSON:
    """The request's settings a Response object repeats back."""
    text = data.get("text") if isinstance(data.get("text"), Mapping) else None
    found = data.get("reasoning")
    asked: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {
        "reasoning": {"effort": asked.get("effort"), "summary": asked.get("summary")},
        "instructions": data.get("instructions"),
        "max_output_tokens": data.get("max_output_tokens"),
        "metadata": dict(data.get("metadata") or {}),
        "parallel_tool_calls": data.get("parallel_tool_calls", True),
        "temperature": data.get("temperature"),
        "top_p": data.get("top_p"),
        "tool_choice": data.get("tool_choice", "auto"),
        "tools": list(data.get("tools") or ()),
        "text": dict(text) if text else {"format": {"type": "text"}},
        "user": data.get("user"),
    }


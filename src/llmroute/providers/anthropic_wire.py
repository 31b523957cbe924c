"""Translate OpenAI Chat Completions requests into Anthropic Messages requests, and responses back.

Pure functions over plain JSON dicts: no I/O, no SDK objects. `messages` conversion lives in
`anthropic_messages`, streaming in `anthropic_stream`, errors in `anthropic_errors`
(`WireError` and `classify_anthropic_error` are re-exported here).

Where the formats do not map one to one:

* system and developer messages, wherever they appear, are hoisted into the top-level `system`
  string, joined by blank lines (in-conversation system turns are not supported by every model);
  its text blocks instead when one carries `cache_control`.
* consecutive turns of the same role are merged (Anthropic needs user/assistant alternation);
  `tool` messages become `tool_result` blocks of a user turn, placed before any text in it.
* `max_completion_tokens`, else `max_tokens`, else `default_max_tokens` becomes `max_tokens`
  (which Anthropic requires).
* `temperature` and `top_p` are clamped to Anthropic's 0..1 (OpenAI's temperature goes to 2).
  When both are given only `temperature` is sent: current Claude models reject the pair. Some
  models reject sampling parameters altogether (and the anthropic SDK dropped them from
  `messages.create`; send them via `extra_body`): the gateway strips `SAMPLING_PARAMS` for those.
* `stop` sequences that are empty or whitespace only are dropped: Anthropic rejects them.
* trailing whitespace is stripped from the last text of a final assistant turn (a prefill):
  Anthropic rejects it.
* tool call ids are reduced to Anthropic's id alphabet `[A-Za-z0-9_-]` (other characters become
  `_`), the same way in `tool_use` and `tool_result`, so the pairs still match.
* `response_format` json_object / json_schema: emulated with a system instruction to answer
  with JSON only (with the schema for json_schema). The model is asked, not constrained.
* `tool_choice` `allowed_tools` is emulated by sending only the allowed tools; a tool_choice
  without `tools` is dropped.
* `user` (or, failing that, `safety_identifier`) becomes `metadata.user_id`.
* message `name` fields and image `detail` are dropped. In responses, server-tool blocks are
  dropped: Chat Completions has no place for them. Thinking (`thinking` / `reasoning_effort`
  in, `reasoning_content` and `thinking_blocks` out, the blocks sent back): anthropic_thinking.
* stop reasons: end_turn, stop_sequence and pause_turn → "stop"; max_tokens and
  model_context_window_exceeded → "length"; tool_use → "tool_calls"; refusal → "content_filter".
* `cache_control` marks (Anthropic's own shape, as LiteLLM and OpenRouter accept them in OpenAI
  requests) on content parts, on a message (its last block) and on tools (`tools[i]`) land on
  the blocks they mark; a marked system prompt is sent as text blocks. More than 4 breakpoints,
  a malformed mark, or a 1h mark after a 5m one are refused (`cache_control.check_breakpoints`).
* usage: prompt_tokens counts input, cache-read and cache-write tokens (OpenAI's prompt count
  includes cached tokens); `prompt_tokens_details.cached_tokens` is the cache read.

Refused with `WireError` (the gateway answers 400 naming `param`): `n` > 1, `logprobs` /
`top_logprobs`, audio output (`modalities` with "audio", `audio`), legacy `functions` /
`function_call` and role "function", non-function tools, audio input, file parts that are not
inline PDFs, and malformed input (e.g. tool call arguments that are not a JSON object).

Dropped silently, Anthropic having no equivalent: `DROPPED_PARAMS`, among them
`presence_penalty`, `frequency_penalty`, `logit_bias` and `seed`. Any other unknown key is
dropped too, except `PASSTHROUGH_PARAMS`, which Anthropic understands as they are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from llmroute.providers.anthropic_errors import WireError, classify_anthropic_error
from llmroute.providers.anthropic_messages import JSONDict, convert_messages
from llmroute.providers.anthropic_thinking import (
    THINKING_TYPES,
    add_reasoning,
    apply_thinking,
    chat_block,
    with_reasoning_tokens,
)
from llmroute.providers.cache_control import KEY as CACHE_KEY
from llmroute.providers.cache_control import cache_control_of, check_breakpoints

__all__ = [
    "DROPPED_PARAMS",
    "PASSTHROUGH_PARAMS",
    "SAMPLING_PARAMS",
    "JSONDict",
    "WireError",
    "classify_anthropic_error",
    "from_anthropic_response",
    "openai_completion_id",
    "openai_finish_reason",
    "openai_usage",
    "to_anthropic_request",
]

#: OpenAI request params with no Anthropic equivalent; dropped without error.
DROPPED_PARAMS: Final = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "seed",
        "store",
        "metadata",
        "service_tier",
        "verbosity",
        "prediction",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "web_search_options",
        "moderation",
        "stream_options",
    }
)
#: Non-OpenAI params some clients send for Anthropic-backed models; copied to the request as is.
PASSTHROUGH_PARAMS: Final = frozenset({"top_k"})
#: Sampling keys the request may carry, which some Claude models refuse.
SAMPLING_PARAMS: Final = frozenset({"temperature", "top_p", "top_k"})

_JSON_ONLY = (
    "Respond only with a single valid JSON object. Do not add any text, explanation or "
    "Markdown code fences before or after the JSON."
)
_FINISH_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
#: Anthropic stop_reason -> OpenAI finish_reason (the Messages API endpoint reads it backwards).
FINISH_REASONS: Final[Mapping[str, str]] = _FINISH_REASONS


# --------------------------------------------------------------------------- requests


def to_anthropic_request(body: Mapping[str, Any], model: str, default_max_tokens: int = 4096) -> JSONDict:
    """Build the Anthropic Messages request body for the OpenAI chat request `body`."""
    _reject_unsupported(body)
    check_breakpoints(body)
    system, messages = convert_messages(body.get("messages"))
    instruction = _response_format_instruction(body.get("response_format"))
    if instruction:
        system.append({"type": "text", "text": instruction})
    request: JSONDict = {
        "model": model,
        "max_tokens": _max_tokens(body, default_max_tokens),
        "messages": messages,
    }
    if system:
        request["system"] = _system(system)
    request.update(_sampling_params(body))
    request.update(_tool_params(body))
    apply_thinking(request, body)
    user_id = body.get("user") or body.get("safety_identifier")
    if user_id:
        request["metadata"] = {"user_id": str(user_id)}
    if body.get("stream") is not None:
        request["stream"] = bool(body["stream"])
    for key in PASSTHROUGH_PARAMS:
        if body.get(key) is not None:
            request[key] = body[key]
    return request


def _system(blocks: list[JSONDict]) -> str | list[JSONDict]:
    """The system prompt: one string, or its text blocks when one carries `cache_control`."""
    if any(CACHE_KEY in block for block in blocks):
        return blocks
    return "\n\n".join(block["text"] for block in blocks)


def _reject_unsupported(body: Mapping[str, Any]) -> None:
    n = body.get("n")
    if n is not None and n != 1:
        raise WireError("Anthropic models return exactly one choice; `n` must be 1", "n")
    if body.get("logprobs"):
        raise WireError("Anthropic models do not return log probabilities", "logprobs")
    if body.get("top_logprobs"):
        raise WireError("Anthropic models do not return log probabilities", "top_logprobs")
    if "audio" in (body.get("modalities") or ()) or body.get("audio"):
        raise WireError("Anthropic models cannot produce audio output", "modalities")
    for legacy in ("functions", "function_call"):
        if body.get(legacy) is not None:
            raise WireError(f"`{legacy}` is deprecated and not supported; use `tools`", legacy)


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise WireError(f"`{key}` must be a positive integer", key)
        return value
    return default


def _sampling_params(body: Mapping[str, Any]) -> JSONDict:
    out: JSONDict = {}
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WireError(f"`{key}` must be a number", key)
        out[key] = min(max(float(value), 0.0), 1.0)
    if "temperature" in out:
        out.pop("top_p", None)
    stop = body.get("stop")
    if stop is not None:
        sequences = [stop] if isinstance(stop, str) else stop
        if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
            raise WireError("`stop` must be a string or a list of strings", "stop")
        kept = [s for s in sequences if s.strip()]
        if kept:
            out["stop_sequences"] = kept
    return out


def _response_format_instruction(response_format: Any) -> str | None:
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return _JSON_ONLY
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, Mapping):
            raise WireError("`json_schema` must be an object", "response_format.json_schema")
        lines = [_JSON_ONLY, f"The JSON must conform to the JSON Schema named {spec.get('name')!r}"]
        if spec.get("description"):
            lines.append(f"({spec['description']})")
        schema = json.dumps(spec.get("schema") or {}, ensure_ascii=False)
        return " ".join(lines) + ":\n" + schema
    raise WireError(f"unsupported response_format type {kind!r}", "response_format.type")


# --------------------------------------------------------------------------- tools


def _tool_params(body: Mapping[str, Any]) -> JSONDict:
    raw_tools = body.get("tools")
    if not raw_tools:
        return {}
    if not isinstance(raw_tools, list):
        raise WireError("`tools` must be a list", "tools")
    tools = [_convert_tool(tool, f"tools[{i}]") for i, tool in enumerate(raw_tools)]
    choice, allowed = _convert_tool_choice(body.get("tool_choice"))
    if allowed is not None:
        tools = [t for t in tools if t["name"] in allowed]
        if not tools:
            raise WireError("`allowed_tools` names none of the tools", "tool_choice")
    if body.get("parallel_tool_calls") is False:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    return {"tools": tools, **({"tool_choice": choice} if choice else {})}


def _convert_tool(tool: Any, where: str) -> JSONDict:
    if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
        raise WireError("only function tools are supported", f"{where}.type")
    function = tool.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise WireError("a function tool needs `function.name`", f"{where}.function.name")
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise WireError("`parameters` must be a JSON Schema object", f"{where}.function.parameters")
    schema: JSONDict = dict(parameters or {})
    schema.setdefault("type", "object")
    if schema["type"] == "object":
        schema.setdefault("properties", {})
    converted: JSONDict = {"name": function["name"], "input_schema": schema}
    if function.get("description"):
        converted["description"] = function["description"]
    if CACHE_KEY in tool:
        mark = cache_control_of(tool[CACHE_KEY], f"{where}.{CACHE_KEY}")
        if mark is not None:
            converted[CACHE_KEY] = mark
    return converted


def _convert_tool_choice(choice: Any) -> tuple[JSONDict | None, set[str] | None]:
    """The Anthropic tool_choice, and the tool names allowed (None: all)."""
    simple = {"auto": "auto", "required": "any", "none": "none"}
    if choice is None:
        return None, None
    if isinstance(choice, str) and choice in simple:
        return {"type": simple[choice]}, None
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "function":
        name = _function_name(choice)
        if name is None:
            raise WireError("`tool_choice.function.name` is required", "tool_choice.function.name")
        return {"type": "tool", "name": name}, None
    if kind == "allowed_tools":
        spec = choice.get("allowed_tools")
        spec = spec if isinstance(spec, Mapping) else {}
        mode = spec.get("mode", "auto")
        if mode not in ("auto", "required") or not isinstance(spec.get("tools"), list):
            raise WireError("invalid `allowed_tools`", "tool_choice.allowed_tools")
        names = {_function_name(t) for t in spec["tools"]}
        return {"type": simple[mode]}, {n for n in names if n is not None}
    raise WireError(f"unsupported tool_choice {choice!r}", "tool_choice")


def _function_name(obj: Any) -> str | None:
    """`obj["function"]["name"]` when it is a string."""
    function = obj.get("function") if isinstance(obj, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    return name if isinstance(name, str) else None


# --------------------------------------------------------------------------- responses


def from_anthropic_response(resp: Mapping[str, Any], model: str, created: int) -> JSONDict:
    """The OpenAI `chat.completion` object for the Anthropic message `resp`."""
    texts: list[str] = []
    tool_calls: list[JSONDict] = []
    thinking: list[JSONDict] = []
    for block in resp.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") == "tool_use":
            tool_calls.append(_openai_tool_call(block))
        elif block.get("type") in THINKING_TYPES:
            thinking.append(chat_block(block))
        # server-tool blocks have no Chat Completions field.
    message: JSONDict = {
        "role": "assistant",
        "content": "".join(texts) if texts or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    add_reasoning(message, thinking)
    usage = openai_usage(resp.get("usage") or {})
    usage = with_reasoning_tokens(usage, len(message.get("reasoning_content") or ""))
    return {
        "id": openai_completion_id(str(resp.get("id", ""))),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": openai_finish_reason(resp.get("stop_reason")),
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def _openai_tool_call(block: Mapping[str, Any]) -> JSONDict:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": _dump_arguments(block.get("input"))},
    }


def _dump_arguments(value: Any) -> str:
    return json.dumps(value if value is not None else {}, ensure_ascii=False, separators=(",", ":"))


def openai_completion_id(anthropic_id: str) -> str:
    """The OpenAI completion id for an Anthropic message id."""
    return "chatcmpl-" + anthropic_id


def openai_finish_reason(stop_reason: str | None) -> str:
    """Map an Anthropic `stop_reason` to an OpenAI `finish_reason` (unknown or None: "stop")."""
    return _FINISH_REASONS.get(stop_reason or "", "stop")


def openai_usage(usage: Mapping[str, Any]) -> JSONDict:
    """OpenAI `usage` for Anthropic usage; prompt tokens include cache reads and writes, and
    `prompt_tokens_details` says both (`cache_write_1h_tokens`: the writes to the 1-hour cache,
    when there are any, from `cache_creation.ephemeral_1h_input_tokens`)."""
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("input_tokens") or 0) + cache_read + cache_write
    completion = int(usage.get("output_tokens") or 0)
    cached: JSONDict = {"cached_tokens": cache_read, "cache_write_tokens": cache_write}
    creation = usage.get("cache_creation")
    hour = creation.get("ephemeral_1h_input_tokens") if isinstance(creation, Mapping) else None
    if hour:
        cached["cache_write_1h_tokens"] = int(hour)
    result: JSONDict = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": cached,
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, Mapping) and details.get("thinking_tokens") is not None:
        result["completion_tokens_details"] = {"reasoning_tokens": int(details["thinking_tokens"])}
    return result

"""Translate OpenAI Chat Completions requests into Gemini `generateContent` requests, and answers
back. Pure functions over JSON dicts; messages in `gemini_messages`, streams in `gemini_stream`,
errors in `gemini_errors`.

Request: system/developer → `systemInstruction`; `tools` → one `functionDeclarations` tool (each
schema as `parametersJsonSchema`, which takes JSON Schema as is); `tool_choice` auto / required /
none / a named function / allowed_tools → `toolConfig.functionCallingConfig` (AUTO, ANY, NONE,
`allowedFunctionNames`); `response_format` json_object → `responseMimeType: application/json`,
json_schema → that plus `responseJsonSchema`; `max_completion_tokens` / `max_tokens` →
`maxOutputTokens`; temperature, top_p, stop (≤ 5), n, seed, presence/frequency penalties →
`generationConfig`; `thinking` / `reasoning_effort` → `generationConfig.thinkingConfig`
(llmroute.reasoning: a budget, 0 when off, -1 adaptive, `includeThoughts`). Refused with a
400 naming the param: logprobs / top_logprobs, audio output, legacy `functions`, non-function
tools, more than 5 stop sequences. Dropped: the params in `DROPPED_PARAMS` (no Gemini
equivalent), among them `logit_bias`, `user` and `parallel_tool_calls` (Gemini decides itself
whether to call functions in parallel).

Answer: candidates → choices (text parts joined, thought parts → `reasoning_content`,
`functionCall` parts → `tool_calls` with generated ids; thought signatures are not kept);
finishReason STOP → stop (tool_calls when the candidate calls a function), MAX_TOKENS → length,
the safety reasons → content_filter; `usageMetadata` → usage: prompt = promptTokenCount +
toolUsePromptTokenCount, completion = candidatesTokenCount + thoughtsTokenCount (thinking is
billed as output), `cachedContentTokenCount` → `prompt_tokens_details.cached_tokens`, thoughts →
`completion_tokens_details.reasoning_tokens`. A prompt blocked by safety
(`promptFeedback.blockReason`), or a candidate stopped for safety
before any content, is a `content_policy` error, not an empty answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from ..errors import InvalidRequestError
from ..reasoning import gemini_thinking, reasoning_of
from .anthropic_errors import WireError
from .gemini_messages import JSONDict, convert_messages

DROPPED_PARAMS: Final = frozenset({
    "logit_bias", "user", "safety_identifier", "store", "metadata", "service_tier",
    "verbosity", "prediction", "prompt_cache_key", "prompt_cache_retention",
    "parallel_tool_calls", "stream_options", "web_search_options", "modalities"})
MAX_STOP: Final = 5
SAFETY_REASONS: Final = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT",
                                   "SPII", "IMAGE_SAFETY", "LANGUAGE"})
_FINISH: Final = {"STOP": "stop", "MAX_TOKENS": "length", "MALFORMED_FUNCTION_CALL": "stop",
                  **{reason: "content_filter" for reason in SAFETY_REASONS}}
_GENERATION: Final = (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                      ("presence_penalty", "presencePenalty"),
                      ("frequency_penalty", "frequencyPenalty"))
_MODES: Final = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


class SafetyBlock(Exception):
    """Gemini refused the prompt or the answer for safety: a content-policy error."""


def to_gemini_request(body: Mapping[str, Any]) -> JSONDict:
    """The `generateContent` body for the OpenAI chat request `body` (the model goes in the URL)."""
    _reject_unsupported(body)
    system, contents = convert_messages(body.get("messages"))
    request: JSONDict = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    config = _generation_config(body)
    if config:
        request["generationConfig"] = config
    request.update(_tool_params(body))
    return request


def _reject_unsupported(body: Mapping[str, Any]) -> None:
    for key in ("logprobs", "top_logprobs"):
        if body.get(key):
            raise WireError("Gemini deployments do not return log probabilities here", key)
    if "audio" in (body.get("modalities") or ()) or body.get("audio"):
        raise WireError("Gemini deployments cannot produce audio output here", "modalities")
    for legacy in ("functions", "function_call"):
        if body.get(legacy) is not None:
            raise WireError(f"`{legacy}` is deprecated and not supported; use `tools`", legacy)


def _generation_config(body: Mapping[str, Any]) -> JSONDict:
    config: JSONDict = {}
    for key in ("max_completion_tokens", "max_tokens"):
        if body.get(key) is not None:
            config["maxOutputTokens"] = body[key]
            break
    for ours, theirs in _GENERATION:
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    if body.get("n") is not None and body["n"] != 1:
        config["candidateCount"] = body["n"]
    stop = body.get("stop")
    if stop is not None:
        sequences = [stop] if isinstance(stop, str) else stop
        if not isinstance(sequences, list) or len(sequences) > MAX_STOP:
            raise WireError(f"Gemini takes at most {MAX_STOP} stop sequences", "stop")
        config["stopSequences"] = sequences
    config.update(_response_format(body.get("response_format")))
    try:
        thinking = gemini_thinking(reasoning_of(body))
    except InvalidRequestError as exc:  # an effort with no budget: this model cannot take it
        raise WireError(exc.message, exc.param) from None
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def _response_format(response_format: Any) -> JSONDict:
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if response_format is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema", {}), Mapping):
            raise WireError("`json_schema.schema` must be an object", "response_format.json_schema")
        out: JSONDict = {"responseMimeType": "application/json"}
        if spec.get("schema"):
            out["responseJsonSchema"] = spec["schema"]
        return out
    raise WireError(f"unsupported response_format type {kind!r}", "response_format.type")


def _tool_params(body: Mapping[str, Any]) -> JSONDict:
    tools = body.get("tools")
    if not tools:
        return {}
    if not isinstance(tools, list):
        raise WireError("`tools` must be a list", "tools")
    declarations = [_declaration(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    out: JSONDict = {"tools": [{"functionDeclarations": declarations}]}
    config = _calling_config(body.get("tool_choice"))
    if config is not None:
        out["toolConfig"] = {"functionCallingConfig": config}
    return out


def _declaration(tool: Any, where: str) -> JSONDict:
    if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
        raise WireError("only function tools are supported", f"{where}.type")
    function = tool.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise WireError("a function tool needs `function.name`", f"{where}.function.name")
    declaration: JSONDict = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters"):
        declaration["parametersJsonSchema"] = function["parameters"]
    return declaration


def _calling_config(choice: Any) -> JSONDict | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _MODES:
        return {"mode": _MODES[choice]}
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind == "function":
        name = (choice.get("function") or {}).get("name")
        if not isinstance(name, str):
            raise WireError("`tool_choice.function.name` is required", "tool_choice.function.name")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    if kind == "allowed_tools":
        spec = choice.get("allowed_tools") or {}
        mode = spec.get("mode", "auto") if isinstance(spec, Mapping) else None
        if mode not in ("auto", "required") or not isinstance(spec.get("tools"), list):
            raise WireError("invalid `allowed_tools`", "tool_choice.allowed_tools")
        names = [(t.get("function") or {}).get("name") for t in spec["tools"]
                 if isinstance(t, Mapping)]
        return {"mode": _MODES[mode], "allowedFunctionNames": [n for n in names if n]}
    raise WireError(f"unsupported tool_choice {choice!r}", "tool_choice")


# --------------------------------------------------------------------------- answers


def check_blocked(response: Mapping[str, Any]) -> None:
    """Raise `SafetyBlock` for a prompt blocked by safety or a candidate stopped before any
    content for safety."""
    feedback = response.get("promptFeedback") or {}
    reason = feedback.get("blockReason") if isinstance(feedback, Mapping) else None
    if reason:
        raise SafetyBlock(f"the prompt was blocked ({reason})")
    candidates = response.get("candidates") or []
    if candidates and all(_blocked(c) for c in candidates):
        raise SafetyBlock(f"the answer was blocked ({candidates[0].get('finishReason')})")


def _blocked(candidate: Mapping[str, Any]) -> bool:
    parts = (candidate.get("content") or {}).get("parts") or []
    return candidate.get("finishReason") in SAFETY_REASONS and not parts


def from_gemini_response(response: Mapping[str, Any], model: str, created: int) -> JSONDict:
    """The OpenAI `chat.completion` for a whole Gemini answer."""
    check_blocked(response)
    response_id = str(response.get("responseId") or created)
    choices = []
    for position, candidate in enumerate(response.get("candidates") or []):
        index = int(candidate.get("index", position))
        text, calls = candidate_parts(candidate, f"{response_id}_{index}")
        message: JSONDict = {"role": "assistant",
                             "content": text if text or not calls else None, "refusal": None}
        if thought := thoughts(candidate):
            message["reasoning_content"] = thought
        if calls:
            message["tool_calls"] = calls
        choices.append({"index": index, "message": message, "logprobs": None,
                        "finish_reason": finish_reason(candidate.get("finishReason"),
                                                       bool(calls))})
    return {"id": f"chatcmpl-{response_id}", "object": "chat.completion", "created": created,
            "model": model, "choices": choices,
            "usage": openai_usage(response.get("usageMetadata") or {})}


def candidate_parts(candidate: Mapping[str, Any], id_prefix: str) -> tuple[str, list[JSONDict]]:
    """A candidate's text (thoughts left out) and its function calls as OpenAI tool calls."""
    texts: list[str] = []
    calls: list[JSONDict] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if "functionCall" in part:
            call = part["functionCall"]
            call_id = call.get("id") or f"call_{id_prefix}_{len(calls)}"
            arguments = json.dumps(call.get("args") or {}, ensure_ascii=False,
                                   separators=(",", ":"))
            calls.append({"id": call_id, "type": "function",
                          "function": {"name": call.get("name"), "arguments": arguments}})
        elif isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
    return "".join(texts), calls


def thoughts(candidate: Mapping[str, Any]) -> str:
    """A candidate's thought summaries (parts marked `thought`, sent with `includeThoughts`)."""
    parts = (candidate.get("content") or {}).get("parts") or []
    return "".join(p["text"] for p in parts if p.get("thought") and isinstance(p.get("text"), str))


def finish_reason(reason: str | None, called: bool) -> str:
    """OpenAI's finish_reason for a Gemini finishReason (unknown: stop)."""
    mapped = _FINISH.get(reason or "", "stop")
    return "tool_calls" if called and mapped == "stop" else mapped


def openai_usage(meta: Mapping[str, Any]) -> JSONDict:
    """OpenAI usage for Gemini `usageMetadata` (see the module docstring)."""
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + thoughts
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": int(meta.get("cachedContentTokenCount")
                                                           or 0)},
            "completion_tokens_details": {"reasoning_tokens": thoughts}}

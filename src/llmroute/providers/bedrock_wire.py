"""The Bedrock Converse dialect: OpenAI chat requests to Converse bodies, and Converse answers,
stream events and errors back.

Converse is the Anthropic Messages model with other field names, so the request goes through the
Anthropic translation first (its validation, tool, image and `cache_control` handling included)
and is then renamed block by block: `text` → `{"text"}`, `image` → `{"image": {"format",
"source": {"bytes"}}}`, `tool_use` → `toolUse`, `tool_result` → `toolResult`, a `cache_control`
mark → a `cachePoint` block after the marked block, `max_tokens`/`temperature`/`top_p`/
`stop_sequences` → `inferenceConfig`, `top_k` and (Claude models) `thinking` →
`additionalModelRequestFields`, thinking blocks ⇄ `reasoningContent` (bedrock_reasoning), tools →
`toolConfig`. Answers come back the same way: a Converse message and its usage are renamed to
the Anthropic shape, and the Anthropic translation builds the OpenAI objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .anthropic_errors import ErrorCategory, WireError
from .anthropic_wire import JSONDict, to_anthropic_request
from .bedrock_reasoning import (
    anthropic_block,
    anthropic_delta,
    converse_block,
    takes_thinking,
    without_reasoning,
)
from .cache_control import KEY as CACHE_KEY

#: Converse stop reasons → the Anthropic ones the shared translation maps to OpenAI's.
STOP_REASONS: Final = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "model_context_window_exceeded": "model_context_window_exceeded",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
}
#: Bedrock exception names (`x-amzn-ErrorType`, `__type`, or `:exception-type` in a stream,
#: where they start lower case) → our categories.
EXCEPTIONS: Final[Mapping[str, ErrorCategory]] = {
    "throttlingexception": "rate_limit",
    "servicequotaexceededexception": "rate_limit",
    "validationexception": "bad_request",
    "accessdeniedexception": "permission",
    "unrecognizedclientexception": "auth",
    "invalidsignatureexception": "auth",
    "expiredtokenexception": "auth",
    "resourcenotfoundexception": "not_found",
    "modeltimeoutexception": "timeout",
    "modelnotreadyexception": "overloaded",
    "serviceunavailableexception": "overloaded",
    "modelerrorexception": "server",
    "modelstreamerrorexception": "server",
    "internalserverexception": "server",
    "missingauthenticationtokenexception": "auth",
}
_STATUS: Final[Mapping[int, ErrorCategory]] = {
    400: "bad_request", 401: "auth", 403: "permission", 404: "not_found", 408: "timeout",
    424: "server", 429: "rate_limit", 503: "overloaded",
}
#: Refinements found in a ValidationException's message.
_HINTS: Final[tuple[tuple[str, ErrorCategory], ...]] = (
    ("too long", "context_window"), ("context window", "context_window"),
    ("maximum context", "context_window"), ("content filter", "content_policy"))
_IMAGE_FORMATS: Final = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif",
                         "image/webp": "webp"}


# --------------------------------------------------------------------------- requests


def to_converse_request(body: Mapping[str, Any], model: str) -> JSONDict:
    """The Converse body for the OpenAI chat request `body` (the model goes in the URL)."""
    anthropic = to_anthropic_request(body if takes_thinking(model) else without_reasoning(body),
                                     model)
    request: JSONDict = {"messages": [_message(m) for m in anthropic["messages"]]}
    system = anthropic.get("system")
    if system:
        blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
        request["system"] = _blocks(blocks)
    inference = {"maxTokens": anthropic["max_tokens"]}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"),
                         ("stop_sequences", "stopSequences")):
        if ours in anthropic:
            inference[theirs] = anthropic[ours]
    request["inferenceConfig"] = inference
    extra = {key: anthropic[key] for key in ("top_k", "thinking") if key in anthropic}
    if extra:
        request["additionalModelRequestFields"] = extra
    if anthropic.get("tools"):
        request["toolConfig"] = _tool_config(anthropic["tools"], anthropic.get("tool_choice"))
    return request


def _message(message: Mapping[str, Any]) -> JSONDict:
    content = message["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    return {"role": message["role"], "content": _blocks(blocks)}


def _blocks(blocks: list[JSONDict]) -> list[JSONDict]:
    out: list[JSONDict] = []
    for block in blocks:
        out.append(_block(block))
        if CACHE_KEY in block:
            out.append({"cachePoint": {"type": "default"}})
    return out


def _block(block: Mapping[str, Any]) -> JSONDict:
    kind = block.get("type")
    if kind == "text":
        return {"text": block["text"]}
    if kind == "image":
        return {"image": _image(block.get("source") or {})}
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": block["id"], "name": block["name"],
                            "input": block.get("input") or {}}}
    if kind == "tool_result":
        return {"toolResult": _tool_result(block)}
    if (reasoning := converse_block(block)) is not None:
        return reasoning
    raise WireError(f"Bedrock Converse cannot take a {kind!r} content block", "messages")


def _image(source: Mapping[str, Any]) -> JSONDict:
    image_format = _IMAGE_FORMATS.get(str(source.get("media_type")))
    if source.get("type") != "base64" or image_format is None:
        raise WireError("Bedrock Converse takes images as base64 data URLs (png, jpeg, gif or "
                        "webp), not by URL", "messages")
    return {"format": image_format, "source": {"bytes": source["data"]}}


def _tool_result(block: Mapping[str, Any]) -> JSONDict:
    content = block.get("content")
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
    result: JSONDict = {"toolUseId": block["tool_use_id"],
                        "content": [b for b in _blocks(parts) if "cachePoint" not in b]}
    if block.get("is_error"):
        result["status"] = "error"
    return result


def _tool_config(tools: list[JSONDict], choice: Mapping[str, Any] | None) -> JSONDict:
    specs: list[JSONDict] = []
    for tool in tools:
        spec: JSONDict = {"name": tool["name"], "inputSchema": {"json": tool["input_schema"]}}
        if tool.get("description"):
            spec["description"] = tool["description"]
        specs.append({"toolSpec": spec})
        if CACHE_KEY in tool:
            specs.append({"cachePoint": {"type": "default"}})
    config: JSONDict = {"tools": specs}
    kind = (choice or {}).get("type")
    if kind == "any":
        config["toolChoice"] = {"any": {}}
    elif kind == "tool":
        config["toolChoice"] = {"tool": {"name": (choice or {})["name"]}}
    elif kind == "none":
        raise WireError("Bedrock Converse has no `tool_choice: none`; leave the tools out",
                        "tool_choice")
    return config


# --------------------------------------------------------------------------- answers


def anthropic_usage(usage: Mapping[str, Any]) -> JSONDict:
    """Converse usage renamed to Anthropic's (input tokens exclude cache reads and writes in both)."""
    return {"input_tokens": int(usage.get("inputTokens") or 0),
            "output_tokens": int(usage.get("outputTokens") or 0),
            "cache_read_input_tokens": int(usage.get("cacheReadInputTokens") or 0),
            "cache_creation_input_tokens": int(usage.get("cacheWriteInputTokens") or 0)}


def anthropic_message(resp: Mapping[str, Any], request_id: str) -> JSONDict:
    """A Converse answer as an Anthropic message (for `from_anthropic_response`)."""
    output = resp.get("output")
    message = output.get("message") if isinstance(output, Mapping) else None
    if not isinstance(message, Mapping) or not isinstance(message.get("content"), list):
        raise ValueError("a Converse answer needs output.message.content")
    content: list[JSONDict] = []
    for block in message["content"]:
        if not isinstance(block, Mapping):
            continue
        if isinstance(block.get("text"), str):
            content.append({"type": "text", "text": block["text"]})
        elif isinstance(block.get("toolUse"), Mapping):
            use = block["toolUse"]
            content.append({"type": "tool_use", "id": use.get("toolUseId"),
                            "name": use.get("name"), "input": use.get("input")})
        elif isinstance(block.get("reasoningContent"), Mapping):
            content.append(anthropic_block(block["reasoningContent"]))
        # other blocks have no Chat Completions field
    return {"id": request_id, "content": content,
            "stop_reason": STOP_REASONS.get(str(resp.get("stopReason")), "end_turn"),
            "usage": anthropic_usage(resp.get("usage") or {})}


def stream_event(name: str, data: Mapping[str, Any], request_id: str) -> list[tuple[str, JSONDict]]:
    """The Anthropic stream events (name, data) for one ConverseStream event; `metadata`, which
    carries the usage after `messageStop`, ends the message."""
    index = int(data.get("contentBlockIndex") or 0)
    if name == "messageStart":
        return [("message_start", {"message": {"id": request_id, "usage": {}}})]
    if name == "contentBlockStart":
        use = (data.get("start") or {}).get("toolUse")
        if not isinstance(use, Mapping):
            return []
        block: JSONDict = {"type": "tool_use", "id": use.get("toolUseId"), "name": use.get("name"),
                 "input": {}}
        return [("content_block_start", {"index": index, "content_block": block})]
    if name == "contentBlockDelta":
        return _delta(index, data.get("delta") or {})
    if name == "contentBlockStop":
        return [("content_block_stop", {"index": index})]
    if name == "messageStop":
        reason = STOP_REASONS.get(str(data.get("stopReason")), "end_turn")
        return [("message_delta", {"delta": {"stop_reason": reason}})]
    if name == "metadata":
        usage = anthropic_usage(data.get("usage") or {})
        return [("message_delta", {"delta": {}, "usage": usage}), ("message_stop", {})]
    return []


def _delta(index: int, delta: Mapping[str, Any]) -> list[tuple[str, JSONDict]]:
    if isinstance(delta.get("text"), str):
        return [("content_block_delta",
                 {"index": index, "delta": {"type": "text_delta", "text": delta["text"]}})]
    reasoning = delta.get("reasoningContent")
    if isinstance(reasoning, Mapping) and (converted := anthropic_delta(reasoning)) is not None:
        return [("content_block_delta", {"index": index, "delta": converted})]
    use = delta.get("toolUse")
    if isinstance(use, Mapping) and isinstance(use.get("input"), str):
        return [("content_block_delta", {"index": index, "delta": {
            "type": "input_json_delta", "partial_json": use["input"]}})]
    return []


# --------------------------------------------------------------------------- errors


def exception_name(headers: Mapping[str, str], body: Mapping[str, Any]) -> str:
    """The exception's name: from `x-amzn-ErrorType` (`Name:namespace`) or the body's `__type`."""
    raw = headers.get("x-amzn-errortype") or str(body.get("__type") or "")
    return raw.split(":", 1)[0].rsplit("#", 1)[-1]


def classify(status: int, name: str, message: str) -> ErrorCategory:
    """Our category for a Bedrock error (its exception name decides, then the status)."""
    category = EXCEPTIONS.get(name.lower())
    if category in (None, "bad_request"):
        lowered = message.lower()
        for needle, hinted in _HINTS:
            if needle in lowered:
                return hinted
    if category is not None:
        return category
    if status in _STATUS:
        return _STATUS[status]
    return "bad_request" if 400 <= status < 500 else "server"

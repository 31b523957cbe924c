"""A chat completion translated back to a Responses API `Response` object: output items (a
message with output_text, function_call items), usage (input_tokens, output_tokens,
input_tokens_details.cached_tokens, and the gateway's `cost`), status (`incomplete` when the
answer hit max_output_tokens), and `model` = the model that answered. Pure: no I/O."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .responses_reasoning import reasoning_items

JSON = dict[str, Any]


def response_id(request_id: str) -> str:
    """The Response's id: the gateway's request id (the ledger's key) in OpenAI's form."""
    return "resp_" + request_id.removeprefix("req_")


def response_usage(usage: Mapping[str, Any] | None) -> JSON | None:
    """A chat `usage` object as Responses usage."""
    if not isinstance(usage, Mapping):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details")
    cached = int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0
    out_details = usage.get("completion_tokens_details")
    reasoning = (int(out_details.get("reasoning_tokens") or 0)
                 if isinstance(out_details, Mapping) else 0)
    out: JSON = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached},
                 "output_tokens": completion,
                 "output_tokens_details": {"reasoning_tokens": reasoning},
                 "total_tokens": prompt + completion}
    for key in ("cost", "estimated"):
        if key in usage:
            out[key] = usage[key]
    return out


def message_item(item_id: str, text: str, *, refusal: str | None = None,
                 status: str = "completed") -> JSON:
    """An assistant message output item."""
    part: JSON = ({"type": "refusal", "refusal": refusal} if refusal is not None else
                  {"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [part]}


def call_item(item_id: str, call_id: str, name: str, arguments: str,
              status: str = "completed") -> JSON:
    """A function_call output item."""
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def output_items(message: Mapping[str, Any], rid: str) -> list[JSON]:
    """A chat answer's message as output items: its reasoning, its text (or refusal), then its
    tool calls."""
    items: list[JSON] = reasoning_items(message, rid)
    content = message.get("content")
    refusal = message.get("refusal")
    if (isinstance(content, str) and content) or (isinstance(refusal, str) and refusal):
        items.append(message_item(f"msg_{rid}", content if isinstance(content, str) else "",
                                  refusal=refusal if isinstance(refusal, str) else None))
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        items.append(call_item(f"fc_{rid}_{i}", str(call.get("id") or f"call_{rid}_{i}"),
                               str(function.get("name") or ""),
                               str(function.get("arguments") or "")))
    return items


def status_of(finish_reason: Any) -> tuple[str, JSON | None]:
    """The Response's status and incomplete_details for a chat finish_reason."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(request_id: str, model: str, echo: Mapping[str, Any], *,
                    status: str = "completed", output: list[JSON] | None = None,
                    usage: JSON | None = None, incomplete: JSON | None = None,
                    error: JSON | None = None, created_at: float | None = None) -> JSON:
    """A Response object (`echo`: the request's settings it repeats, `responses_request.echoed`)."""
    return {
        "id": response_id(request_id), "object": "response",
        "created_at": int(created_at if created_at is not None else time.time()),
        "status": status, "error": error, "incomplete_details": incomplete,
        "model": model, "output": output or [], "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None}, "store": False,
        "truncation": "disabled", "usage": usage, **echo,
    }


def from_chat(completion: Mapping[str, Any], request_id: str, echo: Mapping[str, Any]) -> JSON:
    """A chat completion as a Response."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    found = choice.get("message")
    message: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    rid = response_id(request_id).removeprefix("resp_")
    status, incomplete = status_of(choice.get("finish_reason"))
    return response_object(request_id, str(completion.get("model") or ""), echo, status=status,
                           output=output_items(message, rid),
                           usage=response_usage(completion.get("usage")),
                           incomplete=incomplete, created_at=completion.get("created"))

"""The Anthropic Messages dialect of the fake upstream (bodies, SSE events, errors)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from llmroute.testing._anthropic_thinking import (
    check_thinking,
    thinking_block,
    thinking_deltas,
    thinking_on,
    thinking_text,
)
from llmroute.testing._wire import (
    TOOL_ARGUMENTS,
    JsonObject,
    Reply,
    default_answer,
    dumps,
    make_reply,
    marker_tool,
    prompt_tokens_for,
    split_answer,
)
from llmroute.testing.behaviours import Error, Protocol, bad_request

_DEFAULT_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _forced_tool(body: JsonObject) -> str | None:
    choice = body.get("tool_choice")
    if body.get("tools") and isinstance(choice, dict) and choice.get("type") == "tool":
        name = choice.get("name")
        if isinstance(name, str):
            return name
    return marker_tool(body.get("messages"))


def _event(name: str, obj: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(obj) + b"\n\n"


def _block_frames(index: int, block: JsonObject, deltas: list[JsonObject]) -> list[bytes]:
    """One content block's start, deltas and stop events."""
    return [
        _event("content_block_start", {"type": "content_block_start", "index": index,
                                       "content_block": block}),
        *(_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": d}) for d in deltas),
        _event("content_block_stop", {"type": "content_block_stop", "index": index}),
    ]


def _stop_reason(reply: Reply) -> str:
    return "end_turn" if reply.tool_name is None else "tool_use"


def _usage(reply: Reply, output_tokens: int) -> JsonObject:
    cache = reply.cache
    if cache is None:
        return {"input_tokens": reply.prompt_tokens, "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return {
        "input_tokens": cache.prompt_tokens - cache.read - cache.written,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache.written,
        "cache_read_input_tokens": cache.read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache.write_5m,
                           "ephemeral_1h_input_tokens": cache.write_1h},
    }


def _delta_usage(reply: Reply) -> JsonObject:
    """`message_delta` usage: the output tokens, and (as Anthropic now sends them, cumulative)
    the input and cache counts when the prompt cache was used."""
    if reply.cache is None:
        return {"output_tokens": reply.completion_tokens}
    usage = _usage(reply, reply.completion_tokens)
    del usage["cache_creation"]
    return usage


class AnthropicWire:
    """Anthropic `POST /v1/messages` and `GET /v1/models`."""

    name: Protocol = "anthropic"

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        # `x-api-key` is the classic header; anthropic SDK 2.x sends `Authorization: Bearer`.
        return (headers.get("x-api-key") == api_key
                or headers.get("authorization") == f"Bearer {api_key}")

    def validate(self, body: JsonObject | None) -> Error | None:
        if body is None:
            return bad_request("Invalid JSON body")
        for field in ("model", "messages", "max_tokens"):
            if field not in body:
                return bad_request(f"{field}: Field required")
        if not isinstance(body["model"], str):
            return bad_request("model: Input should be a valid string")
        if not isinstance(body["messages"], list):
            return bad_request("messages: Input should be a valid list")
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            return bad_request("max_tokens: Input should be a valid integer greater than 0")
        return check_thinking(body)

    def reply(self, body: JsonObject, model: str, seq: int) -> Reply:
        messages = body.get("messages")
        reply = make_reply(
            model,
            default_answer(model, messages),
            _forced_tool(body),
            prompt_tokens_for(messages, body.get("system")),
            seq,
        )
        return replace(reply, thinking=thinking_text(body)) if thinking_on(body) else reply

    def _block(self, reply: Reply, *, streaming: bool) -> JsonObject:
        if reply.tool_name is None:
            return {"type": "text", "text": "" if streaming else reply.text}
        return {"type": "tool_use", "id": f"toolu_fake{reply.seq}", "name": reply.tool_name,
                "input": {}}

    def _message(self, reply: Reply, *, streaming: bool) -> JsonObject:
        return {
            "id": f"msg_fake{reply.seq}",
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "content": [] if streaming else [*self._thinking(reply),
                                             self._block(reply, streaming=False)],
            "stop_reason": None if streaming else _stop_reason(reply),
            "stop_sequence": None,
            "usage": _usage(reply, 1 if streaming else reply.completion_tokens),
        }

    def _thinking(self, reply: Reply) -> list[JsonObject]:
        return [] if reply.thinking is None else [thinking_block(reply, streaming=False)]

    def completion(self, reply: Reply) -> bytes:
        return dumps(self._message(reply, streaming=False))

    def stream_frames(self, reply: Reply, body: JsonObject) -> list[bytes]:
        frames = [_event("message_start",
                         {"type": "message_start", "message": self._message(reply, streaming=True)})]
        index = 0
        if reply.thinking is not None:
            frames += _block_frames(0, thinking_block(reply, streaming=True),
                                    thinking_deltas(reply))
            index = 1
        frames += _block_frames(index, self._block(reply, streaming=True), self._deltas(reply))
        frames.insert(2, _event("ping", {"type": "ping"}))
        frames += [
            _event("message_delta", {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                "usage": _delta_usage(reply),
            }),
            _event("message_stop", {"type": "message_stop"}),
        ]
        return frames

    def _deltas(self, reply: Reply) -> list[JsonObject]:
        if reply.tool_name is not None:
            return [{"type": "input_json_delta", "partial_json": TOOL_ARGUMENTS}]
        return [{"type": "text_delta", "text": piece} for piece in split_answer(reply.text)]

    def _error_object(self, err: Error) -> JsonObject:
        return {"type": err.type or _DEFAULT_TYPES.get(err.status, "api_error"),
                "message": err.message}

    def error(self, err: Error, request_id: str) -> tuple[int, bytes, dict[str, str]]:
        body = {"type": "error", "error": self._error_object(err), "request_id": request_id}
        headers = {"request-id": request_id, **(err.headers or {})}
        return err.status, dumps(body), headers

    def stream_error(self, err: Error) -> bytes:
        return _event("error", {"type": "error", "error": self._error_object(err)})

    def models(self, models: list[str]) -> bytes:
        data = [{"type": "model", "id": m, "display_name": m,
                 "created_at": "2025-01-01T00:00:00Z"} for m in models]
        return dumps({"data": data, "has_more": False,
                      "first_id": models[0] if models else None,
                      "last_id": models[-1] if models else None})

"""The OpenAI Chat Completions dialect of the fake upstream (bodies, SSE chunks, errors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

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
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}
_DONE: Final = b"data: [DONE]\n\n"


def _forced_tool(body: JsonObject) -> str | None:
    choice = body.get("tool_choice")
    if body.get("tools") and isinstance(choice, dict):
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return str(function["name"])
    return marker_tool(body.get("messages"))


def _usage(reply: Reply) -> JsonObject:
    completion = reply.completion_tokens
    usage: JsonObject = {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": reply.prompt_tokens + completion,
    }
    if reply.cache is not None:  # automatic prefix caching (prompts of 1024 tokens or more)
        usage["prompt_tokens_details"] = {"cached_tokens": reply.cache.read, "audio_tokens": 0}
    return usage


def _tool_call(reply: Reply, arguments: str) -> JsonObject:
    return {
        "id": f"call_fake{reply.seq}",
        "type": "function",
        "function": {"name": reply.tool_name, "arguments": arguments},
    }


def _sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


class OpenAIWire:
    """OpenAI `POST /v1/chat/completions` and `GET /v1/models`."""

    name: Protocol = "openai"

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return headers.get("authorization") == f"Bearer {api_key}"

    def validate(self, body: JsonObject | None) -> Error | None:
        if body is None:
            return bad_request(
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly.)"
            )
        if not isinstance(body.get("model"), str):
            return bad_request("you must provide a model parameter")
        if not isinstance(body.get("messages"), list):
            return Error(
                400,
                "Missing required parameter: 'messages'.",
                type="invalid_request_error",
                param="messages",
                code="missing_required_parameter",
            )
        return None

    def reply(self, body: JsonObject, model: str, seq: int) -> Reply:
        messages = body.get("messages")
        return make_reply(
            model,
            default_answer(model, messages),
            _forced_tool(body),
            prompt_tokens_for(messages),
            seq,
        )

    def completion(self, reply: Reply) -> bytes:
        message: JsonObject = {"role": "assistant", "content": reply.text, "refusal": None}
        finish = "stop"
        if reply.tool_name is not None:
            message["content"] = None
            message["tool_calls"] = [_tool_call(reply, TOOL_ARGUMENTS)]
            finish = "tool_calls"
        body: JsonObject = {
            "id": f"chatcmpl-fake{reply.seq}",
            "object": "chat.completion",
            "created": reply.created,
            "model": reply.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": _usage(reply),
            "system_fingerprint": None,
        }
        if not reply.usage:
            del body["usage"]
        return dumps(body)

    def stream_frames(self, reply: Reply, body: JsonObject) -> list[bytes]:
        options = body.get("stream_options")
        include_usage = (reply.usage and isinstance(options, dict)
                         and options.get("include_usage") is True)
        base: JsonObject = {
            "id": f"chatcmpl-fake{reply.seq}",
            "object": "chat.completion.chunk",
            "created": reply.created,
            "model": reply.model,
            "system_fingerprint": None,
        }
        if include_usage:
            base["usage"] = None

        def chunk(delta: JsonObject, finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return _sse({**base, "choices": [choice]})

        frames = [chunk(d) for d in self._deltas(reply)]
        frames.append(chunk({}, "stop" if reply.tool_name is None else "tool_calls"))
        if include_usage:
            frames.append(_sse({**base, "choices": [], "usage": _usage(reply)}))
        frames.append(_DONE)
        return frames

    def _deltas(self, reply: Reply) -> list[JsonObject]:
        if reply.tool_name is not None:
            first = {**_tool_call(reply, ""), "index": 0}
            more = {"index": 0, "function": {"arguments": TOOL_ARGUMENTS}}
            return [
                {"role": "assistant", "content": None, "tool_calls": [first]},
                {"tool_calls": [more]},
            ]
        deltas: list[JsonObject] = [{"role": "assistant", "content": "", "refusal": None}]
        deltas.extend({"content": piece} for piece in split_answer(reply.text))
        return deltas

    def _error_object(self, err: Error) -> JsonObject:
        err_type = err.type or _DEFAULT_TYPES.get(err.status, "server_error")
        return {"message": err.message, "type": err_type, "param": err.param, "code": err.code}

    def error(self, err: Error, request_id: str) -> tuple[int, bytes, dict[str, str]]:
        headers = {"x-request-id": request_id, **(err.headers or {})}
        return err.status, dumps({"error": self._error_object(err)}), headers

    def stream_error(self, err: Error) -> bytes:
        return _sse({"error": self._error_object(err)})

    def models(self, models: list[str]) -> bytes:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake-upstream"}
                for m in models]
        return dumps({"object": "list", "data": data})

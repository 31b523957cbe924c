"""The Gemini dialect of the fake upstream: `POST /v1beta/models/{model}:generateContent` and
`:streamGenerateContent?alt=sse`, keyed by `x-goog-api-key` (or `?key=`), answering
GenerateContentResponse bodies (candidates, usageMetadata with `cachedContentTokenCount`) and
google.rpc error bodies, as the real service does:

* a wrong key: 400 INVALID_ARGUMENT "API key not valid" (reason API_KEY_INVALID); no key: 403
  PERMISSION_DENIED ("unregistered callers");
* a rate limit (and, Gemini having no separate code, an exhausted quota): 429 RESOURCE_EXHAUSTED
  with a RetryInfo `retryDelay` detail and no Retry-After header;
* a content-policy refusal: not an HTTP error but a 200 whose `promptFeedback.blockReason` is
  SAFETY and which has no candidates; mid-stream, a chunk stopped with finishReason SAFETY;
* other statuses: their google.rpc status names (404 NOT_FOUND, 500 INTERNAL, 503 UNAVAILABLE).

Streams end by closing (no sentinel), the last chunk carrying finishReason and the usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from llmroute.testing._wire import (
    JsonObject,
    Reply,
    default_answer,
    dumps,
    last_user_text,
    make_reply,
    marker_tool,
    prompt_tokens_for,
    split_answer,
)
from llmroute.testing.behaviours import Error, Protocol, bad_request

_STATUS_NAMES: Final = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
                        403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                        500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_POLICY_CODES: Final = frozenset({"content_policy_violation", "content_filter"})
KEY_INVALID: Final = "API key not valid. Please pass a valid API key."
UNREGISTERED: Final = ("Method doesn't allow unregistered callers (callers without established "
                       "identity). Please use API Key or other form of API consumer identity to "
                       "call this API.")


def as_messages(body: Mapping[str, Any], system: bool = False) -> list[JsonObject]:
    """`contents` as OpenAI-like messages (role, content = the parts), for the shared helpers;
    `system`: the system instruction first (the prompt cache's prefix starts with it)."""
    contents = body.get("contents")
    messages = [{"role": c.get("role", "user"), "content": c.get("parts")}
                for c in contents or () if isinstance(c, dict)]
    instruction = body.get("systemInstruction")
    if system and isinstance(instruction, dict):
        messages.insert(0, {"role": "system", "content": instruction.get("parts")})
    return messages


def _forced_tool(body: JsonObject) -> str | None:
    """Mode ANY must call a function: the first allowed one, else the first declared."""
    config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    tools = body.get("tools")
    if tools and config.get("mode") == "ANY":
        names = config.get("allowedFunctionNames") or [
            d.get("name") for t in tools for d in t.get("functionDeclarations") or ()]
        if names:
            return str(names[0])
    return marker_tool(as_messages(body))


def _sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\r\n\r\n"


class GeminiWire:
    """The Gemini Developer API's generateContent."""

    name: Protocol = "gemini"

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return headers.get("x-goog-api-key") == api_key

    def validate(self, body: JsonObject | None) -> Error | None:
        if body is None:
            return bad_request("Invalid JSON payload received.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return bad_request("* GenerateContentRequest.contents: contents is not specified")
        for content in contents:
            if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
                return bad_request("Please use a valid role: user, model.")
        return None

    def reply(self, body: JsonObject, model: str, seq: int) -> Reply:
        messages = as_messages(body)
        system = (body.get("systemInstruction") or {}).get("parts")
        reply = make_reply(model, default_answer(model, messages), _forced_tool(body),
                           prompt_tokens_for(messages, system), seq)
        thinking = (body.get("generationConfig") or {}).get("thinkingConfig") or {}
        if not thinking.get("includeThoughts"):
            return reply  # thoughts are summarized in the answer only when asked
        return replace(reply, thinking="thinking about: " + last_user_text(messages)[:60])

    def _usage(self, reply: Reply, final: bool) -> JsonObject:
        usage: JsonObject = {"promptTokenCount": reply.prompt_tokens}
        if reply.cache is not None and reply.cache.read:
            usage["cachedContentTokenCount"] = reply.cache.read
        if final:  # Gemini counts thoughts apart from the answer's tokens
            usage["candidatesTokenCount"] = reply.completion_tokens - reply.thinking_tokens
            if reply.thinking:
                usage["thoughtsTokenCount"] = reply.thinking_tokens
            usage["totalTokenCount"] = reply.prompt_tokens + reply.completion_tokens
        return usage

    def _response(self, reply: Reply, parts: list[JsonObject], finish: str | None,
                  final: bool) -> JsonObject:
        candidate: JsonObject = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": self._usage(reply, final),
                "modelVersion": reply.model, "responseId": f"fakeresp{reply.seq}"}

    def _parts(self, reply: Reply) -> list[JsonObject]:
        if reply.tool_name is not None:
            return [*self._thought(reply), {"functionCall": {"name": reply.tool_name, "args": {}}}]
        return [*self._thought(reply), {"text": reply.text}]

    def _thought(self, reply: Reply) -> list[JsonObject]:
        return [{"text": reply.thinking, "thought": True}] if reply.thinking else []

    def completion(self, reply: Reply) -> bytes:
        return dumps(self._response(reply, self._parts(reply), "STOP", True))

    def stream_frames(self, reply: Reply, body: JsonObject) -> list[bytes]:
        if reply.tool_name is not None:
            return [_sse(self._response(reply, self._parts(reply), "STOP", True))]
        pieces = split_answer(reply.text) or [""]
        frames = [_sse(self._response(reply, self._thought(reply), None, False))
                  ] if reply.thinking else []
        frames += [_sse(self._response(reply, [{"text": p}], None, False)) for p in pieces[:-1]]
        frames.append(_sse(self._response(reply, [{"text": pieces[-1]}], "STOP", True)))
        return frames

    def _error_object(self, err: Error) -> JsonObject:
        status = err.type if err.type and err.type.isupper() else None
        message, details = err.message, list[JsonObject]()
        if err.status == 401:
            status, message = "INVALID_ARGUMENT", KEY_INVALID
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
        elif err.status == 429:
            wait = (err.headers or {}).get("retry-after", "1")
            message = "You exceeded your current quota, please check your plan and billing details."
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{wait}s"}]
        elif err.code == "context_length_exceeded":
            message = ("The input token count (250000) exceeds the maximum number of tokens "
                       "allowed (200000).")
        code = 400 if err.status == 401 else err.status
        return {"code": code, "message": message,
                "status": status or _STATUS_NAMES.get(code, "UNKNOWN"), "details": details}

    def _blocked(self, request_id: str) -> JsonObject:
        return {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]},
                "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
                "responseId": request_id}

    def error(self, err: Error, request_id: str) -> tuple[int, bytes, dict[str, str]]:
        if err.code in _POLICY_CODES:
            return 200, dumps(self._blocked(request_id)), {}
        error = self._error_object(err)
        headers = {k: v for k, v in (err.headers or {}).items()
                   if k.lower() not in ("retry-after", "retry-after-ms")}
        return error["code"], dumps({"error": error}), headers

    def stream_error(self, err: Error) -> bytes:
        if err.code in _POLICY_CODES:
            return _sse({"candidates": [{"content": {"role": "model", "parts": []},
                                         "finishReason": "SAFETY", "index": 0}]})
        return _sse({"error": self._error_object(err)})

    def unregistered(self) -> tuple[int, bytes, dict[str, str]]:
        """403 for a request without any key."""
        error = {"code": 403, "message": UNREGISTERED, "status": "PERMISSION_DENIED"}
        return 403, dumps({"error": error}), {}

    def models(self, models: list[str]) -> bytes:
        return dumps({"models": [{"name": f"models/{m}", "displayName": m} for m in models]})

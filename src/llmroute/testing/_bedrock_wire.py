"""The Bedrock Converse dialect of the fake upstream: SigV4 verification, Converse bodies,
ConverseStream in AWS event-stream frames, and Bedrock's error shapes.

Every request must carry a valid SigV4 signature for the fake's credentials
(`FAKE_AWS_CREDENTIALS`), or the fake's `api_key` as a Bedrock API key (`Authorization: Bearer`):
the fake recomputes the signature from the request as received (method, raw path,
query, the signed headers, the body) and answers 403 `InvalidSignatureException` /
`UnrecognizedClientException` / `MissingAuthenticationTokenException` like Bedrock otherwise.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from llmroute.providers.eventstream import encode
from llmroute.testing._prompt_cache import PromptCache
from llmroute.testing._sigv4 import (
    Credentials,
    amz_date,
    canonical_request,
    parse_authorization,
    signature,
)
from llmroute.testing._wire import (
    TOOL_ARGUMENTS,
    CacheUsage,
    JsonObject,
    Reply,
    default_answer,
    dumps,
    last_user_text,
    make_reply,
    marker_tool,
    prompt_tokens_for,
    split_answer,
    text_of,
)
from llmroute.testing.behaviours import Error, Protocol, bad_request

#: The credentials the fake accepts (AWS's documentation example pair).
FAKE_AWS_CREDENTIALS: Final = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
#: How far a request's x-amz-date may be from the fake's clock (AWS allows 5 minutes).
MAX_SKEW_S: Final = 300
_EXCEPTIONS: Final = {
    400: "ValidationException", 403: "AccessDeniedException", 404: "ResourceNotFoundException",
    408: "ModelTimeoutException", 424: "ModelErrorException", 429: "ThrottlingException",
    500: "InternalServerException", 503: "ServiceUnavailableException",
    529: "ServiceUnavailableException",
}


def _exception(err: Error) -> str:
    if err.type and err.type.endswith("Exception"):
        return err.type
    return _EXCEPTIONS.get(err.status, "InternalServerException")


def _denied(name: str, message: str) -> Error:
    return Error(403, message, type=name)


def check_signature(method: str, raw_path: str, query: str, headers: Mapping[str, str],
                    payload: bytes, now: datetime,
                    credentials: Credentials = FAKE_AWS_CREDENTIALS,
                    api_key: str | None = None) -> Error | None:
    """None when the request's SigV4 signature (or, with `api_key`, its Bedrock API key as a
    bearer token) is valid, else Bedrock's 403 for it."""
    header = headers.get("authorization")
    if not header:
        return _denied("MissingAuthenticationTokenException", "Missing Authentication Token")
    if header.startswith("Bearer "):
        if api_key is not None and hmac.compare_digest(header[7:], api_key):
            return None
        return _denied("UnrecognizedClientException", "Invalid API Key format: Must start "
                       "with pre-defined prefix")
    auth = parse_authorization(header)
    if auth is None or auth.access_key_id != credentials.access_key_id:
        return _denied("UnrecognizedClientException", "The security token included in the "
                       "request is invalid.")
    stamp = headers.get("x-amz-date", "")
    try:
        sent = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return _denied("InvalidSignatureException", "x-amz-date is missing or malformed")
    if abs((now - sent).total_seconds()) > MAX_SKEW_S or auth.scope.date != stamp[:8]:
        return _denied("InvalidSignatureException", f"Signature expired: {stamp} is now "
                       f"earlier or later than {amz_date(now)} by more than 5 minutes")
    if not {"host", "x-amz-date"} <= set(auth.signed) or auth.scope.service != "bedrock":
        return _denied("InvalidSignatureException", "host and x-amz-date must be signed, "
                       "for the bedrock service")
    canonical = canonical_request(method, raw_path, query, headers, auth.signed, payload)
    expected = signature(credentials.secret_access_key, auth.scope, stamp, canonical)
    if not hmac.compare_digest(expected, auth.signature):
        return _denied("InvalidSignatureException", "The request signature we calculated does "
                       "not match the signature you provided.")
    return None


def _forced_tool(body: JsonObject) -> str | None:
    config = body.get("toolConfig")
    choice = config.get("toolChoice") if isinstance(config, dict) else None
    if isinstance(choice, dict) and isinstance(choice.get("tool"), dict):
        name = choice["tool"].get("name")
        if isinstance(name, str):
            return name
    return marker_tool(body.get("messages"))


def _has_cache_point(body: JsonObject) -> bool:
    blocks = [*(body.get("system") or [])]
    for message in body.get("messages") or []:
        if isinstance(message, dict) and isinstance(message.get("content"), list):
            blocks.extend(message["content"])
    return any(isinstance(b, dict) and "cachePoint" in b for b in blocks)


def cached(cache: PromptCache, reply: Reply, body: JsonObject, model: str) -> CacheUsage | None:
    """What the simulated prompt cache read or wrote for a request with a `cachePoint` (the
    whole prompt is the cached prefix; below the minimum, nothing)."""
    if not _has_cache_point(body):
        return None
    text = text_of(body.get("system")) + "".join(
        text_of(m.get("content")) for m in body.get("messages") or () if isinstance(m, dict))
    read = cache.openai(text, model)
    if read is None:
        return None
    if read:
        return CacheUsage(reply.prompt_tokens, read=read)
    return CacheUsage(reply.prompt_tokens, write_5m=reply.prompt_tokens)


def _usage(reply: Reply) -> JsonObject:
    cache = reply.cache or CacheUsage(reply.prompt_tokens)
    fresh = cache.prompt_tokens - cache.read - cache.written
    return {"inputTokens": fresh, "outputTokens": reply.completion_tokens,
            "totalTokens": cache.prompt_tokens + reply.completion_tokens,
            "cacheReadInputTokens": cache.read, "cacheWriteInputTokens": cache.written}


def _stop_reason(reply: Reply) -> str:
    return "end_turn" if reply.tool_name is None else "tool_use"


def _event(name: str, obj: Any) -> bytes:
    return encode({":event-type": name, ":content-type": "application/json",
                   ":message-type": "event"}, dumps(obj))


class BedrockWire:
    """Bedrock Runtime `POST /model/{modelId}/converse` and `/converse-stream`."""

    name: Protocol = "bedrock"

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return False  # Bedrock requests are signed, not keyed: see `check_signature`

    def validate(self, body: JsonObject | None) -> Error | None:
        if body is None:
            return bad_request("Malformed input request, please reformat your input and retry.")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return bad_request("The model returned the following errors: messages: field "
                               "required")
        inference = body.get("inferenceConfig") or {}
        tokens = inference.get("maxTokens") if isinstance(inference, dict) else None
        if tokens is not None and (not isinstance(tokens, int) or tokens < 1):
            return bad_request("1 validation error detected: inferenceConfig.maxTokens must be "
                               "greater than or equal to 1")
        return None

    def reply(self, body: JsonObject, model: str, seq: int) -> Reply:
        messages = body.get("messages")
        reply = make_reply(model, default_answer(model, messages), _forced_tool(body),
                           prompt_tokens_for(messages, body.get("system")), seq)
        thinking = (body.get("additionalModelRequestFields") or {}).get("thinking") or {}
        if thinking.get("type") not in ("enabled", "adaptive"):
            return reply
        return replace(reply, thinking="thinking about: " + last_user_text(messages)[:60])

    def completion(self, reply: Reply) -> bytes:
        if reply.tool_name is None:
            block: JsonObject = {"text": reply.text}
        else:
            block = {"toolUse": {"toolUseId": f"tooluse_fake{reply.seq}",
                                 "name": reply.tool_name, "input": {}}}
        thought = [{"reasoningContent": {"reasoningText": {
            "text": reply.thinking, "signature": f"sig-fake{reply.seq}"}}}] if reply.thinking else []
        return dumps({"output": {"message": {"role": "assistant", "content": [*thought, block]}},
                      "stopReason": _stop_reason(reply), "usage": _usage(reply),
                      "metrics": {"latencyMs": 1}})

    def stream_frames(self, reply: Reply, body: JsonObject) -> list[bytes]:
        frames = [_event("messageStart", {"role": "assistant"})]
        if reply.thinking:
            frames += [_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {
                           "reasoningContent": d}}) for d in (
                               {"text": reply.thinking}, {"signature": f"sig-fake{reply.seq}"})]
            frames.append(_event("contentBlockStop", {"contentBlockIndex": 0}))
        first = 1 if reply.thinking else 0
        if reply.tool_name is not None:
            frames.append(_event("contentBlockStart", {"contentBlockIndex": first, "start": {
                "toolUse": {"toolUseId": f"tooluse_fake{reply.seq}", "name": reply.tool_name}}}))
            deltas: list[JsonObject] = [{"toolUse": {"input": TOOL_ARGUMENTS}}]
        else:
            deltas = [{"text": piece} for piece in split_answer(reply.text)]
        frames.extend(_event("contentBlockDelta", {"contentBlockIndex": first, "delta": d})
                      for d in deltas)
        frames += [_event("contentBlockStop", {"contentBlockIndex": first}),
                   _event("messageStop", {"stopReason": _stop_reason(reply)}),
                   _event("metadata", {"usage": _usage(reply), "metrics": {"latencyMs": 1}})]
        return frames

    def error(self, err: Error, request_id: str) -> tuple[int, bytes, dict[str, str]]:
        name = _exception(err)
        headers = {"x-amzn-requestid": request_id, "x-amzn-errortype": f"{name}:http://"
                   "internal.amazon.com/coral/com.amazon.bedrock/", **(err.headers or {})}
        return err.status, dumps({"message": err.message}), headers

    def stream_error(self, err: Error) -> bytes:
        name = _exception(err)
        return encode({":exception-type": name[0].lower() + name[1:],
                       ":content-type": "application/json", ":message-type": "exception"},
                      dumps({"message": err.message}))

    def models(self, models: list[str]) -> bytes:
        return dumps({"modelSummaries": [{"modelId": m} for m in models]})

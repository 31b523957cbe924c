"""Scriptable behaviours of the fake upstream: what one request to one model gets back.

Each behaviour is a small frozen dataclass. `FakeUpstream.script()` queues them per model;
`FakeUpstream.set_default()` makes one persistent. Error constructors return the body shape
and status each real provider uses (OpenAI and Anthropic differ; see `Error.anthropic`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Protocol = Literal["openai", "anthropic"]


@dataclass(frozen=True)
class Ok:
    """Answer normally; `text` replaces the echo answer, `tool_call` forces a call to that tool.

    `delay_s` is latency before the response (before the headers, for streams too).
    `usage=False` answers like an upstream that reports no token usage (OpenAI protocol: no
    `usage` in the body, no usage chunk in a stream even when `stream_options.include_usage`).
    """

    text: str | None = None
    delay_s: float = 0.0
    tool_call: str | None = None
    usage: bool = True


@dataclass(frozen=True)
class Error:
    """Answer with an HTTP error in the provider's real body shape.

    OpenAI body: {"error": {"message", "type", "param", "code"}}.
    Anthropic body: {"type": "error", "error": {"type", "message"}, "request_id"}.
    `type=None` picks the provider's usual type for `status`. `anthropic`, when set, replaces
    this error for requests on the Anthropic protocol (the providers differ in status/type).
    """

    status: int
    message: str = "fake upstream error"
    type: str | None = None
    code: str | None = None
    headers: Mapping[str, str] | None = None
    delay_s: float = 0.0
    param: str | None = None
    anthropic: Error | None = None

    def for_protocol(self, protocol: Protocol) -> Error:
        """The error to send on `protocol`."""
        if protocol == "anthropic" and self.anthropic is not None:
            return self.anthropic
        return self


@dataclass(frozen=True)
class Hang:
    """Never answer; the connection is dropped when the client leaves or the server stops.

    With `after_chunks=N` on a streaming request, send the headers and N SSE events first,
    then stall (an idle stream). Non-streaming requests always hang before any byte.
    """

    after_chunks: int | None = None


@dataclass(frozen=True)
class CutStream:
    """Streaming: send `after_chunks` SSE events, then close the socket abruptly (no [DONE] /
    message_stop, no chunked terminator). Non-streaming: close the socket with no response.

    A chunk is one SSE event as the real API would send it (OpenAI: the role chunk counts;
    Anthropic: message_start, content_block_start, ping... count). At most every event but
    the terminal one is sent.
    """

    after_chunks: int = 2


@dataclass(frozen=True)
class SlowStream:
    """Streaming: headers at once, then sleep `chunk_delay_s` before every SSE event
    (`first_chunk_delay_s` before the first, when given). Non-streaming: answer after
    `chunk_delay_s`."""

    chunk_delay_s: float
    first_chunk_delay_s: float | None = None


@dataclass(frozen=True)
class ErrorMidStream:
    """Streaming: send `after_chunks` SSE events, then an error event, then end the response.

    Anthropic: `event: error` + {"type":"error","error":{...}}; OpenAI: `data: {"error": {...}}`.
    `error` defaults to `overloaded()`. Non-streaming: answer with `error` as an HTTP error.
    """

    after_chunks: int = 2
    error: Error | None = None


Behaviour = Ok | Error | Hang | CutStream | SlowStream | ErrorMidStream


def _retry_after_value(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


def rate_limited(retry_after_s: float = 1) -> Error:
    """429 with a Retry-After header (OpenAI code rate_limit_exceeded; Anthropic rate_limit_error)."""
    headers = {"retry-after": _retry_after_value(retry_after_s)}
    if not float(retry_after_s).is_integer():
        headers["retry-after-ms"] = str(math.ceil(retry_after_s * 1000))
    return Error(
        429,
        "Rate limit reached for requests. Please try again later.",
        type="rate_limit_error",
        code="rate_limit_exceeded",
        headers=headers,
        anthropic=Error(
            429,
            "Number of requests has exceeded your per-minute rate limit.",
            type="rate_limit_error",
            headers=headers,
        ),
    )


def server_error(status: int = 500) -> Error:
    """A 5xx (OpenAI server_error; Anthropic api_error)."""
    return Error(
        status,
        "The server had an error while processing your request. Sorry about that!",
        type="server_error",
        anthropic=Error(status, "Internal server error", type="api_error"),
    )


def overloaded() -> Error:
    """Anthropic 529 overloaded_error; OpenAI 503 (the engine is overloaded)."""
    return Error(
        503,
        "The engine is currently overloaded, please try again later.",
        type="server_error",
        anthropic=Error(529, "Overloaded", type="overloaded_error"),
    )


def context_length_exceeded(tokens: int = 250_000, limit: int = 200_000) -> Error:
    """400: OpenAI code context_length_exceeded; Anthropic 'prompt is too long: ...'."""
    return Error(
        400,
        f"This model's maximum context length is {limit} tokens. However, your messages "
        f"resulted in {tokens} tokens. Please reduce the length of the messages.",
        type="invalid_request_error",
        code="context_length_exceeded",
        param="messages",
        anthropic=Error(
            400,
            f"prompt is too long: {tokens} tokens > {limit} maximum",
            type="invalid_request_error",
        ),
    )


def content_policy(code: str = "content_policy_violation") -> Error:
    """400 refusal on policy grounds (OpenAI code `code`, e.g. content_filter for Azure)."""
    return Error(
        400,
        "Your request was rejected as a result of our safety system.",
        type="invalid_request_error",
        code=code,
        anthropic=Error(
            400,
            "Output blocked by content filtering policy",
            type="invalid_request_error",
        ),
    )


def unauthorized() -> Error:
    """401: OpenAI invalid_api_key; Anthropic authentication_error."""
    return Error(
        401,
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        type="invalid_request_error",
        code="invalid_api_key",
        anthropic=Error(401, "invalid x-api-key", type="authentication_error"),
    )


def out_of_credits(status: int | None = None) -> Error:
    """No money left. Real behaviour by default: OpenAI 429 insufficient_quota, Anthropic 402
    billing_error. `status=402` gives a plain 402 on both protocols."""
    openai_status = 429 if status is None else status
    anthropic_status = 402 if status is None else status
    return Error(
        openai_status,
        "You exceeded your current quota, please check your plan and billing details.",
        type="insufficient_quota",
        code="insufficient_quota",
        anthropic=Error(
            anthropic_status,
            "Your credit balance is too low to access the Anthropic API.",
            type="billing_error",
        ),
    )


def model_not_found(model: str = "unknown-model") -> Error:
    """404 for an unknown model (OpenAI code model_not_found; Anthropic not_found_error)."""
    return Error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        type="invalid_request_error",
        code="model_not_found",
        param="model",
        anthropic=Error(404, f"model: {model}", type="not_found_error"),
    )


def bad_request(message: str = "Invalid request", *, param: str | None = None) -> Error:
    """400 invalid_request_error on both protocols."""
    return Error(400, message, type="invalid_request_error", param=param)

"""Scriptable behaviours of the fake upstream: what one request to one model gets back.

Each behaviour is a small frozen dataclass. `FakeUpstream.script()` queues them per model;
`FakeUpstream.set_default()` makes one persistent. Error constructors return the body shape
and status each real provider uses (OpenAI and Anthropic differ; see `Error.anthropic`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Protocol = Literal["openai", "anthropic", "bedrock", "azure", "gemini", "vertex"]


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


@dataclass(frozen=True)
class Reset:
    """Drop the connection with a TCP reset (RST) before any byte of the response, streaming
    or not: what a crashed or restarted upstream (or a middlebox) does."""


@dataclass(frozen=True)
class Chaos:
    """Per request, one fault drawn at random, else a normal answer: the chaos mode.

    Each field is the probability of its fault on one request (their sum at most 1); the
    upstream draws from its own seeded RNG (`FakeUpstream(seed=...)`), so a run is repeatable
    for a given order of requests. The faults, on both protocols, streaming or not:
    `rate_limit`: 429 with `Retry-After: retry_after_s`; `server_error`: 500; `unavailable`:
    503; `reset`: TCP reset before any byte; `hang`: no byte until the client gives up;
    `slow_stream`: every event `slow_chunk_delay_s` apart (a non-streaming answer that late);
    `cut_stream`: `cut_after_chunks` events, then the socket closes (no `[DONE]` /
    `message_stop`; a non-streaming request gets its socket closed with no response).
    """

    rate_limit: float = 0.0
    server_error: float = 0.0
    unavailable: float = 0.0
    reset: float = 0.0
    hang: float = 0.0
    slow_stream: float = 0.0
    cut_stream: float = 0.0
    retry_after_s: float = 1.0
    slow_chunk_delay_s: float = 0.05
    cut_after_chunks: int = 2

    def __post_init__(self) -> None:
        odds = self.odds()
        if any(not 0.0 <= p <= 1.0 for p in odds.values()) or sum(odds.values()) > 1.0 + 1e-9:
            raise ValueError(f"chaos probabilities must lie in [0, 1] and sum to at most 1: {odds}")

    @classmethod
    def uniform(cls, total: float, **options: float) -> Chaos:
        """`total` spread evenly over the seven faults (e.g. 0.3: each ≈ 4.3 %); `options` set
        `retry_after_s`, `slow_chunk_delay_s`, `cut_after_chunks`."""
        share = total / len(FAULTS)
        return cls(**{name: share for name in FAULTS}, **options)  # type: ignore[arg-type]

    def odds(self) -> dict[str, float]:
        """Each fault's probability, by name."""
        return {name: float(getattr(self, name)) for name in FAULTS}

    def fault(self, draw: float) -> str | None:
        """The fault a uniform `draw` in [0, 1) picks (None: answer normally)."""
        edge = 0.0
        for name, chance in self.odds().items():
            edge += chance
            if draw < edge:
                return name
        return None

    def behaviour(self, fault: str | None) -> Behaviour:
        """The behaviour that plays `fault` (None: `Ok()`)."""
        if fault is None:
            return Ok()
        makers: dict[str, Callable[[], Behaviour]] = {
            "rate_limit": lambda: rate_limited(self.retry_after_s),
            "server_error": lambda: server_error(500),
            "unavailable": lambda: server_error(503),
            "reset": Reset,
            "hang": Hang,
            "slow_stream": lambda: SlowStream(self.slow_chunk_delay_s),
            "cut_stream": lambda: CutStream(self.cut_after_chunks),
        }
        return makers[fault]()


#: The faults `Chaos` draws from, in the order their probabilities are laid out on [0, 1).
FAULTS: tuple[str, ...] = ("rate_limit", "server_error", "unavailable", "reset", "hang",
                           "slow_stream", "cut_stream")

Behaviour = Ok | Error | Hang | CutStream | SlowStream | ErrorMidStream | Reset
#: What a script or a default may hold: a behaviour, or chaos (a behaviour drawn per request).
Scripted = Behaviour | Chaos


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

"""Errors of the Anthropic translation, and classification of Anthropic API errors.

`WireError`: an OpenAI request Anthropic cannot honour (the gateway answers 400 naming `param`).
`StreamError`: an `error` event in an Anthropic stream, or a stream that breaks the protocol.
`classify_anthropic_error`: an Anthropic error response → the gateway's provider-neutral category.

Anthropic documents these error types (https://docs.anthropic.com/en/api/errors):
400 invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error,
404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error,
504 timeout_error, 529 overloaded_error; the SDK also knows 409 conflict_error and the
memory tool's memory_precondition_failed_error / memory_path_conflict_error.

The type decides first. A few conditions only show in the message of an invalid_request_error
(Anthropic warns that wording may change, so these are best-effort refinements):
the prompt exceeding the context window, a credit balance too low, and output blocked by the
content filter. The HTTP status is the fallback when the body has no known type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal


class WireError(ValueError):
    """The OpenAI request cannot be expressed for Anthropic; `param` names the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


ErrorCategory = Literal[
    "rate_limit",
    "overloaded",
    "server",
    "timeout",
    "context_window",
    "content_policy",
    "auth",
    "permission",
    "not_found",
    "bad_request",
    "payment",
]

#: Every documented Anthropic error type and its category.
ERROR_TYPE_CATEGORIES: Final[Mapping[str, ErrorCategory]] = {
    "invalid_request_error": "bad_request",
    "authentication_error": "auth",
    "billing_error": "payment",
    "permission_error": "permission",
    "not_found_error": "not_found",
    # The HTTP body exceeded Anthropic's byte limit: not a token (context window) problem.
    "request_too_large": "bad_request",
    "rate_limit_error": "rate_limit",
    "api_error": "server",
    "timeout_error": "timeout",
    "overloaded_error": "overloaded",
    "conflict_error": "bad_request",
    "memory_precondition_failed_error": "bad_request",
    "memory_path_conflict_error": "bad_request",
}

_STATUS_CATEGORIES: Final[Mapping[int, ErrorCategory]] = {
    400: "bad_request",
    401: "auth",
    402: "payment",
    403: "permission",
    404: "not_found",
    409: "bad_request",
    413: "bad_request",
    422: "bad_request",
    429: "rate_limit",
    503: "overloaded",
    504: "timeout",
    529: "overloaded",
}

# (substring of the lower-cased message, category); checked in order.
_MESSAGE_HINTS: Final[tuple[tuple[str, ErrorCategory], ...]] = (
    ("prompt is too long", "context_window"),
    ("exceed context limit", "context_window"),
    ("context window", "context_window"),
    ("credit balance is too low", "payment"),
    ("billing", "payment"),
    ("content filtering policy", "content_policy"),
    ("content policy", "content_policy"),
)


def classify_anthropic_error(status: int, body: Mapping[str, Any] | None) -> ErrorCategory:
    """The category of an Anthropic error response with HTTP `status` and JSON `body`.

    `body` is the parsed error response (`{"type": "error", "error": {"type", "message"}}`),
    the inner error object, or None when the body was not JSON. For an `error` event inside
    a stream, pass the HTTP status of the stream (200).
    """
    error_type, message = _error_fields(body)
    by_type = ERROR_TYPE_CATEGORIES.get(error_type)
    if by_type in (None, "bad_request", "permission"):
        lowered = message.lower()
        for needle, category in _MESSAGE_HINTS:
            if needle in lowered:
                return category
    if by_type is not None:
        return by_type
    if status in _STATUS_CATEGORIES:
        return _STATUS_CATEGORIES[status]
    return "bad_request" if 400 <= status < 500 else "server"


def _error_fields(body: Mapping[str, Any] | None) -> tuple[str, str]:
    """(error type, message) from an error response or a bare error object."""
    if not isinstance(body, Mapping):
        return "", ""
    error = body.get("error")
    inner: Mapping[str, Any] = error if isinstance(error, Mapping) else body
    error_type = inner.get("type")
    message = inner.get("message")
    return (
        error_type if isinstance(error_type, str) else "",
        message if isinstance(message, str) else "",
    )


class StreamError(Exception):
    """An Anthropic stream reported an error (`event: error`) or broke the event protocol."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message

    @property
    def category(self) -> ErrorCategory:
        """The gateway error category; the HTTP status of a stream is 200."""
        return classify_anthropic_error(200, {"type": self.error_type, "message": self.message})

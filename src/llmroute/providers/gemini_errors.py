"""Classify Gemini API errors (google.rpc.Status bodies) into the gateway's upstream kinds.

Body: `{"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [...]}}`.
The `status` decides, refined by the message where one status covers several cases: an invalid
API key is a 400 INVALID_ARGUMENT (reason API_KEY_INVALID), a prompt over the model's input limit
a 400 whose message says so; a missing key a 403 ("unregistered callers"). RESOURCE_EXHAUSTED is
a rate limit (Gemini words its per-minute limits as "quota"); the wait is `retry-after` or the
`RetryInfo.retryDelay` detail ("37s").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..errors import UpstreamError
from .base import parse_retry_after

_BY_STATUS: Final = {
    "INVALID_ARGUMENT": "bad_request", "FAILED_PRECONDITION": "bad_request",
    "OUT_OF_RANGE": "bad_request", "UNAUTHENTICATED": "auth", "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found", "RESOURCE_EXHAUSTED": "rate_limit", "INTERNAL": "server",
    "UNKNOWN": "server", "UNAVAILABLE": "overloaded", "DEADLINE_EXCEEDED": "timeout",
    "CANCELLED": "connection"}
_BY_CODE: Final = {400: "bad_request", 401: "auth", 403: "permission", 404: "not_found",
                   429: "rate_limit", 503: "overloaded", 504: "timeout"}
_AUTH_HINTS: Final = ("api key not valid", "api_key_invalid", "unregistered callers",
                      "api key expired")
_CONTEXT_HINTS: Final = ("exceeds the maximum number of tokens", "input token count",
                         "context window", "too long")
_POLICY_HINTS: Final = ("safety", "prohibited content", "blocked")


def error_fields(body: Any) -> tuple[str, str, Mapping[str, Any]]:
    """(status name, message, the error object) of a google.rpc error body."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(body, list) and body and isinstance(body[0], Mapping):  # some proxies: [{...}]
        error = body[0].get("error")
    if not isinstance(error, Mapping):
        return "", "", {}
    return str(error.get("status") or ""), str(error.get("message") or "")[:500], error


def classify(http_status: int, status: str, message: str) -> str:
    """The upstream kind of a Gemini error."""
    text = message.lower()
    if any(h in text for h in _AUTH_HINTS):
        return "auth"
    kind = _BY_STATUS.get(status) or _BY_CODE.get(http_status)
    if kind is None:
        kind = "server" if http_status >= 500 else "bad_request"
    if kind == "bad_request" and any(h in text for h in _CONTEXT_HINTS):
        return "context_window"
    if kind == "bad_request" and any(h in text for h in _POLICY_HINTS):
        return "content_policy"
    return kind


def retry_delay(error: Mapping[str, Any], headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: the `retry-after` header, else a RetryInfo detail's `retryDelay`."""
    waited = parse_retry_after(headers)
    if waited is not None:
        return waited
    for detail in error.get("details") or ():
        delay = detail.get("retryDelay") if isinstance(detail, Mapping) else None
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def from_error(http_status: int, body: Any, headers: Mapping[str, str], provider: str,
               model: str) -> UpstreamError:
    """The UpstreamError for a Gemini error answer (or an error object inside a stream)."""
    status, message, error = error_fields(body)
    kind = classify(http_status, status, message)
    retry_after = retry_delay(error, headers) if kind in ("rate_limit", "overloaded") else None
    text = f"{provider} returned {http_status}" + (f" {status}" if status else "")
    return UpstreamError(kind, text + (f": {message}" if message else ""), status=http_status,
                         retry_after=retry_after, provider=provider, model=model,
                         code=status or None)

"""Map an OpenAI-compatible upstream's HTTP error to one of our UpstreamError kinds.

Covers OpenAI itself and the servers that copy its error shape (OpenRouter, Azure, vLLM, Ollama,
llama.cpp, Together, Groq): the status decides, refined by the error `code`/`type` and message for the
cases that share a status (429 quota vs rate limit; 400 context window / content policy / bad request).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import UpstreamError
from .base import error_body, parse_retry_after

_CONTEXT_HINTS = ("context_length_exceeded", "maximum context length", "context length",
                  "context window", "too many tokens", "prompt is too long", "string_above_max_length")
_POLICY_HINTS = ("content_policy_violation", "content_filter", "content management policy",
                 "safety system", "flagged")
_QUOTA_HINTS = ("insufficient_quota", "exceeded your current quota", "billing", "credit")
_BY_STATUS = {401: "auth", 402: "payment", 403: "permission", 404: "not_found", 408: "timeout",
              409: "server", 425: "server", 503: "overloaded", 529: "overloaded", 504: "timeout"}


def classify(status: int, code: str, message: str) -> str:
    """The kind of an upstream HTTP error, from its status, code/type and message."""
    text = f"{code} {message}".lower()
    if status == 429:
        return "payment" if any(h in text for h in _QUOTA_HINTS) else "rate_limit"
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status in (400, 413, 422):
        if any(h in text for h in _CONTEXT_HINTS):
            return "context_window"
        if any(h in text for h in _POLICY_HINTS):
            return "content_policy"
        return "bad_request"
    if status >= 500:
        return "server"
    return "bad_request"


def from_response(status: int, content: bytes, headers: Mapping[str, str], provider: str,
                  model: str) -> UpstreamError:
    """An UpstreamError for an HTTP error answer (status ≥ 400)."""
    _, message, code = error_body(content)
    kind = classify(status, code, message)
    text = f"{provider} returned {status}" + (f": {message}" if message else "")
    retry_after = parse_retry_after(headers) if kind in ("rate_limit", "overloaded") else None
    return UpstreamError(kind, text, status=status, retry_after=retry_after, provider=provider,
                         model=model, code=code or None)

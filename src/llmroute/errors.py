"""Error types of llmroute, mirroring OpenAI's error shapes so the server can map them in one place.

    LLMRouteError                      (status 500, type "api_error")
    ├── ConfigError                    invalid configuration; carries every problem found
    ├── InvalidRequestError            (400, "invalid_request_error") bad input from the caller
    │   ├── UnknownModelError          (404, "invalid_request_error", code "model_not_found")
    │   ├── NotFoundError              (404, code "not_found") no such route or record
    │   ├── RequestTooLargeError       (413, code "request_too_large")
    │   └── NoEligibleModelError       (400, code "no_eligible_model") nothing satisfies the constraints
    ├── AuthenticationError            (401, "authentication_error")
    ├── PermissionDeniedError          (403, "permission_error")
    ├── LimitExceededError             (429, "rate_limit_error", code "budget_exceeded" or
    │                                  "rate_limited") a spend or rate limit; says when it frees up
    ├── ClientClosedError              (499) the client went away before the answer ended
    ├── UnavailableError               (503) a part the request needs is down (ledger, shared state)
    ├── UpstreamError                  one failed upstream attempt, classified by `kind` at the
    │                                  provider's edge; status/type are what the client sees if it
    │                                  is the final error (e.g. rate_limit -> 429, timeout -> 504)
    └── AllAttemptsFailedError         (502, or 503 when everything was busy) lists every attempt
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class LLMRouteError(Exception):
    """Base class: every error llmroute raises on purpose."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None
    #: Seconds after which the same request may succeed (sent as `Retry-After`), when known.
    retry_after: float | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if retry_after is not None:
            self.retry_after = retry_after

    def to_dict(self) -> dict[str, object]:
        """The OpenAI-shaped error body: {"error": {"message", "type", "param", "code"}}."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file: where it is, what is wrong, and how to fix it."""

    path: str
    message: str
    hint: str = ""
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        text = f"{self.path or '<root>'}: {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class ConfigError(LLMRouteError):
    """The configuration is invalid. `problems` lists every error found, not only the first."""

    def __init__(self, problems: list[ConfigProblem], source: str = "config"):
        self.problems = problems
        self.source = source
        errors = [p for p in problems if p.severity == "error"]
        lines = "\n".join(f"  - {p}" for p in errors)
        super().__init__(f"{source} has {len(errors)} error(s):\n{lines}")


class InvalidRequestError(LLMRouteError):
    """The request is malformed or asks for something impossible."""

    status = 400
    type = "invalid_request_error"


class UnknownModelError(InvalidRequestError):
    """The request names a model or policy the gateway does not know."""

    status = 404
    code = "model_not_found"


class NotFoundError(InvalidRequestError):
    """No such route, or no such record (a request id the caller may not see reads the same)."""

    status = 404
    code = "not_found"


class RequestTooLargeError(InvalidRequestError):
    """The request body is over the server's limit."""

    status = 413
    code = "request_too_large"


class NoEligibleModelError(InvalidRequestError):
    """Every candidate model was excluded by the request's constraints."""

    code = "no_eligible_model"

    def __init__(self, excluded: Mapping[str, str], *, param: str | None = None):
        self.excluded = dict(excluded)
        why = "; ".join(f"{model}: {reason}" for model, reason in self.excluded.items())
        super().__init__(
            f"No model can serve this request. Excluded: {why or 'no candidates configured'}",
            param=param,
        )


class AuthenticationError(LLMRouteError):
    """Missing or wrong gateway key."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(LLMRouteError):
    """The key is valid but may not use this model or policy."""

    status = 403
    type = "permission_error"


class LimitExceededError(LLMRouteError):
    """A hard spend limit (`budget_exceeded`) or rate limit (`rate_limited`) refused the request;
    `retry_after` is when its window frees up, `limit` names the limit that refused it."""

    status = 429
    type = "rate_limit_error"

    def __init__(self, message: str, *, code: str, limit: str, retry_after: float | None):
        super().__init__(message, code=code, retry_after=retry_after)
        self.limit = limit


class ClientClosedError(LLMRouteError):
    """The client stopped reading (or disconnected) before the answer ended."""

    status = 499
    code = "client_closed_request"


class UnavailableError(LLMRouteError):
    """Something the request needs (the ledger, the shared state) is unavailable right now."""

    status = 503
    code = "unavailable"


#: What went wrong upstream, as one of our kinds. Every provider adapter maps every failure to one.
UPSTREAM_KINDS = (
    "rate_limit",      # 429 (not quota): retry after Retry-After, then fall back
    "overloaded",      # 503/529 overloaded: retry with backoff, fall back
    "server",          # other 5xx: retry with backoff, fall back
    "timeout",         # connect / first byte / total deadline passed
    "connection",      # refused, reset, DNS, a stream cut before it finished
    "payment",         # 402, insufficient_quota, out of credits: cool down, fall back
    "auth",            # 401 from the upstream: our key for it is wrong; cool down, fall back
    "permission",      # 403 from the upstream
    "not_found",       # 404: the upstream does not serve this model
    "context_window",  # the prompt does not fit: fall back to a larger window, no retry
    "content_policy",  # refused by a safety system: its own chain if configured, no retry
    "bad_request",     # 400 caused by the request itself: neither retried nor fallen back
    "unsupported",     # this model's API cannot take the request as asked (e.g. n>1 on Anthropic):
                       # the next model may; no retry, no cooldown; a 400 if no model can
)
_RETRYABLE = frozenset({"rate_limit", "overloaded", "server", "timeout", "connection"})
_NO_FALLBACK = frozenset({"bad_request"})
_COOLDOWN = frozenset({"rate_limit", "overloaded", "server", "timeout", "connection", "payment",
                       "auth", "permission", "not_found"})
#: The HTTP status and OpenAI error type the gateway answers with when a kind is the final error.
_CLIENT_FACING = {
    "rate_limit": (429, "rate_limit_error"),
    "overloaded": (503, "api_error"),
    "server": (502, "api_error"),
    "timeout": (504, "timeout"),
    "connection": (502, "api_error"),
    "payment": (502, "api_error"),
    "auth": (502, "api_error"),
    "permission": (502, "api_error"),
    "not_found": (502, "api_error"),
    "context_window": (400, "invalid_request_error"),
    "content_policy": (400, "invalid_request_error"),
    "bad_request": (400, "invalid_request_error"),
    "unsupported": (400, "invalid_request_error"),
}


class UpstreamError(LLMRouteError):
    """A failure of one upstream attempt, already classified at the provider's edge.

    `message` must never contain secrets (adapters pass the upstream's own error text, which does
    not echo keys, and never our request headers).
    """

    def __init__(self, kind: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None, provider: str = "", model: str = "",
                 code: str | None = None):
        if kind not in UPSTREAM_KINDS:
            raise ValueError(f"unknown upstream error kind {kind!r}")
        client_status, self.type = _CLIENT_FACING[kind]
        super().__init__(message, code=code or kind, status=client_status, retry_after=retry_after)
        self.kind = kind
        self.upstream_status = status
        self.provider = provider
        self.model = model

    @property
    def retryable(self) -> bool:
        """Worth trying the same deployment again (after backoff)."""
        return self.kind in _RETRYABLE

    @property
    def falls_back(self) -> bool:
        """Worth trying the next model of the chain."""
        return self.kind not in _NO_FALLBACK

    @property
    def trips_cooldown(self) -> bool:
        """Counts towards taking the deployment out of rotation for a while."""
        return self.kind in _COOLDOWN


class AllAttemptsFailedError(LLMRouteError):
    """Every model of the chain failed; `attempts` lists (model, error) for each try."""

    def __init__(self, attempts: list[tuple[str, str]], *, status: int = 502,
                 code: str = "all_upstreams_failed", retry_after: float | None = None):
        self.attempts = attempts
        listing = "; ".join(f"{model}: {error}" for model, error in attempts)
        # retry_after: seconds until the soonest model of the chain is expected to take requests
        # again (only when every model was busy or cooling down and that is known).
        super().__init__(f"All {len(attempts)} attempt(s) failed: {listing}", code=code,
                         status=status, retry_after=retry_after)

"""Error types of llmroute, mirroring OpenAI's error shapes so the server can map them in one place.

    LLMRouteError                      (status 500, type "api_error")
    ├── ConfigError                    invalid configuration; carries every problem found
    ├── InvalidRequestError            (400, "invalid_request_error") bad input from the caller
    │   ├── UnknownModelError          (404, "invalid_request_error", code "model_not_found")
    │   └── NoEligibleModelError       (400, code "no_eligible_model") nothing satisfies the constraints
    ├── AuthenticationError            (401, "authentication_error")
    └── PermissionDeniedError          (403, "permission_error")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class LLMRouteError(Exception):
    """Base class: every error llmroute raises on purpose."""

    status: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

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

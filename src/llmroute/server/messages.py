"""The Anthropic Messages API endpoints: `POST /v1/messages` (streaming or not) and
`POST /v1/messages/count_tokens`. The request is translated to the core's ChatRequest
(`messages_request`) and goes through the same `Gateway.complete` / `Gateway.stream` as a chat
completion; the answer is translated back (`messages_reply`). Every failure of these routes is
answered in Anthropic's error shape, `{"type": "error", "error": {"type", "message"}}`, with our
status and headers (`retry-after` included); a failure after the stream began is an `error`
event."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..chat import parse_json
from ..errors import LLMRouteError
from ..messages_request import messages_request
from . import app as edge

if TYPE_CHECKING:
    from .app import Endpoints

log = logging.getLogger("llmroute.server")
Handler = Callable[[Request], Awaitable[Response]]

#: Our status -> Anthropic's error type (anything else over 500: api_error).
ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 503: "overloaded_error", 504: "timeout_error",
    529: "overloaded_error"}


def error_body(exc: LLMRouteError) -> dict[str, object]:
    """Anthropic's error body for one of our errors."""
    kind = ERROR_TYPES.get(exc.status, "api_error" if exc.status >= 500 else
                           "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": exc.message}}


def error_response(exc: LLMRouteError, request_id: str | None) -> Response:
    """Anthropic's error body with the headers the OpenAI-shaped answer would carry."""
    headers = edge.error_headers(exc, request_id)
    return edge.JSONResponse(error_body(exc), status_code=exc.status, headers=headers)


class MessagesAPI:
    """The endpoints over one app's gateway, keys and input limits."""

    def __init__(self, endpoints: Endpoints):
        self.e = endpoints

    def anthropic_errors(self, handler: Handler) -> Handler:
        """`handler` with our errors answered in Anthropic's shape."""
        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except LLMRouteError as exc:
                return error_response(exc, getattr(request.state, "request_id", None))
        return guarded

    async def count_tokens(self, request: Request) -> Response:
        """POST /v1/messages/count_tokens: the prompt's tokens as the gateway counts them (the
        model's tokenizer where the `tokens` extra has it, else ≈4 characters per token)."""
        e = self.e
        e.keys.authenticate(request.headers)
        data = parse_json(await edge.read_body(request, e.limit))
        req = messages_request({"max_tokens": 1, **data}, max_messages=e.max_messages)
        count = e.gw.tokens.messages(req.body["messages"], req.model)
        return edge.JSONResponse({"input_tokens": count})

    def routes(self) -> list[Route]:
        """The routes, for the app's table (`POST /v1/messages` is hot: `hot.py`)."""
        return [Route("/v1/messages/count_tokens", self.anthropic_errors(self.count_tokens),
                      methods=["POST"])]

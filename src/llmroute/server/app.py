"""The ASGI app: `create_app(settings)` builds routes, auth, SSE streaming and the error handler that
turns every failure into an OpenAI-shaped JSON error. No globals: build as many apps as you like."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..errors import InvalidRequestError, LLMRouteError, UpstreamError
from ..gateway import Gateway, Outcome, new_request_id
from ..ledger.entry import LedgerEntry
from ..ledger.service import LedgerService
from ..resilience import attempt_log
from ..settings import Settings
from . import dashboard
from .auth import KeyRing
from .feedback import not_found, parse_feedback
from .metrics import CONTENT_TYPE, GatewayMetrics
from .wire import chat_request, parse_json

log = logging.getLogger("llmroute.server")
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class JSONResponse(Response):
    """JSON via orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: LLMRouteError, request_id: str | None = None) -> JSONResponse:
    """The OpenAI-shaped error body for one of our errors, with its status and useful headers."""
    body = exc.to_dict()
    error: dict[str, object] = body["error"]  # type: ignore[assignment]
    headers = {"x-llmroute-request-id": request_id} if request_id else {}
    log_ = attempt_log(exc)
    if log_:
        error["attempts"] = [
            {"model": a.model, "error": a.error_kind, "message": a.message, "skipped": a.skipped}
            for a in log_ if not a.ok]
        headers["x-llmroute-attempts"] = str(sum(not a.skipped for a in log_))
    if isinstance(exc, UpstreamError) and exc.retry_after is not None:
        headers["retry-after"] = str(max(1, round(exc.retry_after)))
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    too_large = InvalidRequestError(f"Request body too large: the limit is {limit} bytes.",
                                    code="request_too_large")
    too_large.status = 413
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def sse(outcome: Outcome, chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """Chunks as server-sent events, each sent as it arrives; a failure after the first byte ends
    with an SSE error event (never a clean-looking truncated answer)."""
    try:
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    except LLMRouteError as exc:
        log.warning("stream %s failed mid-way: %s", outcome.request_id, exc.message)
        yield b"data: " + orjson.dumps(exc.to_dict()) + b"\n\n"
        return
    except Exception:
        log.exception("stream %s failed mid-way", outcome.request_id)
        error = LLMRouteError("The upstream stream failed.").to_dict()
        yield b"data: " + orjson.dumps(error) + b"\n\n"
        return
    yield b"data: [DONE]\n\n"


def create_app(settings: Settings, *, gateway: Gateway | None = None,
               environ: Mapping[str, str] | None = None) -> Starlette:
    """The gateway's ASGI application."""
    env = os.environ if environ is None else environ
    keys = KeyRing(settings.keys, env)
    gw = gateway or Gateway(settings, environ=env)
    limit = settings.server.max_body_bytes
    ledger = LedgerService(settings.ledger) if settings.ledger.enabled else None
    metrics = GatewayMetrics(ledger.stats if ledger else lambda: None)
    gw.recorder = _fan_out(metrics, ledger)

    async def chat_completions(request: Request) -> Response:
        request_id = new_request_id()
        try:
            principal = keys.authenticate(request.headers)
            req = chat_request(parse_json(await read_body(request, limit)))
            if req.stream:
                outcome, chunks = await gw.stream(req, principal, request_id)
                return StreamingResponse(sse(outcome, chunks), media_type="text/event-stream",
                                         headers={**SSE_HEADERS, **outcome.headers()})
            response, outcome = await gw.complete(req, principal, request_id)
            return JSONResponse(response, headers=outcome.headers())
        except LLMRouteError as exc:
            return error_response(exc, request_id)

    async def list_models(request: Request) -> Response:
        try:
            principal = keys.authenticate(request.headers)
        except LLMRouteError as exc:
            return error_response(exc)
        policies = [p for p in gw.engine.policies
                    if principal.policies is None or p in principal.policies]
        ids = [("auto", "llmroute"), *((f"auto/{p}", "llmroute") for p in policies)]
        ids += [(spec.name, spec.provider) for spec in gw.catalog if spec.name in gw.deployments]
        data = [{"id": i, "object": "model", "created": 0, "owned_by": o} for i, o in ids]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def feedback(request: Request) -> Response:
        try:
            keys.authenticate(request.headers)
            if ledger is None:
                raise LLMRouteError("The ledger is disabled: feedback cannot be stored.")
            given = parse_feedback(parse_json(await read_body(request, limit)))
            found = await ledger.feedback(given.request_id, rating=given.rating,
                                          success=given.success, comment=given.comment)
            if not found:
                raise not_found(given.request_id)
        except LLMRouteError as exc:
            return error_response(exc)
        return JSONResponse({"request_id": given.request_id, "status": "recorded"})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    async def ready(request: Request) -> Response:
        report = gw.readiness()
        return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if keys.open:
            log.warning("no gateway keys configured: every request is accepted")
        if ledger is not None:
            await ledger.start()
        yield
        if ledger is not None:
            stats = await ledger.aclose()
            log.info("ledger closed: %s", stats)
        await gw.aclose()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/dashboard", dashboard.page(keys, ledger), methods=["GET"]),
        Route("/dashboard/data", dashboard.data(keys, ledger, gw.engine.baseline_model),
              methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        HTTPException: _http_error, Exception: _internal_error})
    app.state.gateway = gw
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found" if exc.status_code == 404 else "invalid_request_error"
    err = LLMRouteError(f"{request.method} {request.url.path}: {exc.detail}")
    err.status, err.type, err.code = exc.status_code, "invalid_request_error", kind
    response = error_response(err)
    response.headers.update(exc.headers or {})  # a 405 must say what is allowed (`Allow`)
    return response


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(LLMRouteError("The gateway hit an internal error; it has been logged."))




def _fan_out(metrics: GatewayMetrics, ledger: LedgerService | None
             ) -> Callable[[LedgerEntry], None]:
    """One recorder feeding metrics and the ledger from the same entry."""
    if ledger is None:
        return metrics.observe

    def record(entry: LedgerEntry) -> None:
        metrics.observe(entry)
        ledger.record(entry)

    return record


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` and multi-worker serving: config from $LLMROUTE_CONFIG."""
    from ..config import load

    return create_app(load())

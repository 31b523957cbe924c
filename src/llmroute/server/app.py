"""The ASGI app: `create_app(settings)` builds routes, auth, SSE streaming and the one error handler
that turns every failure into an OpenAI-shaped JSON error. No globals: build as many apps as you like.

A chat request's stages: auth (here) → admission → plan → call → account → record (the gateway)."""

from __future__ import annotations

import gc
import logging
import math
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from types import MappingProxyType
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .. import __version__
from ..chat import parse_json
from ..constraints import matches
from ..control.limits import Subject
from ..control.state import StateUnavailable
from ..errors import (
    ClientClosedError,
    InvalidRequestError,
    LimitExceededError,
    LLMRouteError,
    NotFoundError,
    RequestTooLargeError,
    UnavailableError,
)
from ..metrics import CONTENT_TYPE
from ..outcome import Principal
from ..resilience import attempt_log
from ..runtime import Runtime, build_runtime
from ..settings import Settings
from . import dashboard, dashboard_explore, dashboard_login, messages
from .auth import KeyRing
from .dashboard_login import DashboardAccess
from .feedback import not_found, parse_feedback
from .openapi import openapi_bytes
from .sessions import Sessions, session_secret

log = logging.getLogger("llmroute.server")


class JSONResponse(Response):
    """JSON via orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_payload(exc: LLMRouteError) -> dict[str, object]:
    """The OpenAI-shaped error body for one of our errors (with the failed attempts)."""
    body = exc.to_dict()
    error: dict[str, object] = body["error"]  # type: ignore[assignment]
    log_ = attempt_log(exc)
    if log_:
        error["attempts"] = [
            {"model": a.model, "error": a.error_kind, "message": a.message, "skipped": a.skipped}
            for a in log_ if not a.ok]
    return body


def error_response(exc: LLMRouteError, request_id: str | None = None) -> JSONResponse:
    """The OpenAI-shaped error body for one of our errors, with its status and useful headers."""
    return JSONResponse(error_payload(exc), status_code=exc.status,
                        headers=error_headers(exc, request_id))


def error_headers(exc: LLMRouteError, request_id: str | None = None) -> dict[str, str]:
    """The headers of an error answer: request id, attempts, the refusing limit, Retry-After."""
    headers = {"x-llmroute-request-id": request_id} if request_id else {}
    log_ = attempt_log(exc)
    if log_:
        headers["x-llmroute-attempts"] = str(sum(not a.skipped for a in log_))
    if isinstance(exc, LimitExceededError):  # which limit refused, as a downgrade says it too
        headers.update({"x-llmroute-limit": exc.limit, "x-llmroute-limit-action": "rejected"})
    retry_after = exc.retry_after
    if retry_after is not None:
        # Both forms: `retry-after-ms` is what the OpenAI SDKs read first; whole seconds for the rest.
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
        headers["retry-after-ms"] = str(max(1, math.ceil(retry_after * 1000)))
    return headers


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) anything over `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    too_large = RequestTooLargeError(f"Request body too large: the limit is {limit} bytes.")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async for part in request.stream():
            body += part
            if len(body) > limit:
                raise too_large
    except ClientDisconnect:  # gone (or cut off by a read deadline) before its body was in
        raise ClientClosedError("The client went away before its request body arrived.") from None
    return bytes(body)


class Endpoints:
    """The HTTP endpoints of one app, over its runtime (gateway, ledger, metrics) and keys. They
    raise our errors; the app's one handler turns them into responses."""

    def __init__(self, settings: Settings, runtime: Runtime, keys: KeyRing, sessions: Sessions):
        self.runtime = runtime
        self.gw = runtime.gateway
        self.keys = keys
        self.access = DashboardAccess(keys, sessions)
        self.metrics_access = settings.server.metrics
        self.limit = settings.server.max_body_bytes
        self.max_messages = settings.server.max_messages
        self.openapi: bytes | None = None  # rendered on first ask (~15 ms)
        self.ledger = runtime.ledger
        self.user_header = settings.control.user_header

    async def list_models(self, request: Request) -> Response:
        """GET /v1/models: auto, the policies the key may use, and the served models (chat, then
        embedding) it may use."""
        principal = self.keys.authenticate(request.headers)
        gw = self.gw
        policies = [p for p in gw.engine.policies
                    if principal.policies is None or p in principal.policies]
        ids = [("auto", "llmroute"), *((f"auto/{p}", "llmroute") for p in policies)]
        ids += [(spec.name, spec.provider) for spec in gw.catalog if spec.name in gw.deployments
                and (principal.models is None or matches(spec, principal.models))]
        served = self.runtime.embeddings.models if self.runtime.embeddings else {}
        ids += [(name, m.spec.provider) for name, m in served.items()
                if principal.models is None or matches(m.spec, principal.models)]
        data = [{"id": i, "object": "model", "created": 0, "owned_by": o} for i, o in ids]
        return JSONResponse({"object": "list", "data": data})

    async def budgets(self, request: Request) -> Response:
        """GET /v1/budgets: use, remaining and reset time of every limit on the calling key (its
        own, its team's, the global ones; with the user header, that user's too)."""
        principal = self.keys.authenticate(request.headers)
        usage = await self.usage(principal, request.headers.get(self.user_header))
        return JSONResponse({"object": "list", "data": usage})

    async def usage(self, principal: Principal, user: str | None = None
                    ) -> list[dict[str, object]]:
        """Every limit on the principal's key, team (and user): use, remaining and reset time."""
        who = Subject(key=principal.name, team=principal.team, user=user)
        try:
            usage = await self.gw.admission.limiter.usage(who)
        except StateUnavailable:  # an outage, not a bug: a 503 the client may retry
            raise UnavailableError("Limits cannot be read right now (the shared state is "
                                   "unreachable); try again shortly.", code="limits_unavailable",
                                   retry_after=1.0) from None
        return [u.to_dict() for u in usage]

    async def openapi_document(self, request: Request) -> Response:
        """GET /openapi.json: this API as an OpenAPI 3.1 document."""
        self.keys.authenticate(request.headers)
        if self.openapi is None:
            self.openapi = openapi_bytes(__version__)
        return Response(self.openapi, media_type="application/json")

    async def health(self, request: Request) -> Response:
        """GET /health: liveness."""
        return JSONResponse({"status": "ok"})

    async def ready(self, request: Request) -> Response:
        """GET /ready: every tier has a served model out of cooldown. The shared state's
        reachability is reported too; an unreachable state does not make the replica unready
        (it keeps serving: routing state fails open)."""
        report = self.gw.readiness()
        report["state"] = await self.runtime.state_report()
        return JSONResponse(report, status_code=200 if report["status"] == "ready" else 503)

    async def feedback(self, request: Request) -> Response:
        """POST /v1/feedback."""
        principal = self.keys.authenticate(request.headers)
        if self.ledger is None:
            raise UnavailableError("The ledger is disabled: feedback cannot be stored.",
                                   code="ledger_disabled")
        given = parse_feedback(parse_json(await read_body(request, self.limit)))
        # A key rates only its own requests; another key's request id reads as unknown (404),
        # so ids cannot be probed across keys. An open gateway has no owners.
        found = await self.ledger.feedback(given.request_id, rating=given.rating,
                                           success=given.success, comment=given.comment,
                                           owner=principal.name)
        if not found:
            raise not_found(given.request_id)
        return JSONResponse({"request_id": given.request_id, "status": "recorded"})

    async def prometheus(self, request: Request) -> Response:
        """GET /metrics: an admin key's unless `server.metrics.public`."""
        if not self.metrics_access.public:
            self.keys.admin(request.headers)
        return self.metrics_text()

    def metrics_text(self) -> Response:
        """The exposition text (also what the separate metrics listener serves)."""
        metrics = self.runtime.metrics
        return Response(metrics.render() if metrics else b"", media_type=CONTENT_TYPE)

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Start the ledger; at shutdown flush it and close upstream connections."""
        if self.keys.open:
            log.warning("no gateway keys configured: every request is accepted")
        await self.runtime.start()
        # Everything built so far (settings, catalog, routers, the learned artifact: ~60,000
        # objects) lives as long as the app: keep it out of the garbage collector's full passes,
        # which would otherwise stall every request in flight for ~10 ms now and then.
        gc.collect()
        gc.freeze()
        log.info("ready to serve", extra={"event": "ready"})
        yield
        log.info("shutting down", extra={"event": "shutdown"})
        await self.runtime.aclose()
        log.info("stopped", extra={"event": "stopped"})

    def routes(self, hot: Mapping[str, ASGIApp]) -> list[Route]:
        """Every route of the app; `hot`: the raw endpoints (POST), which the app dispatches
        before Starlette, in the table too for whatever reaches Starlette."""
        from . import responses  # imports this module: here, not at the top

        e = self
        return [
            *(Route(path, Raw(endpoint), methods=["POST"]) for path, endpoint in hot.items()),
            *responses.routes(e),
            Route("/v1/models", e.list_models, methods=["GET"]),
            *messages.MessagesAPI(e).routes(),  # the Anthropic Messages API
            Route("/health", e.health, methods=["GET"]),
            Route("/ready", e.ready, methods=["GET"]),
            Route("/v1/feedback", e.feedback, methods=["POST"]),
            Route("/v1/budgets", e.budgets, methods=["GET"]),
            Route("/dashboard", dashboard.page(e.access, e.ledger), methods=["GET"]),
            Route("/dashboard/data", dashboard.data(e.access, e.ledger, e.gw.engine.baseline_model,
                                                    e.runtime.settings.experiments, e.usage,
                                                    {k.name: k.team for k in e.runtime.settings.keys}),
                  methods=["GET"]),
            *dashboard_explore.routes(e.access, e.ledger),
            Route("/openapi.json", e.openapi_document, methods=["GET"]),
            Route("/dashboard/login", partial(dashboard_login.login, e.access),
                  methods=["POST"]),
            Route("/dashboard/logout", partial(dashboard_login.logout, e.access),
                  methods=["POST"]),
            # with a metrics listener of its own (`server.metrics.port`), none here
            *([] if e.metrics_access.port is not None else
              [Route("/metrics", e.prometheus, methods=["GET"])]),
        ]


class Raw:
    """A raw ASGI endpoint in Starlette's table (a function there would be given a Request)."""

    def __init__(self, endpoint: ASGIApp):
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.endpoint(scope, receive, send)


class GatewayApp(Starlette):
    """Starlette, with the hot routes (`hot.py`: exact path, POST) dispatched before its
    middleware and router: they answer their own errors, as the middleware would."""

    hot: Mapping[str, ASGIApp] = MappingProxyType({})  # create_app sets the table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            endpoint = self.hot.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, environ: Mapping[str, str] | None = None) -> Starlette:
    """The gateway's ASGI application."""
    from .hot import HotRoutes  # imports this module: here, not at the top

    env = os.environ if environ is None else environ
    runtime = build_runtime(settings, environ=env)
    server = settings.server
    sessions = Sessions(session_secret(env, server.session_secret_env), server.session_ttl_s,
                        runtime.state)
    endpoints = Endpoints(settings, runtime, KeyRing(settings.keys, env), sessions)
    hot: dict[str, ASGIApp] = dict(HotRoutes(endpoints).table())
    app = GatewayApp(routes=endpoints.routes(hot), lifespan=endpoints.lifespan,
                     exception_handlers={LLMRouteError: _our_error, HTTPException: _http_error,
                                         Exception: _internal_error})
    app.state.gateway = endpoints.gw
    if runtime.tracer is not None:  # an incoming `traceparent` continues the caller's trace
        from ..telemetry.tracing import TraceContext

        app.add_middleware(TraceContext)
        hot = {path: TraceContext(endpoint) for path, endpoint in hot.items()}
    app.hot = hot
    app.state.keys = endpoints.keys  # `llmroute serve` reloads them on SIGHUP
    app.state.metrics_app = Starlette(routes=[Route(
        "/metrics", partial(_metrics, endpoints), methods=["GET"])])
    return app


async def _metrics(endpoints: Endpoints, request: Request) -> Response:
    """The separate metrics listener's one route: no key (its address is the access control)."""
    return endpoints.metrics_text()


async def _our_error(request: Request, exc: Exception) -> Response:
    """The one handler of our errors: the OpenAI-shaped body with the error's own status."""
    assert isinstance(exc, LLMRouteError)
    return error_response(exc, getattr(request.state, "request_id", None))


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors (404, 405) as ours; a 405 says what is allowed (`Allow`)."""
    assert isinstance(exc, HTTPException)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    err = (NotFoundError(message) if exc.status_code == 404 else
           InvalidRequestError(message, status=exc.status_code, code="invalid_request_error"))
    response = error_response(err)
    response.headers.update(exc.headers or {})
    return response


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(LLMRouteError("The gateway hit an internal error; it has been logged."))


def app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` and multi-worker serving: config from $LLMROUTE_CONFIG."""
    from ..config import load

    return create_app(load())

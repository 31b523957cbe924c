"""OpenTelemetry traces of chat requests, following the GenAI semantic conventions: one span per
request (`chat {requested model}`, SERVER when served over HTTP) carrying the routing decision,
usage, cost and cache marks, and one child span per upstream attempt (`chat {upstream model}`,
CLIENT): the answer's tries, retries and fallbacks as siblings, and the LLM router's
classification calls. The spans are built when the request ends (a stream: at its end), from the
same entry the ledger gets, with the attempts' real start times; their parent is the current
OpenTelemetry context, which `TraceContext` (ASGI) sets from an incoming `traceparent`.

Prompt and answer text go on the request span only with `capture_content`; keys never do.
Imported only when `telemetry.traces.enabled` (the `otel` extra)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from ..deployments import Deployments
from ..observe import Finished
from ..resilience import Attempt
from ..settings import Settings
from .config import TracesConfig

Attributes = dict[str, AttributeValue]
#: `gen_ai.provider.name` per deployment type (the conventions' well-known values).
PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "replay": "llmroute.replay"}
SCOPE = "llmroute"


class Upstream:
    """What an attempt span says about a gateway model's deployment: provider, address, the
    upstream model name."""

    def __init__(self, settings: Settings, deployments: Deployments):
        self._where: dict[str, tuple[str, str, int | None, str]] = {}
        for model in deployments.names():
            provider, upstream = deployments.get(model)
            config = settings.providers.get(provider.name)
            kind = config.type if config is not None else "openai"
            url = urlsplit(config.base_url) if config is not None else None
            self._where[model] = (PROVIDER_NAMES.get(kind, kind), url.hostname or "" if url else "",
                                  url.port if url else None, upstream)

    def attributes(self, model: str) -> Attributes:
        found = self._where.get(model)
        if found is None:
            return {"gen_ai.request.model": model}
        system, host, port, upstream = found
        out: Attributes = {"gen_ai.provider.name": system, "gen_ai.system": system,
                           "gen_ai.request.model": upstream, "server.address": host}
        if port is not None:
            out["server.port"] = port
        return out

    def upstream_name(self, model: str) -> str:
        found = self._where.get(model)
        return found[3] if found else model


def provider_from(config: TracesConfig) -> TracerProvider:
    """The SDK's TracerProvider for the config: service name, sampler, the OTLP/HTTP exporter
    (OTEL_* environment variables fill in what the config leaves out)."""
    attributes: dict[str, str] = {}
    if config.service_name:
        attributes[SERVICE_NAME] = config.service_name
    elif not os.environ.get("OTEL_SERVICE_NAME"):
        attributes[SERVICE_NAME] = "llmroute"
    sampler = (ParentBased(TraceIdRatioBased(config.sample_ratio))
               if config.sample_ratio is not None else None)
    provider = TracerProvider(resource=Resource.create(attributes), sampler=sampler)
    if config.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint)))
    elif config.exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


class Tracer:
    """The gateway's observer: each finished request becomes a span tree."""

    def __init__(self, settings: Settings, deployments: Deployments, *,
                 provider: TracerProvider | None = None, kind: SpanKind = SpanKind.SERVER):
        config = settings.telemetry.traces
        self.provider = provider or provider_from(config)
        self.tracer = self.provider.get_tracer(SCOPE)
        self.capture = config.capture_content
        self.wants_text = config.capture_content
        self.kind = kind
        self.upstream = Upstream(settings, deployments)

    def finished(self, done: Finished) -> None:
        """The request's span and its attempts' children, with their real times (also when this
        is told after the answer was sent: `done.ended` is when the request ended)."""
        end_ns = time.time_ns() - int((time.monotonic() - done.ended) * 1e9)

        def wall(monotonic: float) -> int:
            return end_ns - int((done.ended - monotonic) * 1e9)

        requested = done.body.get("model")
        name = f"chat {requested}" if isinstance(requested, str) else "chat"
        span = self.tracer.start_span(name, kind=self.kind, start_time=wall(done.started),
                                      attributes=self._request(done))
        parent = trace.set_span_in_context(span)
        for attempt in done.attempts:
            if attempt.skipped:
                span.add_event("llmroute.attempt.skipped", {"llmroute.model": attempt.model,
                                                           "llmroute.attempt.number": attempt.number})
            else:
                self._attempt(attempt, parent, wall(attempt.started))
        if done.entry.status == "error":
            span.set_status(Status(StatusCode.ERROR, done.entry.error_type or "error"))
        span.end(end_time=end_ns)

    def _request(self, done: Finished) -> Attributes:
        entry = done.entry
        requested = done.body.get("model")
        values: dict[str, AttributeValue | None] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": requested if isinstance(requested, str) else None,
            "gen_ai.response.model": entry.model,
            "gen_ai.usage.input_tokens": entry.input_tokens,
            "gen_ai.usage.output_tokens": entry.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": entry.cached_tokens or None,
            "gen_ai.usage.cache_creation.input_tokens": entry.cache_write_tokens or None,
            "llmroute.request_id": entry.request_id,
            "llmroute.key": entry.key_name,
            "llmroute.policy": entry.policy, "llmroute.tier": entry.tier,
            "llmroute.router": entry.router, "llmroute.reason": entry.reason,
            "llmroute.confidence": entry.confidence,
            "llmroute.experiment_arm": entry.experiment_arm,
            "llmroute.explored": entry.explored or None,
            "llmroute.stream": entry.stream,
            "llmroute.ttft_s": entry.ttft_s,
            "llmroute.cost_usd": _float(entry.cost_usd),
            "llmroute.routing_cost_usd": _float(entry.routing_cost_usd),
            "llmroute.usage_estimated": entry.usage_estimated or None,
            "llmroute.cache": entry.cache,
            "llmroute.cache.similarity": entry.cache_similarity,
            "llmroute.cache.saved_usd": _float(entry.cache_saved_usd),
            "error.type": entry.error_type,
            "http.response.status_code": entry.http_status,
        }
        if self.capture:
            values["gen_ai.input.messages"] = _json(done.body.get("messages"))
            if done.response is not None:
                values["gen_ai.output.messages"] = _json(
                    [{"role": "assistant", "parts": [{"type": "text", "content": done.response}]}])
        return {key: value for key, value in values.items() if value is not None}

    def _attempt(self, attempt: Attempt, parent: context.Context, start_ns: int) -> None:
        attributes: Attributes = {
            "gen_ai.operation.name": "chat", **self.upstream.attributes(attempt.model),
            "llmroute.model": attempt.model, "llmroute.attempt.number": attempt.number,
            "llmroute.attempt.role": "router" if attempt.router else "answer",
            "llmroute.attempt.outcome": attempt.error_kind or "ok",
            "llmroute.attempt.latency_s": attempt.latency_s,
        }
        if attempt.error_kind is not None:
            attributes["error.type"] = attempt.error_kind
        if attempt.status is not None:
            attributes["http.response.status_code"] = attempt.status
        span: Span = self.tracer.start_span(
            f"chat {self.upstream.upstream_name(attempt.model)}", context=parent,
            kind=SpanKind.CLIENT, start_time=start_ns, attributes=attributes)
        if attempt.error_kind is not None:
            span.set_status(Status(StatusCode.ERROR, attempt.message or attempt.error_kind))
        span.end(end_time=start_ns + int(attempt.latency_s * 1e9))

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporter."""
        self.provider.shutdown()


class TraceContext:
    """ASGI middleware: a request's `traceparent` (and `tracestate`, per OTEL_PROPAGATORS)
    becomes the current context, so the request's span continues the caller's trace."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"] if name in (b"traceparent", b"tracestate")}
        if not carrier:
            await self.app(scope, receive, send)
            return
        token = context.attach(propagate.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            context.detach(token)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()

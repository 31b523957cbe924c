"""Traces through the in-process AsyncClient: the request span is INTERNAL and a child of the
caller's current span (the caller's trace continues without any header)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import llmroute
from integration.support import ENV
from llmroute.config import load
from llmroute.settings import Settings
from llmroute.testing.upstream import FakeUpstream


def settings(up: FakeUpstream, tmp_path: Path) -> Settings:
    config: dict[str, Any] = {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url,
                               "api_key_env": "FAKE_OPENAI_KEY"}},
        "models": {"fake/small": {"deployment": "fake", "input_per_m": 0.5, "output_per_m": 1.5}},
        "tiers": {"simple": {"model": "fake/small"}, "medium": {"model": "fake/small"},
                  "complex": {"model": "fake/small"}},
        "ledger": {"enabled": False},
        "telemetry": {"traces": {"enabled": True, "exporter": "none"}},
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config))
    return load(path, environ={})


@pytest.mark.asyncio
async def test_the_async_clients_span_is_an_internal_child_of_the_callers_span(
        up: FakeUpstream, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    client = llmroute.AsyncClient(settings(up, tmp_path), environ=ENV)
    tracer = client._runtime.tracer
    assert tracer is not None
    tracer.provider.add_span_processor(SimpleSpanProcessor(exporter))
    caller = TracerProvider().get_tracer("the-app")
    try:
        with caller.start_as_current_span("handle user question") as mine:
            answer = await client.chat.completions.create(
                model="fake/small", messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()

    request = next(s for s in exporter.get_finished_spans() if s.name == "chat fake/small")
    attempt = next(s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT)
    assert request.kind == SpanKind.INTERNAL and answer.model == "fake/small"
    context = mine.get_span_context()
    assert request.parent is not None and request.context is not None
    assert request.parent.span_id == context.span_id
    assert request.context.trace_id == context.trace_id
    assert attempt.parent is not None and attempt.parent.span_id == request.context.span_id
    assert trace.get_current_span() is not mine


def test_the_sync_clients_span_is_a_child_of_the_callers_span_at_each_call(
        up: FakeUpstream, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    caller = TracerProvider().get_tracer("the-app")
    with llmroute.Client(settings(up, tmp_path), environ=ENV) as client:
        tracer = client._async._runtime.tracer
        assert tracer is not None
        tracer.provider.add_span_processor(SimpleSpanProcessor(exporter))
        client.chat.completions.create(model="fake/small", messages=[{"role": "user", "content": "a"}])
        spans = []
        for _ in range(2):
            with caller.start_as_current_span("handle user question") as mine:
                spans.append(mine.get_span_context())
                list(client.chat.completions.create(
                    model="fake/small", messages=[{"role": "user", "content": "b"}], stream=True))

    first, *streamed = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.INTERNAL]
    assert first.parent is None
    assert [s.parent.span_id if s.parent else None for s in streamed] == [c.span_id for c in spans]

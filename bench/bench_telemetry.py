"""Telemetry benchmark: CPU per finished request of what the gateway does to record it
(`Gateway._account`: the ledger entry, the recorders, the tracer), with traces off and on (the
OpenTelemetry SDK's BatchSpanProcessor, spans dropped by the exporter so no I/O is timed), for an
answer at the first try and one after two failed tries (4 spans); and the `traceparent` middleware.
Run by hand: `python bench/bench_telemetry.py`; run it against another checkout's `src` (e.g.
PYTHONPATH=../main/src) to compare with the code before the tracing seam. Results in
docs/observability.md."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import statistics
import tempfile
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from llmroute.chat import chat_request
from llmroute.config import load
from llmroute.outcome import OPEN, Outcome, Plan
from llmroute.resilience import Attempt
from llmroute.runtime import build_runtime
from llmroute.settings import Settings
from llmroute.types import Usage

CONFIG = """
providers:
  fake: {type: openai, base_url: "http://127.0.0.1:9/v1"}
models:
  fake/mini: {deployment: fake, input_per_m: 0.15, output_per_m: 0.6}
  fake/big: {deployment: fake, input_per_m: 2.5, output_per_m: 10}
tiers:
  simple: {model: fake/mini, fallbacks: [fake/big]}
  medium: {model: fake/mini}
  complex: {model: fake/big}
policies:
  default: {router: rules, default_tier: simple}
ledger: {enabled: false}
"""
BODY = {"model": "auto", "messages": [{"role": "system", "content": "You are helpful."},
                                      {"role": "user", "content": "What is the capital of France?"}]}
HAS_STARTED = "started" in {f.name for f in dataclasses.fields(Attempt)}


def settings(traces: bool) -> Settings:
    text = CONFIG + ("telemetry: {traces: {enabled: true, exporter: none}}\n" if traces else "")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llmroute.yaml"
        path.write_text(text)
        return load(path)


def attempt(model: str, kind: str | None, started: float) -> Attempt:
    extra = {"started": started} if HAS_STARTED else {}
    return Attempt(model, 1, kind, "" if kind is None else "boom", 500 if kind else None, 0.2,
                   **extra)  # type: ignore[arg-type]


def outcome(failures: int) -> Outcome:
    now = time.monotonic()
    plan = Plan(("fake/mini", "fake/big"), "simple", "rules", "default", 0.9, "rule: greeting", 20)
    tries = [attempt("fake/mini", "server", now) for _ in range(failures)]
    out = Outcome("req_bench", plan, model="fake/big" if failures else "fake/mini",
                  attempts=[*tries, attempt("fake/big" if tries else "fake/mini", None, now)])
    out.usage, out.cost_usd, out.finished = Usage(20, 8), Decimal("0.0000123"), True
    return out


def per_call_us(traces: bool, failures: int, number: int = 20000, repeat: int = 7) -> float:
    runtime = build_runtime(settings(traces), environ={}, metrics=True, background=False)
    gateway, req, done = runtime.gateway, chat_request(BODY), outcome(failures)
    tracer = getattr(runtime, "tracer", None)  # None: traces off, or a checkout without them
    if tracer is not None:
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class Drop(SpanExporter):
            def export(self, spans: Sequence[object]) -> SpanExportResult:  # type: ignore[override]
                return SpanExportResult.SUCCESS

        tracer.provider.add_span_processor(BatchSpanProcessor(Drop()))
    started = time.monotonic()
    runs = []
    for _ in range(repeat):
        begin = time.process_time()
        for _ in range(number):
            gateway._account(req, OPEN, done, None, request_id="req_bench", started=started,
                             stream=False, response="Paris.")
        runs.append((time.process_time() - begin) / number * 1e6)
    if tracer is not None:
        tracer.shutdown()
    asyncio.run(gateway.aclose())
    return statistics.median(runs)


def middleware_us(number: int = 50000) -> float:
    from llmroute.telemetry.tracing import TraceContext

    async def app(scope: object, receive: object, send: object) -> None:
        return None

    wrapped = TraceContext(app)
    scope = {"type": "http", "headers": [
        (b"content-type", b"application/json"), (b"authorization", b"Bearer x"),
        (b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]}

    async def loop() -> float:
        begin = time.process_time()
        for _ in range(number):
            await wrapped(scope, None, None)
        return (time.process_time() - begin) / number * 1e6

    return asyncio.run(loop())


def main() -> None:
    print("record one finished request (Gateway._account, metrics recorder on), µs CPU, median of 7")
    for failures in (0, 2):
        label = "first try" if not failures else "2 failed tries + fallback"
        off = per_call_us(False, failures)
        line = f"  {label:28s} traces off {off:6.1f}"
        try:
            on = per_call_us(True, failures)
        except Exception as exc:  # the checkout has no tracing
            line += f"   (traces on: {type(exc).__name__})"
        else:
            line += f"   traces on {on:6.1f}   (+{on - off:.1f})"
        print(line)
    with contextlib.suppress(ImportError):  # a checkout without tracing
        print(f"traceparent middleware, per request: {middleware_us():.2f} µs CPU")


if __name__ == "__main__":
    main()

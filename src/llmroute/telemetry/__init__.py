"""Telemetry: OpenTelemetry traces (`tracing.py`, the `otel` extra, imported only when
`telemetry.traces.enabled`), log formats and per-request log events (`logs.py`), and the
`telemetry:` config section (`config.py`). docs/observability.md."""

"""The `telemetry:` section of the configuration: OpenTelemetry traces (`traces`, off by default,
the `otel` extra) and the process's log format and per-request log events (`logs`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TracesConfig(_Frozen):
    """OpenTelemetry traces of chat requests (GenAI semantic conventions)."""

    enabled: bool = False
    endpoint: str | None = Field(
        None, description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); "
                          "None: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, else the SDK's default")
    exporter: Literal["otlp", "console", "none"] = Field(
        "otlp", description="otlp: OTLP/HTTP to `endpoint`; console: stdout; none: spans are made "
                            "but not exported (a processor added in code may take them)")
    service_name: str | None = Field(
        None, description="None: OTEL_SERVICE_NAME, else `llmroute`")
    sample_ratio: float | None = Field(
        None, ge=0.0, le=1.0, description="parent-based ratio sampler; None: OTEL_TRACES_SAMPLER "
                                          "(and _ARG), else always on")
    capture_content: bool = Field(
        False, description="put the prompt and the answer on the request span (never keys)")


class LogsConfig(_Frozen):
    """How the process logs: `text` for people, `json` (one object per line) for log shippers."""

    format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: text when stderr is a terminal, json otherwise")
    level: Literal["debug", "info", "warning", "error"] = "info"
    requests: bool = Field(False, description="one `request` event per finished chat request")


class TelemetryConfig(_Frozen):
    """Traces and logs (Prometheus metrics are `server.metrics`)."""

    traces: TracesConfig = TracesConfig()
    logs: LogsConfig = LogsConfig()

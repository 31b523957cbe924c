"""How the process logs: `json` (one object per line: ts, level, logger, message, pid (which
worker), then the record's extra fields such as `event` and `request_id`) for log shippers,
`text` for people; `auto` picks text on a terminal, json otherwise. `RequestLog` writes one
`request` event per finished chat request (`telemetry.logs.requests`), from the same ledger entry
the metrics count: the key's name, never the key; never prompt or answer text."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from ..ledger.entry import LedgerEntry
from .config import LogsConfig

#: A LogRecord's own attributes; anything else on a record is an extra field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message", "asctime", "color_message", "taskName"}
FORMATTER = "llmroute.telemetry.logs.JsonFormatter"
request_log = logging.getLogger("llmroute.requests")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": record.getMessage(), "pid": record.process}
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def resolved_format(config: LogsConfig, stream: IO[str] | None = None) -> str:
    """`json` or `text` (`auto`: text when the stream, stderr by default, is a terminal)."""
    if config.format != "auto":
        return config.format
    target = stream if stream is not None else sys.stderr
    return "text" if target.isatty() else "json"


def log_config(config: LogsConfig, stream: IO[str] | None = None) -> dict[str, Any]:
    """The `logging.config.dictConfig` mapping for the gateway process (also uvicorn's
    `log_config`, so every worker logs the same way)."""
    level = config.level.upper()
    if resolved_format(config, stream) == "json":
        formatter: dict[str, Any] = {"()": FORMATTER}
        access: dict[str, Any] = formatter
    else:
        formatter = {"()": "uvicorn.logging.DefaultFormatter",
                     "fmt": "%(levelprefix)s %(name)s: %(message)s", "use_colors": None}
        access = {"()": "uvicorn.logging.AccessFormatter",
                  "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'}
    handler = {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"main": formatter, "access": access},
        "handlers": {"main": {**handler, "formatter": "main"},
                     "access": {**handler, "formatter": "access"}},
        "loggers": {
            "uvicorn": {"handlers": ["main"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "llmroute": {"handlers": ["main"], "level": level, "propagate": False},
            # the SDKs of the cloud extras: botocore's DEBUG lines hold canonical requests (with
            # the session token); neither says anything an operator needs below WARNING
            "botocore": {"level": "WARNING"},
            "azure": {"level": "WARNING"},
        },
    }


class RequestLog:
    """A recorder: one `request` log event per finished request."""

    def __init__(self, logger: logging.Logger = request_log):
        self.log = logger

    def record(self, entry: LedgerEntry) -> None:
        if not self.log.isEnabledFor(logging.INFO):
            return
        cost = None if entry.cost_usd is None else float(entry.cost_usd)
        fields = {
            "event": "request", "request_id": entry.request_id, "key": entry.key_name,
            "model": entry.model, "policy": entry.policy, "tier": entry.tier,
            "router": entry.router, "status": entry.status, "http_status": entry.http_status,
            "error_type": entry.error_type, "stream": entry.stream,
            "latency_s": round(entry.latency_s, 6),
            "ttft_s": None if entry.ttft_s is None else round(entry.ttft_s, 6),
            "attempts": sum(1 for a in entry.attempts if not a.skipped and not a.router),
            "input_tokens": entry.input_tokens, "output_tokens": entry.output_tokens,
            "cost_usd": cost, "cache": entry.cache}
        self.log.info("request %s %s %s %s %.3fs %s", entry.request_id, entry.status,
                      entry.http_status, entry.model or "-", entry.latency_s,
                      "unpriced" if cost is None else f"${cost:.6f}", extra=fields)

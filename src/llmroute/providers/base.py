"""The provider protocol (one adapter per wire protocol) and the transport pieces adapters share:
SSE line parsing, Retry-After and error-body parsing. The HTTP transport itself is `http.py`."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

JSON = dict[str, Any]


class Provider(Protocol):
    """Sends OpenAI-format chat requests to one upstream deployment and returns OpenAI format.

    Every failure is raised as `UpstreamError` (mapped here, at the edge). `stream` is an async
    generator of `chat.completion.chunk` dicts; it raises if the upstream stream breaks or ends early.
    """

    name: str

    async def complete(self, body: Mapping[str, Any], upstream_model: str) -> JSON:
        """One non-streaming chat completion."""
        ...

    def stream(self, body: Mapping[str, Any], upstream_model: str) -> AsyncIterator[JSON]:
        """One streaming chat completion, chunk by chunk."""
        ...

    async def aclose(self) -> None:
        """Close pooled connections."""
        ...


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event: its `event:` name (or "message") and its `data:` text."""

    event: str
    data: str


async def sse_events(lines: AsyncIterator[str], total_s: float | None = None
                     ) -> AsyncIterator[SSEEvent]:
    """Parse SSE lines into events (multi-line data joined by newlines; comments skipped).

    With `total_s`, raise TimeoutError once the stream has run that long (checked per line; a stalled
    read is bounded by the client's read timeout instead).
    """
    loop = asyncio.get_running_loop()
    deadline = None if total_s is None else loop.time() + total_s
    event, data = "message", list[str]()
    async for line in lines:
        if deadline is not None and loop.time() > deadline:
            raise TimeoutError(f"stream ran past its total timeout of {total_s:g}s")
        if not line:
            if data:
                yield SSEEvent(event, "\n".join(data))
            event, data = "message", list[str]()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
        elif line.startswith("event:"):
            event = line[6:].strip()
    if data:
        yield SSEEvent(event, "\n".join(data))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms`, `retry-after` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):  # neither seconds nor an HTTP date: ignore it
        return None
    return max(0.0, parsed.timestamp() - time.time())


def error_body(content: bytes) -> tuple[Mapping[str, Any], str, str]:
    """(the error object, its message, its code-or-type) from an upstream error body, tolerant of
    non-JSON bodies."""
    try:
        body = orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:
        return {}, content[:300].decode("utf-8", "replace"), ""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        err = body if isinstance(body, dict) else {}
    message = str(err.get("message") or "")[:500]
    code = str(err.get("code") or err.get("type") or "")
    return err, message, code

"""The Anthropic Messages adapter: translates OpenAI chat requests to `POST /v1/messages` and the
answers (and streams) back to OpenAI format, mapping Anthropic's errors to ours at the edge."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from ..cache.breakpoints import AutoBreakpoints
from ..errors import UpstreamError
from ..settings import ProviderConfig
from .anthropic_errors import StreamError, WireError, classify_anthropic_error
from .anthropic_stream import AnthropicStreamTranslator
from .anthropic_wire import from_anthropic_response, to_anthropic_request
from .base import JSON, error_body, parse_retry_after, sse_events
from .http import TRANSPORT_ERRORS, HTTPTransport, StreamReply, transport_error

API_VERSION = "2023-06-01"


def _request(body: Mapping[str, Any], upstream_model: str, stream: bool,
             breakpoints: AutoBreakpoints | None = None) -> bytes:
    try:
        payload = to_anthropic_request(body, upstream_model)
    except WireError as exc:
        error = UpstreamError("unsupported", f"Anthropic models cannot take this request: "
                              f"{exc.message}", model=upstream_model)
        error.param = exc.param
        raise error from None
    if breakpoints is not None:
        payload = breakpoints.apply(payload, upstream_model)
    payload["stream"] = stream
    return orjson.dumps(payload)


class AnthropicProvider:
    """One Anthropic deployment (api.anthropic.com or a compatible proxy); `breakpoints`: the
    automatic prompt-cache policy (`cache.prompt.auto_breakpoints`), None when off."""

    def __init__(self, name: str, config: ProviderConfig, api_key: str | None,
                 breakpoints: AutoBreakpoints | None = None):
        self.name = name
        self.config = config
        self.breakpoints = breakpoints
        headers = {"anthropic-version": API_VERSION, "content-type": "application/json"}
        if api_key:
            headers["x-api-key"] = api_key
        self.http = HTTPTransport(config, headers)

    def _error(self, status: int, content: bytes, headers: Mapping[str, str], model: str
               ) -> UpstreamError:
        err, message, code = error_body(content)
        kind = classify_anthropic_error(status, err)
        retry_after = parse_retry_after(headers) if kind in ("rate_limit", "overloaded") else None
        return UpstreamError(kind, f"{self.name} returned {status}: {message}", status=status,
                             retry_after=retry_after, provider=self.name, model=model,
                             code=code or None)

    async def complete(self, body: Mapping[str, Any], upstream_model: str) -> JSON:
        """One Messages call, answered in OpenAI's chat.completion shape."""
        payload = _request(body, upstream_model, False, self.breakpoints)
        response = await self.http.post_checked(
            "/v1/messages", payload, None, timeout_s=self.config.timeout.total_s,
            provider=self.name, model=upstream_model, error=self._error)
        try:
            message = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamError("server", f"{self.name} returned invalid JSON",
                                provider=self.name, model=upstream_model) from None
        return from_anthropic_response(message, upstream_model, int(time.time()))

    async def stream(self, body: Mapping[str, Any], upstream_model: str) -> AsyncIterator[JSON]:
        """A streaming Messages call, translated to chat.completion.chunk dicts as events arrive."""
        payload = _request(body, upstream_model, True, self.breakpoints)
        options = body.get("stream_options") or {}
        translator = AnthropicStreamTranslator(upstream_model, int(time.time()),
                                               bool(options.get("include_usage")))
        try:
            async with self.http.stream("/v1/messages", payload,
                                        {"accept": "text/event-stream"}) as response:
                if response.status >= 400:
                    content = await response.read()
                    raise self._error(response.status, content, response.headers,
                                      upstream_model)
                async for chunk in self._chunks(response, translator, upstream_model):
                    yield chunk
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, self.name, upstream_model) from None

    async def _chunks(self, response: StreamReply, translator: AnthropicStreamTranslator,
                      model: str) -> AsyncIterator[JSON]:
        async for event in sse_events(response.lines(), self.config.timeout.total_s):
            try:
                data = orjson.loads(event.data)
                chunks = translator.feed(event.event if event.event != "message" else "", data)
            except orjson.JSONDecodeError:
                raise UpstreamError("server", f"{self.name} sent an invalid stream event",
                                    provider=self.name, model=model) from None
            except StreamError as exc:
                raise UpstreamError(exc.category, f"{self.name} stream error: {exc}",
                                    provider=self.name, model=model) from None
            for chunk in chunks:
                yield chunk
            if translator.finished:
                return
        raise UpstreamError("connection", f"{self.name} stream ended before message_stop",
                            provider=self.name, model=model)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

"""The Google Gemini adapter (the Gemini Developer API, `generativelanguage.googleapis.com`):
OpenAI chat requests → `POST {base_url}/models/{model}:generateContent` (or
`:streamGenerateContent?alt=sse`) with the key in `x-goog-api-key`, and the answers back.
Translation in `gemini_wire` / `gemini_messages` / `gemini_stream`, errors in `gemini_errors`.
`base_url` is the API root with its version, e.g. `https://generativelanguage.googleapis.com/v1beta`.
Vertex AI is `vertex.py`: the same wire, another base URL and OAuth instead of a key.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import orjson

from ..errors import UpstreamError
from ..settings import ProviderConfig
from . import gemini_errors
from .anthropic_errors import WireError
from .base import JSON, sse_events
from .gemini_stream import GeminiStreamTranslator
from .gemini_wire import SafetyBlock, from_gemini_response, to_gemini_request
from .http import TRANSPORT_ERRORS, HTTPTransport, StreamReply, transport_error

JSON_HEADERS = {"content-type": "application/json"}
#: What translating an answer that is JSON but not in Gemini's shape raises.
SHAPE_ERRORS = (TypeError, ValueError, AttributeError, KeyError)
SSE_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


def _payload(body: Mapping[str, Any], model: str) -> bytes:
    try:
        return orjson.dumps(to_gemini_request(body))
    except WireError as exc:
        error = UpstreamError("unsupported", f"Gemini models cannot take this request: "
                              f"{exc.message}", model=model)
        error.param = exc.param
        raise error from None


class GeminiProvider:
    """One Gemini API deployment, with a pooled keep-alive client."""

    def __init__(self, name: str, config: ProviderConfig, api_key: str | None):
        self.name = name
        self.config = config
        self.http = HTTPTransport(config, {"x-goog-api-key": api_key} if api_key else {})

    async def _auth(self, model: str) -> Mapping[str, str]:
        """Per-request auth headers (none: the key is a default header)."""
        return {}

    def _blocked(self, exc: SafetyBlock, model: str) -> UpstreamError:
        return UpstreamError("content_policy", f"{self.name}: {exc}", provider=self.name,
                             model=model, code="content_filter")

    def _malformed(self, model: str) -> UpstreamError:
        return UpstreamError("server", f"{self.name} returned an answer not in Gemini's shape",
                             provider=self.name, model=model)

    def _error(self, status: int, content: bytes, headers: Mapping[str, str], model: str
               ) -> UpstreamError:
        try:
            body = orjson.loads(content) if content else None
        except orjson.JSONDecodeError:
            body = None
        return gemini_errors.from_error(status, body, headers, self.name, model)

    async def complete(self, body: Mapping[str, Any], upstream_model: str) -> JSON:
        """One generateContent call, answered as an OpenAI chat.completion."""
        payload = _payload(body, upstream_model)
        path = f"/models/{quote(upstream_model, safe='')}:generateContent"
        headers = {**JSON_HEADERS, **await self._auth(upstream_model)}
        response = await self.http.post_checked(
            path, payload, headers, timeout_s=self.config.timeout.total_s, provider=self.name,
            model=upstream_model, error=self._error)
        try:
            answer = orjson.loads(response.content)
            return from_gemini_response(answer, upstream_model, int(time.time()))
        except orjson.JSONDecodeError:
            raise UpstreamError("server", f"{self.name} returned invalid JSON",
                                provider=self.name, model=upstream_model) from None
        except SafetyBlock as exc:
            raise self._blocked(exc, upstream_model) from None
        except SHAPE_ERRORS:
            raise self._malformed(upstream_model) from None

    async def stream(self, body: Mapping[str, Any], upstream_model: str) -> AsyncIterator[JSON]:
        """A streamGenerateContent call, translated chunk by chunk."""
        payload = _payload(body, upstream_model)
        path = f"/models/{quote(upstream_model, safe='')}:streamGenerateContent?alt=sse"
        options = body.get("stream_options") or {}
        translator = GeminiStreamTranslator(upstream_model, int(time.time()),
                                            bool(options.get("include_usage")),
                                            int(body.get("n") or 1))
        headers = {**SSE_HEADERS, **await self._auth(upstream_model)}
        try:
            async with self.http.stream(path, payload, headers) as response:
                if response.status >= 400:
                    content = await response.read()
                    raise self._error(response.status, content, response.headers,
                                      upstream_model)
                async for chunk in self._chunks(response, translator, upstream_model):
                    yield chunk
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, self.name, upstream_model) from None

    async def _chunks(self, response: StreamReply, translator: GeminiStreamTranslator,
                      model: str) -> AsyncIterator[JSON]:
        async for event in sse_events(response.lines(), self.config.timeout.total_s):
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise UpstreamError("server", f"{self.name} sent an invalid stream event",
                                    provider=self.name, model=model) from None
            if isinstance(data, dict) and "error" in data:
                raise gemini_errors.from_error(200, data, {}, self.name, model)
            try:
                chunks = translator.feed(data if isinstance(data, dict) else {})
            except SafetyBlock as exc:
                raise self._blocked(exc, model) from None
            except SHAPE_ERRORS:
                raise self._malformed(model) from None
            for chunk in chunks:
                yield chunk
        if not translator.finished:
            raise UpstreamError("connection", f"{self.name} stream ended before its finishReason",
                                provider=self.name, model=model)
        for chunk in translator.end():
            yield chunk

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

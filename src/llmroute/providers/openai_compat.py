"""The OpenAI-compatible adapter: OpenAI, OpenRouter, Azure-style URLs, vLLM, Ollama, llama.cpp server,
Together, Groq — anything serving `POST {base_url}/chat/completions`. Bodies pass through untouched
except for the upstream model name and Anthropic-style `cache_control` marks, which are removed
unless the deployment passes them (`providers.<name>.cache_control`: `pass`, or `auto` for
OpenRouter, which takes them to its Anthropic and Gemini models; OpenAI itself caches prefixes
automatically and has no such field)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..errors import UpstreamError
from ..reasoning import openai_body
from ..settings import ProviderConfig
from . import openai_errors
from .base import JSON
from .cache_control import strip_cache_control
from .http import TRANSPORT_ERRORS, HTTPTransport, transport_error
from .sse import sse_data

#: Hosts whose OpenAI-compatible API takes `cache_control` marks (`cache_control: auto`).
CACHE_CONTROL_HOSTS = frozenset({"openrouter.ai"})
JSON_HEADERS = {"content-type": "application/json"}


def _lenient(data: bytes) -> Any:
    """Data that is not UTF-8, decoded with replacement characters (as lines were), parsed; None
    when it is not JSON either."""
    try:
        return orjson.loads(data.decode("utf-8", "replace"))
    except orjson.JSONDecodeError:
        return None


def passes_cache_control(config: ProviderConfig) -> bool:
    """Whether requests to this deployment keep their `cache_control` marks."""
    if config.cache_control != "auto":
        return config.cache_control == "pass"
    host = (urlsplit(config.base_url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in CACHE_CONTROL_HOSTS)
SSE_HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}


class OpenAICompatProvider:
    """One OpenAI-compatible deployment, with a pooled keep-alive client."""

    def __init__(self, name: str, config: ProviderConfig, api_key: str | None):
        self.name = name
        self.config = config
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = HTTPTransport(config, headers)
        self._keep_marks = passes_cache_control(config)
        #: No per-request auth headers (`_auth` not overridden): the request's headers are the
        #: shared constants, without a coroutine and a merge per request.
        self._no_auth = type(self)._auth is OpenAICompatProvider._auth

    def _error(self, status: int, content: bytes, headers: Mapping[str, str], model: str
               ) -> UpstreamError:
        """The upstream's error answer as our error (`openai_errors`)."""
        return openai_errors.from_response(status, content, headers, self.name, model)

    async def _auth(self, model: str) -> Mapping[str, str]:
        """Per-request auth headers (beyond the transport's): none; Azure's Entra tokens."""
        return {}

    def _path(self, upstream_model: str) -> str:
        """The chat-completions path (with its query) for `upstream_model`."""
        return "/chat/completions"

    def _payload(self, body: Mapping[str, Any], upstream_model: str, stream: bool) -> bytes:
        sent = openai_body(body)
        sent = sent if self._keep_marks else strip_cache_control(sent)
        return orjson.dumps({**sent, "model": upstream_model, "stream": stream})

    async def complete(self, body: Mapping[str, Any], upstream_model: str) -> JSON:
        """POST /chat/completions and return the parsed JSON."""
        payload = self._payload(body, upstream_model, stream=False)
        headers = JSON_HEADERS if self._no_auth else {**JSON_HEADERS, **await self._auth(upstream_model)}
        response = await self.http.post_checked(
            self._path(upstream_model), payload, headers,
            timeout_s=self.config.timeout.total_s, provider=self.name, model=upstream_model,
            error=self._error)
        try:
            data: JSON = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise UpstreamError("server", f"{self.name} returned invalid JSON",
                                provider=self.name, model=upstream_model) from None
        return data

    async def stream(self, body: Mapping[str, Any], upstream_model: str) -> AsyncIterator[JSON]:
        """POST with stream=true and yield each chunk; raise when the stream breaks or ends early.
        One generator from the body's bytes to the chunks (`sse.sse_data`): a chunk costs no
        line strings, event objects or nested generators on the way (issue 17). A chunk that
        parses to a dict without "error" is taken as it is; anything else goes to `_chunk` (which
        parses it again: the lenient parse, the error event), and `_keep` is only asked where a
        subclass overrides it (str17: no two method calls per chunk)."""
        payload = self._payload(body, upstream_model, stream=True)
        loads, invalid = orjson.loads, orjson.JSONDecodeError
        keep = None if type(self)._keep is OpenAICompatProvider._keep else self._keep
        headers = SSE_HEADERS if self._no_auth else {**SSE_HEADERS, **await self._auth(upstream_model)}
        try:
            async with self.http.stream(self._path(upstream_model), payload,
                                        headers) as response:
                if response.status >= 400:
                    content = await response.read()
                    raise self._error(response.status, content, response.headers, upstream_model)
                async for data in sse_data(response.response.chunk, response.scrub.data,
                                           self.config.timeout.total_s):
                    if data == b"[DONE]":
                        return
                    try:
                        chunk = loads(data)
                    except invalid:
                        chunk = None
                    if type(chunk) is not dict or "error" in chunk:
                        chunk = self._chunk(data, upstream_model)
                    if keep is None or keep(chunk):
                        yield chunk
                raise UpstreamError("connection", f"{self.name} stream ended before [DONE]",
                                    provider=self.name, model=upstream_model)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, self.name, upstream_model) from None

    def _chunk(self, data: bytes, model: str) -> JSON:
        """One event's chunk; an upstream's error event (or undecodable data) raises. (`stream`
        takes a dict without "error" from `orjson.loads` itself, without this call.)"""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = _lenient(data)
            if chunk is None:
                raise UpstreamError("server", f"{self.name} sent an invalid stream chunk",
                                    provider=self.name, model=model) from None
        if isinstance(chunk, dict) and "error" in chunk:
            err = chunk["error"] if isinstance(chunk["error"], dict) else {}
            kind = openai_errors.classify(500, str(err.get("code") or err.get("type") or ""),
                                          str(err.get("message") or ""))
            raise UpstreamError(kind, f"{self.name} stream error: {err.get('message', '')}",
                                provider=self.name, model=model)
        result: JSON = chunk
        return result

    def _keep(self, chunk: JSON) -> bool:
        """Whether a chunk is relayed (all are; Azure drops its filter-results-only chunks)."""
        return True

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

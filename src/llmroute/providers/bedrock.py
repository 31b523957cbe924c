"""The AWS Bedrock adapter: OpenAI chat requests to the Converse API (`POST
/model/{modelId}/converse`) and ConverseStream (`/converse-stream`, answered in the AWS
event-stream framing), every request signed with SigV4, Bedrock's exceptions mapped at the edge.

Auth (`bedrock_auth.py`): botocore's SigV4Auth with credentials from botocore's full chain
(environment, shared files and the entry's `profile`, SSO, credential_process, container and
instance metadata), refreshed off the event loop when they expire, the `bedrock` extra; or, with
`api_key_env` (a Bedrock API key, e.g. `AWS_BEARER_TOKEN_BEDROCK`), `Authorization: Bearer KEY`
instead of a signature. `base_url` defaults to `https://bedrock-runtime.{region}.amazonaws.com`.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
import yarl

from ..errors import UpstreamError
from ..settings import ProviderConfig
from .anthropic_errors import StreamError, WireError
from .anthropic_stream import AnthropicStreamTranslator
from .anthropic_wire import from_anthropic_response
from .base import JSON, parse_retry_after
from .bedrock_auth import EXTRA, botocore_missing, default_base_url, explicit_region
from .bedrock_wire import (
    anthropic_message,
    classify,
    exception_name,
    stream_event,
    to_converse_request,
)
from .eventstream import Decoder, EventStreamError, Message
from .http import TRANSPORT_ERRORS, HTTPTransport, Scrubber, StreamReply, transport_error

if TYPE_CHECKING:
    from .aws_auth import Frozen, Signer


def _signer(config: ProviderConfig, environ: Mapping[str, str]
            ) -> tuple[Signer | None, str | None, str]:
    """The entry's signer and region, or why it has none (said at each request)."""
    region = explicit_region(config, environ)
    if botocore_missing():
        return None, region, f"SigV4 signing needs {EXTRA}"
    from .aws_auth import CredentialError, Signer
    try:
        signer = Signer(environ, config.profile, region)
    except CredentialError as exc:
        return None, region, str(exc)
    return signer, signer.region, ""


class BedrockProvider:
    """One Bedrock Runtime endpoint (a region, or a VPC endpoint URL)."""

    def __init__(self, name: str, config: ProviderConfig, environ: Mapping[str, str]):
        self.name = name
        self.config = config
        key = environ.get(config.api_key_env) if config.api_key_env else None
        self.bearer = bool(config.api_key_env)
        self.signer: Signer | None = None
        self.problem = ""
        if self.bearer:
            self.region = explicit_region(config, environ)
        else:
            self.signer, self.region, self.problem = _signer(config, environ)
        base_url = config.base_url or (default_base_url(self.region) if self.region else "")
        self.http = HTTPTransport(config.model_copy(update={"base_url": base_url}),
                                  {"authorization": f"Bearer {key}"} if key else {})
        self._signed_with: Frozen | None = None

    def _scrub(self, credentials: Frozen) -> None:
        """The secret key is never sent, the session token is: scrub both from what comes back
        (again whenever a refresh brings new ones)."""
        if credentials != self._signed_with:
            self._signed_with = credentials
            found = (credentials.secret_key, credentials.token or "")
            self.http.scrub = Scrubber(tuple(s for s in found if len(s) >= 8))

    async def _signed(self, path: str, payload: bytes, accept: str, model: str
                      ) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": accept}
        if self.bearer:  # the API key rides in the transport's default headers
            return headers
        if self.signer is None or self.region is None:
            why = self.problem or ("Bedrock needs a region (`region:`, AWS_REGION or the "
                                   "profile's `region`)")
            raise UpstreamError("auth", f"{self.name}: {why}", provider=self.name, model=model)
        from .aws_auth import CredentialError
        url = str(yarl.URL(self.http.base_url + path))  # as the transport sends it
        try:
            added, credentials = await self.signer.headers(url, headers, payload, self.region)
        except CredentialError as exc:
            raise UpstreamError("auth", f"{self.name}: {exc}", provider=self.name,
                                model=model) from None
        self._scrub(credentials)
        return {**headers, **added}

    def _request(self, body: Mapping[str, Any], model: str, action: str
                 ) -> tuple[str, bytes]:
        try:
            payload = to_converse_request(body, model)
        except WireError as exc:
            error = UpstreamError("unsupported", f"Bedrock cannot take this request: "
                                  f"{exc.message}", model=model)
            error.param = exc.param
            raise error from None
        return f"/model/{urllib.parse.quote(model, safe='')}/{action}", orjson.dumps(payload)

    def _error(self, status: int, content: bytes, headers: Mapping[str, str], model: str
               ) -> UpstreamError:
        try:
            parsed = orjson.loads(content) if content else {}
        except orjson.JSONDecodeError:
            parsed = {}
        body = parsed if isinstance(parsed, dict) else {}
        message = str(body.get("message") or body.get("Message") or "")[:500]
        name = exception_name({k.lower(): v for k, v in headers.items()}, body)
        kind = classify(status, name, message)
        retry_after = parse_retry_after(headers) if kind in ("rate_limit", "overloaded") else None
        # OpenAI's code for a prompt too long, which clients look for; else Bedrock's name
        code = "context_length_exceeded" if kind == "context_window" else name or None
        return UpstreamError(kind, f"{self.name} returned {status} {name}: {message}",
                             status=status, retry_after=retry_after, provider=self.name,
                             model=model, code=code)

    async def complete(self, body: Mapping[str, Any], upstream_model: str) -> JSON:
        """One Converse call, answered in OpenAI's chat.completion shape."""
        path, payload = self._request(body, upstream_model, "converse")
        headers = await self._signed(path, payload, "application/json", upstream_model)
        response = await self.http.post_checked(
            path, payload, headers, timeout_s=self.config.timeout.total_s, provider=self.name,
            model=upstream_model, error=self._error)
        request_id = response.headers.get("x-amzn-requestid") or f"bedrock{time.time_ns()}"
        try:
            message = anthropic_message(orjson.loads(response.content), request_id)
        except (orjson.JSONDecodeError, ValueError, AttributeError):
            raise UpstreamError("server", f"{self.name} returned an invalid Converse answer",
                                provider=self.name, model=upstream_model) from None
        return from_anthropic_response(message, upstream_model, int(time.time()))

    async def stream(self, body: Mapping[str, Any], upstream_model: str) -> AsyncIterator[JSON]:
        """A ConverseStream call, translated to chat.completion.chunk dicts as events arrive."""
        path, payload = self._request(body, upstream_model, "converse-stream")
        headers = await self._signed(path, payload, "application/vnd.amazon.eventstream",
                                     upstream_model)
        options = body.get("stream_options") or {}
        translator = AnthropicStreamTranslator(upstream_model, int(time.time()),
                                               bool(options.get("include_usage")))
        try:
            async with self.http.stream(path, payload, headers) as response:
                if response.status >= 400:
                    content = await response.read()
                    raise self._error(response.status, content, response.headers,
                                      upstream_model)
                request_id = response.headers.get("x-amzn-requestid") or "bedrock"
                async for chunk in self._chunks(response, translator, upstream_model,
                                                request_id):
                    yield chunk
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, self.name, upstream_model) from None

    async def _chunks(self, response: StreamReply, translator: AnthropicStreamTranslator,
                      model: str, request_id: str) -> AsyncIterator[JSON]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.timeout.total_s
        decoder = Decoder()
        async for data in response.chunks():
            if loop.time() > deadline:
                raise TimeoutError(f"stream ran past its total timeout of "
                                   f"{self.config.timeout.total_s:g}s")
            try:
                for message in decoder.feed(data):
                    for chunk in self._translate(message, translator, model, request_id):
                        yield chunk
            except (EventStreamError, orjson.JSONDecodeError):
                raise UpstreamError("server", f"{self.name} sent an invalid event stream",
                                    provider=self.name, model=model) from None
            if translator.finished:
                return
        raise UpstreamError("connection", f"{self.name} stream ended before its metadata event",
                            provider=self.name, model=model)

    def _translate(self, message: Message, translator: AnthropicStreamTranslator, model: str,
                   request_id: str) -> list[JSON]:
        data = orjson.loads(message.payload) if message.payload else {}
        data = data if isinstance(data, dict) else {}
        if message.headers.get(":message-type") != "event":
            name = message.headers.get(":exception-type") or "internalServerException"
            text = str(data.get("message") or "")[:500]
            raise UpstreamError(classify(200, name, text),
                                f"{self.name} stream error {name}: {text}",
                                provider=self.name, model=model, code=name)
        chunks: list[JSON] = []
        for event, payload in stream_event(message.headers.get(":event-type", ""), data,
                                           request_id):
            try:
                chunks.extend(translator.feed(event, payload))
            except StreamError as exc:
                raise UpstreamError(exc.category, f"{self.name} stream error: {exc}",
                                    provider=self.name, model=model) from None
        return chunks

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

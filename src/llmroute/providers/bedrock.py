"""The AWS Bedrock adapter: OpenAI chat requests to the Converse API (`POST
/model/{modelId}/converse`) and ConverseStream (`/converse-stream`, answered in the AWS
event-stream framing), every request signed with SigV4, Bedrock's exceptions mapped at the edge.

Credentials come from the standard environment variables (`AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); the region from the entry's `region`, else the
`bedrock-runtime.REGION.amazonaws.com` base URL, else `AWS_REGION` / `AWS_DEFAULT_REGION`.
With `api_key_env` (a Bedrock API key, e.g. `AWS_BEARER_TOKEN_BEDROCK`) requests carry
`Authorization: Bearer KEY` instead of a signature.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import yarl

from ..errors import ConfigProblem, UpstreamError
from ..settings import ProviderConfig
from .anthropic_errors import StreamError, WireError
from .anthropic_stream import AnthropicStreamTranslator
from .anthropic_wire import from_anthropic_response
from .aws_sigv4 import Credentials, sign
from .base import JSON, parse_retry_after
from .bedrock_wire import (
    anthropic_message,
    classify,
    exception_name,
    stream_event,
    to_converse_request,
)
from .eventstream import Decoder, EventStreamError, Message
from .http import TRANSPORT_ERRORS, HTTPTransport, Scrubber, StreamReply, transport_error

SERVICE = "bedrock"
_HOST_REGION = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")


def credentials_from(environ: Mapping[str, str]) -> Credentials | None:
    """The AWS credentials in the standard environment variables, if both keys are set."""
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    return Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None)


def region_of(config: ProviderConfig, environ: Mapping[str, str]) -> str | None:
    """The signing region: configured, else in the base URL's host, else the environment's."""
    if config.region:
        return config.region
    found = _HOST_REGION.search(urllib.parse.urlsplit(config.base_url).netloc)
    if found:
        return found.group(1)
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None


def bedrock_problems(name: str, config: ProviderConfig, environ: Mapping[str, str]
                     ) -> list[ConfigProblem]:
    """What `llmroute config check` says about a Bedrock entry: missing credentials or region."""
    problems: list[ConfigProblem] = []
    if config.api_key_env:  # a Bedrock API key: no signing (its env var is checked like others)
        return problems
    if credentials_from(environ) is None:
        problems.append(ConfigProblem(
            f"providers.{name}", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set: every "
            "call to this Bedrock provider will fail (auth)", "export the keys (with "
            "AWS_SESSION_TOKEN for temporary ones); profiles and roles are not read",
            severity="warning"))
    if region_of(config, environ) is None:
        problems.append(ConfigProblem(
            f"providers.{name}.region", "no AWS region to sign requests for", "set `region:`, "
            "use a bedrock-runtime.REGION.amazonaws.com base_url, or set AWS_REGION"))
    return problems


class BedrockProvider:
    """One Bedrock Runtime endpoint (a region, or a VPC endpoint URL)."""

    def __init__(self, name: str, config: ProviderConfig, environ: Mapping[str, str]):
        self.name = name
        self.config = config
        self.credentials = credentials_from(environ)
        self.region = region_of(config, environ)
        key = environ.get(config.api_key_env) if config.api_key_env else None
        self.bearer = bool(config.api_key_env)
        self.http = HTTPTransport(config, {"authorization": f"Bearer {key}"} if key else {})
        # The secret key is never sent, the session token is: scrub both from what comes back.
        if self.credentials is not None:
            found = (self.credentials.secret_access_key, self.credentials.session_token or "")
            self.http.scrub = Scrubber(tuple(s for s in found if len(s) >= 8))

    def _signed(self, path: str, payload: bytes, accept: str, model: str) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": accept}
        if self.bearer:  # the API key rides in the transport's default headers
            return headers
        if self.credentials is None or self.region is None:
            missing = ("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" if self.credentials is None
                       else "a region (`region:` or AWS_REGION)")
            raise UpstreamError("auth", f"{self.name}: Bedrock needs {missing}",
                                provider=self.name, model=model)
        url = str(yarl.URL(self.http.base_url + path))  # as the transport sends it
        added = sign("POST", url, headers, payload, self.credentials, self.region, SERVICE,
                     datetime.now(UTC))
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
        headers = self._signed(path, payload, "application/json", upstream_model)
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
        headers = self._signed(path, payload, "application/vnd.amazon.eventstream",
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

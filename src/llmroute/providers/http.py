"""The HTTP transport every network adapter shares: a pooled keep-alive aiohttp session per
deployment, its timeouts, and the mapping of transport failures to `UpstreamError`.

aiohttp rather than httpx: on the gateway's hot path httpx's connection pool costs about 1.5 ms of CPU
per request at 16 concurrent requests (it scans every pooled connection per request), aiohttp about
0.1 ms (docs/benchmarks.md, "Gateway performance"). Adapters see only this module's small surface:
`post` for a whole answer, `stream` for an answer read line by line.

Two guards live here, so no adapter can forget them: redirects are never followed (the base URL
comes only from config; an upstream cannot send the gateway, or our API key, anywhere else), and
the deployment's own secret header values (the API key) are scrubbed from everything the upstream
answers, should it echo them in an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from ..errors import UpstreamError
from ..settings import ProviderConfig

#: Every failure of the transport itself (no HTTP answer, or a broken one).
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
#: An adapter's map of an error answer (status, body, headers, upstream model) to our error.
ErrorMap = Callable[[int, bytes, Mapping[str, str], str], UpstreamError]
#: Request headers whose values are secrets (an API key, alone or after "Bearer ").
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization",
                            "x-goog-api-key"})
REDACTED = "[redacted]"


class RedirectRefused(aiohttp.ClientError):
    """The upstream answered a redirect; the gateway does not follow it."""


@dataclass(frozen=True)
class Scrubber:
    """Replaces each secret with `REDACTED` in text the upstream sent."""

    secrets: tuple[str, ...]

    @classmethod
    def of(cls, headers: Mapping[str, str]) -> Scrubber:
        """The secrets among request headers: each value's token (after a scheme such as
        "Bearer ", else the whole value): wherever the value is, its token is."""
        found = {value.partition(" ")[2] or value for name, value in headers.items()
                 if name.lower() in SECRET_HEADERS}
        return cls(tuple(sorted((s for s in found if len(s) >= 8), key=len, reverse=True)))

    def text(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def data(self, value: bytes) -> bytes:
        for secret in self.secrets:
            raw = secret.encode()
            if raw in value:
                value = value.replace(raw, REDACTED.encode())
        return value


@dataclass(frozen=True)
class Reply:
    """A whole HTTP answer."""

    status: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True)
class StreamReply:
    """An HTTP answer whose body is read as it arrives."""

    status: int
    headers: Mapping[str, str]
    response: aiohttp.ClientResponse
    scrub: Scrubber = Scrubber(())

    async def read(self) -> bytes:
        """The whole (remaining) body."""
        return self.scrub.data(await self.response.read())

    async def lines(self) -> AsyncIterator[str]:
        """The body's lines as they arrive, without their line endings (any length)."""
        buffer = b""
        async for data in self.response.content.iter_any():
            buffer += data
            if b"\n" not in data:
                continue
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield self.scrub.text(line.rstrip(b"\r").decode("utf-8", "replace"))
        if buffer:
            yield self.scrub.text(buffer.rstrip(b"\r").decode("utf-8", "replace"))


class HTTPTransport:
    """One deployment's connection pool: base URL, default headers, timeouts and limits.

    The session is created on first use inside the running event loop (and again if a later call
    runs on another loop, as the synchronous in-process client's private loop may).
    """

    def __init__(self, config: ProviderConfig, headers: Mapping[str, str]):
        t = config.timeout
        self.base_url = config.base_url.rstrip("/")
        self.headers = {"user-agent": "llmroute", **config.headers, **headers}
        self.scrub = Scrubber.of(self.headers)
        # connect bounds waiting for a pooled connection plus opening one; sock_read bounds every
        # wait for bytes (the first byte, then the gap between chunks), like httpx's read timeout.
        self.timeout = aiohttp.ClientTimeout(total=None, connect=t.connect_s,
                                             sock_connect=t.connect_s, sock_read=t.first_byte_s)
        self.limit = config.max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def session(self) -> aiohttp.ClientSession:
        """The pooled session of the running loop."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.limit, limit_per_host=0,
                                             keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, headers=self.headers, timeout=self.timeout,
                auto_decompress=True, skip_auto_headers=("user-agent",))
            self._loop = loop
        return self._session

    async def post(self, path: str, payload: bytes, headers: Mapping[str, str] | None = None
                   ) -> Reply:
        """POST and read the whole answer."""
        async with self.stream(path, payload, headers) as reply:
            return Reply(reply.status, reply.headers, await reply.read())  # read() scrubs

    async def post_checked(self, path: str, payload: bytes, headers: Mapping[str, str] | None,
                           *, timeout_s: float, provider: str, model: str, error: ErrorMap
                           ) -> Reply:
        """POST within `timeout_s`: a transport failure, or an answer of status 400 or more
        (mapped by the adapter's `error`), raises our error; else the whole answer."""
        try:
            async with asyncio.timeout(timeout_s):
                response = await self.post(path, payload, headers)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider, model) from None
        if response.status >= 400:
            raise error(response.status, response.content, response.headers, model)
        return response

    @asynccontextmanager
    async def stream(self, path: str, payload: bytes, headers: Mapping[str, str] | None = None
                     ) -> AsyncIterator[StreamReply]:
        """POST and hand over the answer before its body is read; a redirect raises
        `RedirectRefused` (a transport error) unread."""
        async with self.session().post(self.base_url + path, data=payload, headers=headers,
                                       allow_redirects=False) as response:
            if 300 <= response.status < 400:
                raise RedirectRefused(f"answered {response.status} (a redirect); redirects are "
                                      "not followed: set the provider's base_url to the API's "
                                      "final address")
            yield StreamReply(response.status, response.headers, response, self.scrub)

    async def aclose(self) -> None:
        """Close the pool (of the loop that opened it; another loop's pool is just dropped)."""
        session, self._session = self._session, None
        if session is None or session.closed:
            return
        if asyncio.get_running_loop() is self._loop:
            await session.close()
        else:
            session.detach()


def transport_error(exc: BaseException, provider: str, model: str) -> UpstreamError:
    """Map a transport failure (no HTTP answer, or a broken one) to an UpstreamError."""
    kind = ("timeout" if isinstance(exc, TimeoutError) else
            "not_found" if isinstance(exc, RedirectRefused) else "connection")
    detail = _describe(exc)
    try:
        said = str(exc)
    except Exception:  # some aiohttp errors format attributes they may lack
        said = ""
    text = f"{detail}: {said}" if said else detail
    return UpstreamError(kind, f"{provider} {kind}: {text}", provider=provider, model=model)


def _describe(exc: BaseException) -> str:
    """A short, stable name for a transport failure."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "ConnectTimeout"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return "ReadTimeout"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "ConnectError"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "RemoteProtocolError"
    return type(exc).__name__

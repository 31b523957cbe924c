"""The HTTP transport every network adapter shares: a pooled keep-alive HTTP/1.1 client per
deployment (`h1`: asyncio + httptools), its timeouts, and the mapping of transport failures to
`UpstreamError`.

`h1` rather than aiohttp (issue 17): measured alone, this transport on aiohttp cost four to five
times the CPU per call it costs on `h1` (one write, httptools' parse: ~0.12 ms against ~0.025 ms),
and httpx's pool far more again (docs/benchmarks.md, "The upstream client"). Adapters see only
this module's small surface: `post` for a whole answer, `stream` for an answer read as it arrives.

Two guards live here, so no adapter can forget them: redirects are never followed (the base URL
comes only from config; an upstream cannot send the gateway, or our API key, anywhere else), and
the deployment's own secret header values (the API key) are scrubbed from everything the upstream
answers, should it echo them in an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ..errors import UpstreamError
from ..frozen import quick_init
from ..settings import ProviderConfig
from . import h1

#: Every failure of the transport itself (no HTTP answer, or a broken one).
TRANSPORT_ERRORS = (h1.H1Error, TimeoutError)
#: An adapter's map of an error answer (status, body, headers, upstream model) to our error.
ErrorMap = Callable[[int, bytes, Mapping[str, str], str], UpstreamError]
#: Request headers whose values are secrets (an API key, alone or after "Bearer ").
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization",
                            "x-goog-api-key"})
REDACTED = "[redacted]"
REDACTED_BYTES = REDACTED.encode()


class RedirectRefused(h1.H1Error):
    """The upstream answered a redirect; the gateway does not follow it."""


@dataclass(frozen=True)
class Scrubber:
    """Replaces each secret with `REDACTED` in text the upstream sent."""

    secrets: tuple[str, ...]
    #: The secrets as UTF-8 bytes, encoded once here rather than per streamed chunk (issue 17).
    raw: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw", tuple(secret.encode() for secret in self.secrets))

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
        # `replace` alone: with no match it returns `value` itself, and its arguments are parsed
        # faster than `find`'s (no `in`: bytes' `in` first tries an int, and raises)
        for raw in self.raw:
            value = value.replace(raw, REDACTED_BYTES)
        return value


@quick_init
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
    response: h1.H1Response
    scrub: Scrubber = Scrubber(())

    async def read(self) -> bytes:
        """The whole (remaining) body."""
        return self.scrub.data(await self.response.read())

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive, unscrubbed (a binary framing, such as Bedrock's)."""
        while (data := await self.response.chunk()) is not None:
            yield data

    async def lines(self) -> AsyncIterator[str]:
        """The body's lines as they arrive, without their line endings (any length)."""
        buffer = b""
        while (data := await self.response.chunk()) is not None:
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

    The pool is created on first use inside the running event loop (and again if a later call runs
    on another loop, as the synchronous in-process client's private loop may).
    """

    def __init__(self, config: ProviderConfig, headers: Mapping[str, str]):
        self.timeout = config.timeout
        self.base_url = config.base_url.rstrip("/")
        self.headers = {"user-agent": "llmroute", **config.headers, **headers}
        self.scrub = Scrubber.of(self.headers)
        self.limit = config.max_connections
        self._pool: h1.H1Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def pool(self) -> h1.H1Pool:
        """The connection pool of the running loop. `connect_s` bounds waiting for a pooled
        connection plus opening one; `first_byte_s` every wait for bytes (the head, then each gap
        between chunks), like httpx's read timeout."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:
            self._pool = h1.H1Pool(self.base_url, self.headers, limit=self.limit,
                                   connect_s=self.timeout.connect_s,
                                   read_s=self.timeout.first_byte_s)
            self._loop = loop
        return self._pool

    async def post(self, path: str, payload: bytes, headers: Mapping[str, str] | None = None,
                   until: float | None = None) -> Reply:
        """POST and read the whole answer (scrubbed); past `until` (the loop's time), a plain
        TimeoutError."""
        response = await self.pool().request(path, payload, headers, until)
        try:
            _refuse_redirect(response.status)
            return Reply(response.status, response.headers, self.scrub.data(await response.read()))
        finally:
            response.release()

    async def post_checked(self, path: str, payload: bytes, headers: Mapping[str, str] | None,
                           *, timeout_s: float, provider: str, model: str, error: ErrorMap
                           ) -> Reply:
        """POST within `timeout_s`: a transport failure, or an answer of status 400 or more
        (mapped by the adapter's `error`), raises our error; else the whole answer."""
        until = asyncio.get_running_loop().time() + timeout_s  # kept by the transport's own timer
        try:
            response = await self.post(path, payload, headers, until)
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
        response = await self.pool().request(path, payload, headers)
        try:
            _refuse_redirect(response.status)
            yield StreamReply(response.status, response.headers, response, self.scrub)
        finally:
            response.release()

    async def aclose(self) -> None:
        """Close the pool's idle connections (those in use close when released)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


def _refuse_redirect(status: int) -> None:
    if 300 <= status < 400:
        raise RedirectRefused(f"answered {status} (a redirect); redirects are not followed: set "
                              "the provider's base_url to the API's final address")


def transport_error(exc: BaseException, provider: str, model: str) -> UpstreamError:
    """Map a transport failure (no HTTP answer, or a broken one) to an UpstreamError."""
    kind = ("timeout" if isinstance(exc, TimeoutError) else
            "not_found" if isinstance(exc, RedirectRefused) else "connection")
    detail = type(exc).__name__  # ConnectTimeout, ReadTimeout, ConnectError, ...
    said = str(exc)
    text = f"{detail}: {said}" if said else detail
    return UpstreamError(kind, f"{provider} {kind}: {text}", provider=provider, model=model)

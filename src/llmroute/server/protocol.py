"""Read limits uvicorn lacks, on its httptools protocol: a request's headers (request line
included) must arrive within `header_timeout_s` and `max_header_bytes`, its body within
`body_timeout_s` after them. A slow-loris client is answered 408 and closed (closed silently when
it sent nothing), one over the header size 431, bytes that are not HTTP 400; all OpenAI-shaped.
A connection holds at most one timer on the event loop, moved lazily: a request only stores its
deadline (a float), and the timer, when it fires early, sleeps again until the current deadline;
so a kept-alive connection's requests cost no timer calls, and a slow client never stalls another
client's request. (The body's size is the app's: `server.max_body_bytes`, 413; the whole
request's time is `resilience.deadline_s`.)

A response's head leaves with its body's first bytes: uvicorn writes a head as soon as it is sent
and the body after, two socket writes where one would do; each costs a system call, and on loopback
the receiver's TCP work and wake-up are charged to the writer (issue 17). `HeadHeld` holds the head
of a `content-length` answer until its body, and a stream's head until its first chunk or the end
of the event loop's turn, whichever comes first (so no stream's head waits on its upstream).
`100 Continue` is written at once, as before."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..errors import InvalidRequestError
from ..settings import ServerConfig

_IDLE, _HEADERS, _BODY, _CLOSED = range(4)
#: Seconds a refused connection stays half-closed, dropping input, before it is closed.
LINGER_S = 2.0
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_CODES = {400: "invalid_http_request", 408: "request_timeout", 431: "request_header_fields_too_large"}


def guarded_protocol(limits: ServerConfig) -> Callable[..., asyncio.Protocol]:
    """The `http` protocol factory to hand uvicorn (picklable, for `--workers`)."""
    return functools.partial(GuardedHttpProtocol, limits=limits)


def error_bytes(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 response carrying our error body, closing the connection."""
    error = InvalidRequestError(message, code=_CODES[status], status=status)
    body = orjson.dumps(error.to_dict())
    return (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % (status, _REASONS[status], len(body))) + body


class HeadHeld:
    """The connection's transport as uvicorn's response cycles see it: a response's head (uvicorn
    has parsed its headers when it writes it) is held and written with the next bytes, the body's:
    with a `content-length` and a body, until they come; chunked (a stream), until the end of this
    turn of the event loop at most. Anything else passes straight through; closing writes a held
    head first."""

    __slots__ = ("head", "protocol", "seen", "transport")

    def __init__(self, transport: asyncio.Transport, protocol: HttpToolsProtocol) -> None:
        self.transport = transport
        self.protocol = protocol
        self.head: bytes | None = None
        self.seen: object = None  # the cycle whose head was written (or held) last

    def write(self, data: bytes) -> None:
        head = self.head
        if head is not None:
            self.head = None
            self.transport.write(head + data)
            return
        cycle = self.protocol.cycle
        if cycle is not self.seen and cycle.response_started:  # this write is the cycle's head
            self.seen = cycle
            chunked = cycle.chunked_encoding
            if chunked:  # a stream: its first chunk usually follows in this turn
                self.head = data
                self.protocol.loop.call_soon(self.flush)
                return
            if chunked is False and cycle.expected_content_length > 0:  # its body follows
                self.head = data
                return
        self.transport.write(data)

    def flush(self) -> None:
        head = self.head
        if head is not None:
            self.head = None
            if not self.transport.is_closing():
                self.transport.write(head)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request already answered."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines and a header size limit."""

    def __init__(self, *args: Any, limits: ServerConfig, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.limits = limits
        self.reading = _IDLE
        self.header_bytes = 0  # bytes received while reading headers (some may be buffered)
        self.header_size = 0  # the request line and the headers parsed so far
        self.deadline = 0.0  # when what is being read must be in (loop time)
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self.out: HeadHeld | None = None  # what the response cycles write to

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.out = HeadHeld(transport, self)
        self._expect(_HEADERS, self.limits.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.reading = _CLOSED
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.reading == _CLOSED:
            return
        if self.reading != _BODY:
            self.header_bytes += len(data)
        try:
            super().data_received(data)
        except _Refused:
            return
        if self.reading == _HEADERS and self.header_bytes > self.limits.max_header_bytes:
            self._too_large()

    def send_400_response(self, msg: str) -> None:
        """What uvicorn answers to bytes that are not HTTP, OpenAI-shaped (not for a request this
        protocol has refused already)."""
        if self.reading != _CLOSED:
            self._refuse(400, f"{msg} (malformed HTTP)")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.header_size = 0
        if self.reading != _HEADERS:
            self._expect(_HEADERS, self.limits.header_timeout_s)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self.header_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.header_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        if self.header_size > self.limits.max_header_bytes:
            self._too_large()
            raise _Refused
        self.header_bytes = 0
        self._expect(_BODY, self.limits.body_timeout_s)
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and self.out is not None:  # None: an upgrade before any request
            cycle.transport = self.out  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        self.reading = _IDLE  # its timer, if still pending, finds nothing to do
        super().on_message_complete()

    def _expect(self, what: int, within_s: float) -> None:
        self.reading = what
        self.deadline = self.loop.time() + within_s
        if self.timer is not None and self.timer_at > self.deadline:
            self._disarm()  # a shorter deadline than the pending timer's (rare)
        if self.timer is None:
            self._arm()

    def _arm(self) -> None:
        self.timer_at = self.deadline
        self.timer = self.loop.call_at(self.deadline, self._check)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check(self) -> None:
        self.timer = None
        if self.reading in (_IDLE, _CLOSED):
            return  # the request was read in time; the next one arms a timer again
        if self.loop.time() < self.deadline:
            self._arm()  # a later request's (or phase's) deadline
            return
        if self.reading == _HEADERS and self.header_bytes == 0:
            self._close()  # nothing asked yet: an idle connection, closed without a word
        elif self.reading == _HEADERS:
            self._refuse(408, f"The request headers did not arrive within "
                              f"{self.limits.header_timeout_s:g} s.")
        elif self.reading == _BODY and not (self.cycle and self.cycle.response_started):
            self._refuse(408, f"The request body did not arrive within "
                              f"{self.limits.body_timeout_s:g} s.")
        elif self.reading == _BODY:
            self._close()

    def _too_large(self) -> None:
        self._refuse(431, f"The request line and headers are over the limit of "
                          f"{self.limits.max_header_bytes} bytes.")

    def _refuse(self, status: int, message: str) -> None:
        """Answer the error, then close lingering: half-close (FIN after the answer) and read and
        drop what the client still sends for `LINGER_S`. Closing at once with unread input makes
        the kernel send a reset, which can destroy the answer before the client reads it."""
        self._disarm()
        self.reading = _CLOSED  # data_received drops whatever comes now
        transport = self.transport
        if transport.is_closing():
            return
        if self.out is not None:
            self.out.flush()  # a head held this turn goes first, as it would have unheld
        transport.write(error_bytes(status, message))
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.loop.call_later(LINGER_S, self._close_lingering)

    def _close_lingering(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _close(self) -> None:
        self._disarm()
        self.reading = _CLOSED
        if not self.transport.is_closing():
            if self.out is not None:
                self.out.flush()
            self.transport.close()

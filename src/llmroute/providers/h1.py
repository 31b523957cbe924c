"""A minimal pooled HTTP/1.1 client on asyncio and httptools, for one origin (issue 17's candidate
for the upstream transport).

One `H1Pool` per deployment: keep-alive connections to its base URL's origin, at most `limit` open,
each request written in one `write` (request line, a precomputed header block, the body), the answer
parsed by httptools (Content-Length, chunked, or until close; gzip/deflate undone when the upstream
sends them unasked). Timeouts: `connect_s` bounds waiting for a pooled connection plus opening one,
`read_s` every wait for bytes (the head, then each gap in the body); a caller's deadline for the
whole call (`until`, on the loop's clock) is kept by the same waits (its expiry raises a plain
`TimeoutError`, as `asyncio.timeout` would have: the connection's one lazy timer serves both, no
timer per request). Failures raise `H1Error` subclasses named like the aiohttp/httpx ones the errors map.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools
import yarl

from ..header_names import ANSWER_NAMES

#: Buffered, unread body bytes above which the socket stops being read (back-pressure).
HIGH_WATER = 256 * 1024
#: Idle pooled connections older than this are closed rather than reused.
KEEPALIVE_S = 30.0
#: Request targets and header blocks remembered per pool (the first ones seen; a signed
#: request's headers differ every time and are built afresh).
CACHED = 64


class H1Error(Exception):
    """A failure of the transport itself (no HTTP answer, or a broken one)."""


class ConnectTimeout(H1Error, TimeoutError):
    """No connection (pooled or new) within `connect_s`."""


class ReadTimeout(H1Error, TimeoutError):
    """No bytes within `read_s`."""


class ConnectError(H1Error):
    """The connection could not be opened."""


class RemoteProtocolError(H1Error):
    """The upstream closed the connection mid-answer or sent something that is not HTTP/1.1."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection and the answer being read on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.deadline = 0.0
        self.total = False  # the deadline is the caller's (`until`), not the read timeout's
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.head_done = False
        self.keep_alive = False
        self.done = False
        self.error: H1Error | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.decoder: zlib._Decompress | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(RemoteProtocolError(f"invalid HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None and self.waiter is None:
            self.timer.cancel()
            self.timer = None
        if not self.done:
            if self.head_done and exc is None and not self.keep_alive and self._until_close():
                self.done = True  # a body framed by neither length nor chunks ends at close
                self._wake()
            else:
                self._fail(RemoteProtocolError("the upstream closed the connection"))

    def _until_close(self) -> bool:
        return ("content-length" not in self.headers
                and "chunked" not in self.headers.get("transfer-encoding", "").lower())

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        key = ANSWER_NAMES.get(name) or name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it at the message's end
        self.head_done = True
        encoding = self.headers.get("content-encoding", "")
        if encoding in ("gzip", "deflate"):
            self.decoder = zlib.decompressobj(31 if encoding == "gzip" else 15)
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.decoder is not None:
            body = self.decoder.decompress(body)
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.done = True
        self._wake()

    def _fail(self, error: H1Error) -> None:
        self.error = error
        self.done = True
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, read_s: float, until: float | None = None) -> None:
        """Until the parser makes progress (a head, body bytes, the end, or an error), at most
        `read_s`, and not past `until` (the loop's time; then a plain TimeoutError). One timer per
        connection, moved lazily: a wait only sets the deadline, and the timer, when it fires
        before the deadline, re-arms itself for it (a stream's chunks cost no timer each); it is
        moved earlier only for a deadline before it."""
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        deadline = loop.time() + read_s
        self.total = until is not None and until <= deadline
        self.deadline = deadline = until if until is not None and self.total else deadline
        if self.timer is not None and deadline < self.timer_at:
            self.timer.cancel()
            self.timer = None
        if self.timer is None:
            self.timer = loop.call_at(deadline, self._expire)
            self.timer_at = deadline
        try:
            await waiter
        finally:
            self.waiter = None

    def _expire(self) -> None:
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # not waiting: the next wait arms a timer again
        loop = waiter.get_loop()
        if loop.time() < self.deadline:
            self.timer = loop.call_at(self.deadline, self._expire)
            self.timer_at = self.deadline
        elif self.total:
            waiter.set_exception(TimeoutError())
        else:
            waiter.set_exception(ReadTimeout("no bytes from the upstream within the read timeout"))

    def take(self) -> bytes:
        """The body bytes buffered so far (resuming the socket if it was paused)."""
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        if self.buffered > HIGH_WATER and self.transport is not None and not self.closed:
            self.transport.resume_reading()
        self.buffered = 0
        return data


class H1Response:
    """An answer whose body is read as it arrives; `release` hands the connection back."""

    def __init__(self, pool: H1Pool, conn: _Conn, read_s: float, until: float | None = None):
        self.pool = pool
        self.conn = conn
        self.read_s = read_s
        self.until = until
        self.status = conn.status
        self.headers: Mapping[str, str] = conn.headers

    async def chunk(self) -> bytes | None:
        """The next body bytes as they arrive; None at the end."""
        conn = self.conn
        while not conn.chunks:
            if conn.error is not None:
                raise conn.error
            if conn.done:
                return None
            await conn.wait(self.read_s, self.until)
        return conn.take()

    async def read(self) -> bytes:
        """The whole (remaining) body: `chunk` until None, its loop inline (issue 17: no
        coroutine per chunk; an answer that came with its head is read without waiting)."""
        conn = self.conn
        parts: list[bytes] = []
        while True:
            while not conn.chunks:
                if conn.error is not None:
                    raise conn.error
                if conn.done:
                    return b"".join(parts)
                await conn.wait(self.read_s, self.until)
            parts.append(conn.take())

    def release(self) -> None:
        """Back to the pool when the answer was read to its end on a keep-alive connection."""
        conn = self.conn
        reuse = conn.done and conn.error is None and not conn.closed and not conn.chunks \
            and conn.keep_alive
        self.pool.release(conn, reuse)


class H1Pool:
    """Keep-alive connections to one origin (scheme://host:port), at most `limit` open at once."""

    def __init__(self, base_url: str, headers: Mapping[str, str], *, limit: int,
                 connect_s: float, read_s: float):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_url = base_url
        self.targets: dict[str, bytes] = {}
        self.heads: dict[tuple[tuple[str, str], ...], bytes] = {}
        self.ssl: ssl.SSLContext | None = (ssl.create_default_context()
                                           if parts.scheme == "https" else None)
        self.headers = {name.lower(): value for name, value in headers.items()}
        self.headers.setdefault("host", parts.netloc.rpartition("@")[2])
        self.head = _header_block(self.headers)
        self.limit = limit
        self.connect_s = connect_s
        self.read_s = read_s
        self.idle: deque[_Conn] = deque()
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    async def request(self, path: str, body: bytes, headers: Mapping[str, str] | None = None,
                      until: float | None = None) -> H1Response:
        """Send a POST and wait for the answer's head; the caller reads the body, then releases.
        `until`: the whole call's deadline (the loop's time), this wait's and the body's."""
        message = b"".join((b"POST ", self._target(path), b" HTTP/1.1\r\n", self._head(headers),
                            b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body))
        conn = self._pooled()  # a live pooled connection needs no coroutine of `acquire`'s
        if conn is None:
            conn = await self.acquire(until)
        try:
            assert conn.transport is not None
            conn.transport.write(message)
            while not conn.head_done:
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self.read_s, until)
        except BaseException:
            self.release(conn, False)
            raise
        return H1Response(self, conn, self.read_s, until)

    def _target(self, path: str) -> bytes:
        """The request target as aiohttp (and so a SigV4 signature over it) would send it."""
        target = self.targets.get(path)
        if target is None:
            url = yarl.URL(self.base_url + path)
            target = (url.raw_path_qs or "/").encode()
            if len(self.targets) < CACHED:
                self.targets[path] = target
        return target

    def _head(self, headers: Mapping[str, str] | None) -> bytes:
        """The header block: the defaults, overridden by this request's headers."""
        if not headers:
            return self.head
        key = tuple(headers.items())
        head = self.heads.get(key)
        if head is None:
            head = _header_block({**self.headers,
                                  **{name.lower(): value for name, value in headers.items()}})
            if len(self.heads) < CACHED:  # bounded: a signature's headers differ every time
                self.heads[key] = head
        return head

    def _pooled(self) -> _Conn | None:
        """The most recently pooled live connection (reset for a new answer), None when no idle
        one is live (those that are not are discarded on the way)."""
        now = time.monotonic()
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_S:
                conn._reset()
                return conn
            self._discard(conn)
        return None

    async def acquire(self, until: float | None = None) -> _Conn:
        """A pooled live connection, else a new one (waiting while `limit` are open), within
        `connect_s` and not past `until` (then a plain TimeoutError)."""
        conn = self._pooled()
        if conn is not None:
            return conn
        limit_s = self.connect_s
        left = None if until is None else until - asyncio.get_running_loop().time()
        total = left is not None and left < limit_s
        if left is not None and total:
            limit_s = max(0.0, left)
        try:
            async with asyncio.timeout(limit_s):
                while self.open >= self.limit:
                    waiter = asyncio.get_running_loop().create_future()
                    self.waiters.append(waiter)
                    try:
                        await waiter
                    finally:
                        if waiter in self.waiters:
                            self.waiters.remove(waiter)
                    if self.idle:
                        return await self.acquire(until)
                self.open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self.open -= 1
                    self._notify()
                    raise
        except TimeoutError as exc:
            if isinstance(exc, H1Error):
                raise
            if total:
                raise TimeoutError() from None
            raise ConnectTimeout(f"no connection to {self.host}:{self.port} within "
                                 f"{self.connect_s} s") from None

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(
                _Conn, self.host, self.port, ssl=self.ssl,
                server_hostname=self.host if self.ssl is not None else None)
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        return conn

    def release(self, conn: _Conn, reuse: bool) -> None:
        """Hand a connection back: pooled when `reuse`, else closed."""
        if reuse and not conn.closed and not self.closed:
            conn.idle_since = time.monotonic()
            self.idle.append(conn)
        else:
            self._discard(conn)
        self._notify()

    def _discard(self, conn: _Conn) -> None:
        conn.closed = True
        if conn.transport is not None:
            conn.transport.close()
        self.open -= 1

    def _notify(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        """Close every pooled connection (those in use close when released)."""
        self.closed = True
        while self.idle:
            self._discard(self.idle.pop())


def _header_block(headers: Mapping[str, str]) -> bytes:
    """Headers as sent: `name: value\\r\\n` each, CR and LF refused (no header injection)."""
    lines = []
    for name, value in headers.items():
        if name == "content-length":
            continue
        if any(c in name or c in value for c in "\r\n"):
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode()

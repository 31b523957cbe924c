"""The pooled HTTP/1.1 client (`h1`) against raw loopback servers: every body framing, keep-alive
reuse, the pool's limit, broken answers, and the request as sent."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from llmroute.providers import h1

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head, await reader.readexactly(length)


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    yield start
    for server in servers:
        server.close()


def _pool(base: str, limit: int = 10, read_s: float = 5.0) -> h1.H1Pool:
    return h1.H1Pool(base, {"Authorization": "Bearer k"}, limit=limit, connect_s=0.3,
                     read_s=read_s)


async def _body(pool: h1.H1Pool, path: str = "/x", **headers: str) -> tuple[int, bytes]:
    response = await pool.request(path, b'{"a":1}', headers)
    try:
        return response.status, await response.read()
    finally:
        response.release()


@pytest.mark.asyncio
async def test_keep_alive_reuses_one_connection_and_sends_the_request_as_built(serve) -> None:
    seen: list[tuple[bytes, bytes]] = []
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        for _ in range(3):
            seen.append(await _read_request(reader))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    pool = _pool(await serve(handler))
    assert [await _body(pool) for _ in range(2)] == [(200, b"ok")] * 2
    assert await _body(pool, "/y?q=a b", **{"X-Extra": "1"}) == (200, b"ok")
    pool.close()
    assert connections == 1
    head, body = seen[2]
    assert head.startswith(b"POST /v1/y?q=a+b HTTP/1.1\r\n") and body == b'{"a":1}'
    lines = head.lower().split(b"\r\n")
    assert b"authorization: bearer k" in lines and b"x-extra: 1" in lines
    assert b"content-length: 7" in lines and any(line.startswith(b"host: 127.0.0.1:")
                                                  for line in lines)


@pytest.mark.asyncio
async def test_chunked_until_close_and_gzip_bodies(serve) -> None:
    # each answer says `Connection: close` and the server closes: the next call opens a new one
    packed = gzip.compress(b"zipped")

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await _read_request(reader)
        if b"/chunked" in head:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                         b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        elif b"/gzip" in head:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nConnection: close\r\n"
                         b"Content-Length: "
                         + str(len(packed)).encode() + b"\r\n\r\n" + packed)
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end")
        await writer.drain()
        writer.close()

    pool = _pool(await serve(handler))
    assert await _body(pool, "/chunked") == (200, b"abcde")
    assert await _body(pool, "/gzip") == (200, b"zipped")
    assert await _body(pool, "/close") == (200, b"to the end")
    pool.close()


@pytest.mark.asyncio
async def test_a_body_cut_short_is_a_protocol_error(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        await writer.drain()
        writer.close()

    pool = _pool(await serve(handler))
    with pytest.raises(h1.RemoteProtocolError):
        await _body(pool)
    assert pool.open == 0  # the broken connection is not pooled
    pool.close()


@pytest.mark.asyncio
async def test_garbage_is_a_protocol_error(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()

    pool = _pool(await serve(handler))
    with pytest.raises(h1.RemoteProtocolError):
        await _body(pool)
    pool.close()


@pytest.mark.asyncio
async def test_a_gap_in_the_body_longer_than_read_s_is_a_read_timeout(serve) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
        await writer.drain()
        await asyncio.sleep(2)

    pool = _pool(await serve(handler), read_s=0.2)
    response = await pool.request("/x", b"")
    assert await response.chunk() == b"first"
    with pytest.raises(h1.ReadTimeout):
        await response.chunk()
    response.release()
    assert pool.open == 0
    pool.close()


@pytest.mark.asyncio
async def test_read_s_bounds_each_gap_not_the_whole_body(serve) -> None:
    """The connection's one timer moves with each wait: a body that keeps arriving within read_s
    outlives several read_s, on one connection and then again on it once pooled; a gap still
    times out."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for gap in (0.0, 0.4):  # the second request's pause exceeds read_s
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
            for _ in range(8):
                await asyncio.sleep(0.06)
                writer.write(b"x")
                await writer.drain()
                if gap:
                    await asyncio.sleep(gap)

    pool = _pool(await serve(handler), read_s=0.2)
    started = asyncio.get_running_loop().time()
    assert await _body(pool) == (200, b"x" * 8)
    assert asyncio.get_running_loop().time() - started > 0.4  # over two read_s in all
    assert pool.open == 1 and len(pool.idle) == 1
    response = await pool.request("/x", b"")
    assert await response.chunk() == b"x"
    with pytest.raises(h1.ReadTimeout):
        await response.chunk()
    response.release()
    pool.close()


@pytest.mark.asyncio
async def test_the_pool_limit_queues_then_times_out_as_a_connect_timeout(serve) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await _read_request(reader)
            await release.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    pool = _pool(await serve(handler), limit=1)
    first = asyncio.create_task(_body(pool))
    await asyncio.sleep(0.05)
    with pytest.raises(h1.ConnectTimeout):  # connect_s bounds the wait for a free connection
        await _body(pool)
    second = asyncio.create_task(_body(pool))
    await asyncio.sleep(0.05)
    release.set()
    assert await first == (200, b"ok") and await second == (200, b"ok")
    assert pool.open == 1
    pool.close()


def test_header_values_with_line_breaks_are_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        h1.H1Pool("http://127.0.0.1:9", {"x-a": "1\r\nx-b: 2"}, limit=1, connect_s=1, read_s=1)


@pytest.mark.asyncio
async def test_https_verifies_the_certificate_and_keeps_the_connection(tmp_path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"5\r\nhello\r\n0\r\n\r\n")
            await writer.drain()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
    base = f"https://localhost:{server.sockets[0].getsockname()[1]}/v1"
    with pytest.raises(h1.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await _body(_pool(base))  # a self-signed certificate is not trusted by default
    pool = _pool(base)
    assert pool.ssl is not None
    pool.ssl.load_verify_locations(cert)
    assert [await _body(pool) for _ in range(2)] == [(200, b"hello")] * 2
    assert connections == 1  # the refused handshake never reached it; one kept alive for both
    pool.close()
    server.close()


@pytest.mark.asyncio
async def test_a_body_larger_than_the_high_water_mark_arrives_whole(serve) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB: reading pauses and resumes the socket on the way

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(big)).encode()
                         + b"\r\n\r\n" + big)
            await writer.drain()

    pool = _pool(await serve(handler))
    response = await pool.request("/x", b"")
    await asyncio.sleep(0.2)  # let more than the high-water mark arrive unread
    assert response.conn.buffered <= h1.HIGH_WATER + 256 * 1024
    assert await response.read() == big
    response.release()
    assert await _body(pool) == (200, big)  # and the connection is reused after it
    assert pool.open == 1
    pool.close()


@pytest.mark.asyncio
async def test_the_callers_deadline_cuts_a_body_that_keeps_arriving(serve) -> None:
    """`until` bounds the whole call (head and body) with the connection's own timer: a body
    arriving within read_s each time is still cut there, with a plain TimeoutError (what
    `asyncio.timeout` raised before), and the connection is not pooled."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            await asyncio.sleep(0.05)
            writer.write(b"x")
            await writer.drain()

    pool = _pool(await serve(handler), read_s=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await pool.request("/x", b"", None, started + 0.4)
    with pytest.raises(TimeoutError) as caught:
        await response.read()
    assert type(caught.value) is TimeoutError  # not a ReadTimeout: the deadline, not a gap
    assert 0.35 < loop.time() - started < 1.0
    response.release()
    assert pool.open == 0 and not pool.idle
    pool.close()


@pytest.mark.asyncio
async def test_a_deadline_earlier_than_the_armed_timer_moves_it(serve) -> None:
    """The lazy timer was armed for a long read_s by an earlier request on the connection; a
    later call's nearer deadline still fires on time, and a later deadline than read_s leaves
    the read timeout in charge."""
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await _read_request(reader)
        await asyncio.sleep(3)

    pool = _pool(await serve(handler), read_s=5.0)
    assert await _body(pool) == (200, b"ok")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError) as caught:
        await pool.request("/x", b"", None, started + 0.2)
    assert type(caught.value) is TimeoutError
    assert loop.time() - started < 1.0
    pool.close()
    late = _pool(await serve(handler), read_s=0.2)
    assert await _body(late) == (200, b"ok")
    with pytest.raises(h1.ReadTimeout):
        await late.request("/x", b"", None, loop.time() + 10)
    late.close()


@pytest.mark.asyncio
async def test_the_callers_deadline_bounds_the_wait_for_a_connection(serve) -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await release.wait()

    pool = _pool(await serve(handler), limit=1)  # connect_s 0.3
    first = asyncio.create_task(pool.request("/x", b""))
    await asyncio.sleep(0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError) as caught:  # the deadline before connect_s: its own error
        await pool.request("/x", b"", None, started + 0.1)
    assert type(caught.value) is TimeoutError and loop.time() - started < 0.25
    with pytest.raises(h1.ConnectTimeout):  # connect_s before the deadline: as before
        await pool.request("/x", b"", None, loop.time() + 5)
    release.set()
    first.cancel()
    pool.close()


async def _chunk_loop(response: h1.H1Response) -> bytes:
    """`H1Response.read` as it was before cut17e: `chunk` until None."""
    parts = []
    while (data := await response.chunk()) is not None:
        parts.append(data)
    return b"".join(parts)


#: What the parser reports, in order: body bytes, the end, a broken answer, or a turn of the loop.
SCRIPTS = [
    [("body", b"a"), ("done", b"")],                                  # all there before reading
    [("tick", b""), ("body", b"a"), ("tick", b""), ("body", b"bc"), ("done", b"")],
    [("body", b"a"), ("body", b"b"), ("tick", b""), ("tick", b""), ("done", b"")],
    [("done", b"")],                                                  # an empty body
    [("body", b"a"), ("tick", b""), ("fail", b"")],                   # cut short after bytes
    [("fail", b"")],
    [("tick", b""), ("body", b"xyz"), ("fail", b""), ("body", b"late")],
]


@pytest.mark.asyncio
@pytest.mark.parametrize("script", SCRIPTS)
async def test_read_is_the_chunk_loop(script: list[tuple[str, bytes]]) -> None:
    """cut17e: `read` runs `chunk`'s loop inline: the same bytes, the same error, at the same
    point, however the body's pieces, its end or a failure arrive around the reads."""

    async def run(reader: Callable[[h1.H1Response], Awaitable[bytes]]) -> object:
        conn = h1._Conn()
        conn.head_done = True
        response = h1.H1Response(_pool("http://127.0.0.1:9/v1"), conn, read_s=5.0)
        events = list(script)

        def feed() -> None:  # the parser's callbacks, up to the next turn of the loop
            while events:
                kind, data = events.pop(0)
                if kind == "tick":
                    asyncio.get_running_loop().call_soon(feed)
                    return
                if kind == "body":
                    conn.on_body(data)
                elif kind == "done":
                    conn.on_message_complete()
                else:
                    conn._fail(h1.RemoteProtocolError("the upstream closed the connection"))

        feed()
        try:
            return await reader(response)
        except h1.H1Error as exc:
            return type(exc), str(exc), conn.chunks

    assert await run(h1.H1Response.read) == await run(_chunk_loop)

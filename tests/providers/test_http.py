"""The shared HTTP transport against a real loopback server: line framing of streamed bodies, timeouts,
refused connections, and one pool per event loop."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from llmroute.errors import UpstreamError
from llmroute.providers.http import TRANSPORT_ERRORS, HTTPTransport, transport_error
from llmroute.settings import ProviderConfig

BIG = "x" * 200_000  # longer than aiohttp's default line limit (64 KiB)


async def _framed(request: web.Request) -> web.StreamResponse:
    """Lines split across writes at awkward places, CRLF and LF endings, a 200 kB line, no final
    newline."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for part in (b"data: one\r", b"\n\r\ndata: t", b"wo\n\n", f"data: {BIG}\n\n".encode(),
                 b"data: \xc3", b"\xa9t\xc3\xa9\n\ndata: last"):
        await response.write(part)
        await asyncio.sleep(0.005)
    return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(2)
    return web.json_response({})


async def _echo_headers(request: web.Request) -> web.Response:
    auth = request.headers.get("authorization") or ""
    return web.json_response({"auth": auth, "auth_reversed": auth[::-1],
                              "agent": request.headers.get("user-agent"),
                              "body": (await request.read()).decode()})


async def _moved(request: web.Request) -> web.Response:
    raise web.HTTPTemporaryRedirect("/echo")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/framed", _framed)
    app.router.add_post("/slow", _slow)
    app.router.add_post("/echo", _echo_headers)
    app.router.add_post("/moved", _moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _transport(base_url: str, **timeout: float) -> HTTPTransport:
    config = ProviderConfig(type="openai", base_url=base_url + "/", timeout=timeout or {})
    return HTTPTransport(config, {"authorization": "Bearer s3cret-value"})


@pytest.mark.asyncio
async def test_streamed_lines_are_framed_whatever_the_packet_boundaries(server: str) -> None:
    http = _transport(server)
    async with http.stream("/framed", b"{}") as reply:
        assert reply.status == 200
        lines = [line async for line in reply.lines()]
    await http.aclose()
    assert lines == ["data: one", "", "data: two", "", f"data: {BIG}", "", "data: été", "",
                     "data: last"]


@pytest.mark.asyncio
async def test_post_sends_the_body_and_default_headers(server: str) -> None:
    http = _transport(server)
    reply = await http.post("/echo", b'{"a": 1}', {"content-type": "application/json"})
    await http.aclose()
    assert reply.status == 200
    # the key arrived (reversed, it passes), and echoed as it is, it is scrubbed on the way back
    assert json.loads(reply.content) == {"auth": "Bearer [redacted]",
                                         "auth_reversed": "eulav-terc3s reraeB",
                                         "agent": "llmroute", "body": '{"a": 1}'}


@pytest.mark.asyncio
async def test_a_redirect_is_refused_not_followed(server: str) -> None:
    http = _transport(server)
    with pytest.raises(TRANSPORT_ERRORS) as caught:
        await http.post("/moved", b"{}")
    await http.aclose()
    error = transport_error(caught.value, "p", "m")
    assert error.kind == "not_found" and "not followed" in error.message


@pytest.mark.asyncio
async def test_a_silent_upstream_is_a_timeout(server: str) -> None:
    http = _transport(server, first_byte_s=0.2)
    with pytest.raises(TRANSPORT_ERRORS) as caught:
        await http.post("/slow", b"{}")
    await http.aclose()
    error = transport_error(caught.value, "p", "m")
    assert error.kind == "timeout" and "ReadTimeout" in error.message


@pytest.mark.asyncio
async def test_a_refused_connection_is_a_connection_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    http = _transport(f"http://127.0.0.1:{port}")
    with pytest.raises(TRANSPORT_ERRORS) as caught:
        await http.post("/x", b"{}")
    await http.aclose()
    error = transport_error(caught.value, "p", "m")
    assert error.kind == "connection" and "ConnectError" in error.message


def test_each_event_loop_gets_its_own_pool() -> None:
    http = _transport("http://127.0.0.1:9")

    async def session_id() -> int:
        return id(http.pool())

    with asyncio.Runner() as one:
        first = one.run(session_id())
        assert one.run(session_id()) == first  # the same loop reuses its pool
        with asyncio.Runner() as two:
            assert two.run(session_id()) != first
            two.run(http.aclose())


@pytest.mark.asyncio
async def test_total_s_cuts_the_call_with_the_same_error_as_before(server: str) -> None:
    """post_checked's `timeout_s` is kept by the transport's own timer (no asyncio.timeout per
    call): the error is the one the wrapping timeout gave, a timeout named TimeoutError."""
    http = _transport(server, first_byte_s=5)

    def never(status: int, content: bytes, headers: object, model: str) -> UpstreamError:
        raise AssertionError("no answer is expected")

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(UpstreamError) as caught:
        await http.post_checked("/slow", b"{}", None, timeout_s=0.2, provider="p", model="m",
                                error=never)
    await http.aclose()
    assert 0.15 < loop.time() - started < 1.5
    assert caught.value.kind == "timeout" and caught.value.message == "p timeout: TimeoutError"

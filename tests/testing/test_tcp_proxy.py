"""`TcpProxy` in front of a loopback echo server: forwards, refuses while cut, swallows while hanging,
and forwards again on the same port after `restore()`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from llmroute.testing.tcp_proxy import TcpProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest_asyncio.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    async with TcpProxy("127.0.0.1", server.sockets[0].getsockname()[1]) as p:
        yield p
    server.close()


async def roundtrip(port: int, payload: bytes, timeout: float = 1.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    finally:
        writer.close()


@pytest.mark.asyncio
async def test_forwards_refuses_when_cut_and_forwards_again_on_the_same_port(proxy: TcpProxy) -> None:
    port = proxy.port
    assert await roundtrip(port, b"hello") == b"hello"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"a")
    assert await reader.readexactly(1) == b"a"
    await proxy.cut()
    assert await asyncio.wait_for(reader.read(10), 1.0) == b""  # the open connection was dropped
    writer.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await proxy.restore()
    assert proxy.port == port
    assert await roundtrip(port, b"again") == b"again"


@pytest.mark.asyncio
async def test_hang_swallows_until_restored(proxy: TcpProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    await proxy.hang()
    writer.write(b"lost")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(10), 0.2)
    with pytest.raises(TimeoutError):  # new connections are accepted but go nowhere
        await roundtrip(proxy.port, b"x", timeout=0.2)
    await proxy.restore()
    assert await asyncio.wait_for(reader.read(10), 1.0) == b""  # out of step: dropped
    writer.close()
    assert await roundtrip(proxy.port, b"back") == b"back"

"""`TcpProxy`: a loopback TCP forwarder that tests put between a client and a server (Redis, an
upstream) to make the server go away and come back. `cut()` drops every connection and refuses new
ones (connection refused), `hang()` keeps accepting but forwards nothing (a black hole: clients wait
for their timeouts), `restore()` forwards again on the same port.

    async with TcpProxy("127.0.0.1", 6379) as proxy:
        state = RedisState(f"redis://127.0.0.1:{proxy.port}")
        await proxy.cut(); ...; await proxy.restore()
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Literal

Mode = Literal["open", "hang", "cut"]

_CHUNK = 64 * 1024


class _Link:
    """One client connection and its upstream. Once it has swallowed data (hang), it is out of step
    with both ends, so it is closed when the proxy is restored."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.swallowed = False
        self.tasks: list[asyncio.Task[None]] = []

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                writer.close()
        for task in self.tasks:
            task.cancel()


class TcpProxy:
    """Forward 127.0.0.1:`port` (chosen on first `start`, kept after) to `target_host:target_port`."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.mode: Mode = "cut"
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    async def start(self) -> None:
        """Listen (again, on the same port) and forward."""
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self.port)
            self.port = self._server.sockets[0].getsockname()[1]
        self.mode = "open"

    async def restore(self) -> None:
        """Forward again after `cut()` or `hang()`; connections that swallowed data are dropped."""
        for link in [link for link in self._links if link.swallowed]:
            self._drop(link)
        await self.start()

    async def cut(self) -> None:
        """Drop every connection and stop listening: new connections are refused."""
        self.mode = "cut"
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in list(self._links):
            self._drop(link)
        if server is not None:
            await server.wait_closed()

    async def hang(self) -> None:
        """Keep connections open and accept new ones, but forward nothing in either direction."""
        await self.start()
        self.mode = "hang"

    async def stop(self) -> None:
        """Close everything (same as `cut`)."""
        await self.cut()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def _drop(self, link: _Link) -> None:
        link.close()
        self._links.discard(link)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(writer)
        self._links.add(link)
        try:
            if self.mode == "hang":
                link.swallowed = True
                await self._swallow(reader)
                return
            up_reader, link.upstream = await asyncio.open_connection(*self.target)
            link.tasks = [asyncio.create_task(self._pump(reader, link.upstream, link)),
                          asyncio.create_task(self._pump(up_reader, writer, link))]
            await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        except OSError:
            pass
        finally:
            self._drop(link)

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(_CHUNK):
            pass

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(_CHUNK):
                if self.mode != "open" or link.swallowed:
                    link.swallowed = True
                    continue
                writer.write(data)
                await writer.drain()

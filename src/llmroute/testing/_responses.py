"""ASGI responses for the misbehaving paths: SSE streams that can be slowed, cut or stalled,
hangs, and dropped connections."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llmroute.testing._server import ABORT_KEY, RESET_KEY


class ConnectionAbortedByFake(Exception):
    """Raised to make the server drop the connection when it cannot be closed directly
    (only off uvicorn's h11 protocol; before any response uvicorn then answers 500 instead)."""


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class _Conn:
    """One client connection, watched for disconnect and for server shutdown."""

    def __init__(self, scope: Scope, receive: Receive, stop: asyncio.Event) -> None:
        self._scope = scope
        self._gone = asyncio.ensure_future(_wait_disconnect(receive))
        self._stopping = asyncio.ensure_future(stop.wait())

    @property
    def gone(self) -> bool:
        return self._gone.done() or self._stopping.done()

    async def sleep(self, seconds: float) -> bool:
        """Sleep; False when the client left or the server is stopping meanwhile."""
        await asyncio.wait({self._gone, self._stopping}, timeout=seconds,
                           return_when=asyncio.FIRST_COMPLETED)
        return not self.gone

    async def wait_gone(self) -> None:
        await asyncio.wait({self._gone, self._stopping}, return_when=asyncio.FIRST_COMPLETED)

    async def abort(self, *, reset: bool = False) -> None:
        """Close the TCP connection now, whatever was (not) sent; with `reset`, by an RST."""
        close = self._scope.get(RESET_KEY if reset else ABORT_KEY)
        if close is None:
            raise ConnectionAbortedByFake
        close()
        # Let uvicorn see the disconnect, so it does not try to answer for us.
        await asyncio.wait({self._gone}, timeout=1.0)

    def close(self) -> None:
        self._gone.cancel()
        self._stopping.cancel()


@dataclass(frozen=True)
class StreamPlan:
    """What an SSE response sends, and how it ends ('end': cleanly; 'abort': drop the socket;
    'hang': stall until the client leaves or the server stops, then drop)."""

    frames: Sequence[bytes]
    then: Literal["end", "abort", "hang"] = "end"
    delay_s: float = 0.0
    first_delay_s: float = 0.0


class StreamResponse(Response):
    """An SSE response following a `StreamPlan`."""

    media_type = "text/event-stream"

    def __init__(self, plan: StreamPlan, stop: asyncio.Event, headers: Mapping[str, str]) -> None:
        self.status_code = 200
        self.background = None
        self._plan = plan
        self._stop = stop
        self.init_headers({"cache-control": "no-cache", **headers})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = _Conn(scope, receive, self._stop)
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": self.raw_headers})
            if not await self._send_frames(conn, send):
                await conn.abort()
            elif self._plan.then == "end":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            else:
                if self._plan.then == "hang":
                    await conn.wait_gone()
                await conn.abort()
        finally:
            conn.close()

    async def _send_frames(self, conn: _Conn, send: Send) -> bool:
        plan = self._plan
        for index, frame in enumerate(plan.frames):
            delay = plan.first_delay_s if index == 0 else plan.delay_s
            if (delay > 0 and not await conn.sleep(delay)) or conn.gone:
                return False
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        return True


class HangResponse(Response):
    """Never answers: waits for the client to leave or the server to stop, then drops."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = _Conn(scope, receive, self._stop)
        try:
            await conn.wait_gone()
            await conn.abort()
        finally:
            conn.close()


class AbortResponse(Response):
    """Closes the connection without sending any response (with `reset`, by a TCP RST)."""

    def __init__(self, stop: asyncio.Event, *, reset: bool = False) -> None:
        self._stop = stop
        self._reset = reset

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        conn = _Conn(scope, receive, self._stop)
        try:
            await conn.abort(reset=self._reset)
        finally:
            conn.close()

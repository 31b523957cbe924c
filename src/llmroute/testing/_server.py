"""Serve an ASGI app with uvicorn on 127.0.0.1:<free port> from a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Scope key holding a callable that closes the request's TCP connection at once.
ABORT_KEY = "llmroute.testing.abort"
#: Scope key holding a callable that resets the request's TCP connection (RST, not FIN).
RESET_KEY = "llmroute.testing.reset"


def _resetter(transport: Any) -> Callable[[], None]:
    """Close `transport` with an RST: SO_LINGER on with a zero timeout, then close."""

    def reset() -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.close()

    return reset


class _QuietConfig(uvicorn.Config):
    """A uvicorn config that leaves the process's logging configuration alone."""

    def configure_logging(self) -> None:
        return None


class _QuietH11(H11Protocol):
    """uvicorn's h11 protocol without access logging (it logs whenever any handler exists)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


class _ExposeAbort:
    """Put the connection's `transport.close` into the scope, so a handler can drop the socket
    without a response (uvicorn's h11 `send` is a bound method of an object with `transport`)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            close = getattr(transport, "close", None)
            if close is not None:
                scope[ABORT_KEY] = close
                scope[RESET_KEY] = _resetter(transport)
        await self._app(scope, receive, send)


class ServerThread:
    """uvicorn running `app` in a daemon thread with its own event loop."""

    def __init__(self, app: ASGIApp, *, port: int = 0, graceful_timeout_s: float = 0.5) -> None:
        config = _QuietConfig(
            _ExposeAbort(app), host="127.0.0.1", port=port, http=_QuietH11, ws="none",
            loop="asyncio", lifespan="off", access_log=False, proxy_headers=False,
            server_header=False, log_config=None, log_level=None,
            # typed int, but handed to asyncio.wait_for, which takes fractions of a second
            timeout_graceful_shutdown=max(graceful_timeout_s, 0.01),  # type: ignore[arg-type]
        )
        self._graceful_timeout_s = graceful_timeout_s
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = port

    @property
    def stop_event(self) -> asyncio.Event:
        """Set (in the server's loop) when the server starts shutting down."""
        assert self._stop_event is not None, "server not started"
        return self._stop_event

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        await self._server.serve()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc

    def start(self, timeout_s: float = 10.0) -> int:
        """Start serving; return the port once the server accepts connections."""
        self._thread = threading.Thread(target=self._run, name="fake-upstream", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"fake upstream failed to start: {self._error!r}")
            time.sleep(0.002)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout_s):
            pass
        return self.port

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run `callback` in the server's loop (thread-safe); a no-op once the loop is gone."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(callback)

    def stop(self) -> None:
        """Stop promptly: wake hung handlers, give running ones `graceful_timeout_s`, then
        cancel them; force the exit if the thread still lingers."""
        thread = self._thread
        if thread is None:
            return
        if self._stop_event is not None:
            self.call_soon(self._stop_event.set)
        self._server.should_exit = True
        thread.join(self._graceful_timeout_s + 2.0)
        if thread.is_alive():
            self._server.force_exit = True
            thread.join(5.0)
        self._thread = None

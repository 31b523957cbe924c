"""One socket write for a response's head and its first body bytes (issue 17).

uvicorn's httptools protocol writes the status line and headers when the app sends
`http.response.start`, and the body when it sends `http.response.body`: two writes, so two system
calls (each running loopback's whole TCP path on the sender's CPU) and two wake-ups of the client,
which reads the head and waits again for the body. `CorkedTransport` sits between the protocol and
its transport and holds a head back until the next write, which it joins: when the app sends
the body in the same step (the hot routes' JSON answers; a stream's head and first frame), one
write carries both. A head the app does not follow at once (a stream waiting for its first
item) goes out on its own at the event loop's next turn (`call_soon`), or at once on close; bytes
are never reordered. A write is taken for a head when it starts with `HTTP/1.1 ` and ends with
the blank line (uvicorn writes a head whole); should a body write look like one, it is only
delayed by that turn, never lost or reordered."""

from __future__ import annotations

import asyncio
from typing import Any

_STATUS: bytes = b"HTTP/1.1 "
_END: bytes = b"\r\n\r\n"


class CorkedTransport(asyncio.Transport):
    """`transport` with a response head held back until the next write (see the module)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + bytes(data))
        elif isinstance(data, bytes) and data.startswith(_STATUS) and data.endswith(_END):
            self._head = data
            self._loop.call_soon(self._release)
        else:
            self._transport.write(data)

    def _release(self) -> None:
        """The held head on its own (nothing followed it in the same step)."""
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        self._release()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self._release()
        self._transport.close()

    def abort(self) -> None:
        self._head = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._head or b"")

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

"""A response with a content-length leaves in one socket write (issue 17): the real uvicorn
protocol and response cycle, driven with request bytes, writing to a transport that records each
write. Streams, 100 Continue, pipelined requests and an app that fails mid-answer keep their bytes
and their order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from llmroute.server.protocol import GuardedHttpProtocol
from llmroute.settings import ServerConfig

pytestmark = pytest.mark.asyncio

Scope = dict[str, Any]


class Recorder(asyncio.Transport):
    """A transport that keeps each write as one item, as a socket write would be one syscall."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.written_at: list[float] = []
        self.closed = False

    def write(self, data: Any) -> None:
        if data:
            self.writes.append(bytes(data))
            self.written_at.append(time.monotonic())

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.writes.append(b"<eof>")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def json_app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"ok":true}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def stream_app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    for part in (b"data: 1\n\n", b"data: 2\n\n"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def parts_app(scope: Scope, receive: Any, send: Any) -> None:
    """A content-length body sent in two parts, the first empty (some apps flush the head so)."""
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
    await send({"type": "http.response.body", "body": b"", "more_body": True})
    await send({"type": "http.response.body", "body": b"ab", "more_body": True})
    await send({"type": "http.response.body", "body": b"cd"})


async def failing_app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
    raise RuntimeError("the app failed after its head")


async def empty_app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def connect(app: Any) -> tuple[GuardedHttpProtocol, Recorder, ServerState]:
    """A fresh connection of the guarded protocol serving `app`, writing to a `Recorder`."""
    state = ServerState()
    protocol = GuardedHttpProtocol(config=uvicorn.Config(app, log_config=None, lifespan="off"),
                                   server_state=state, app_state={},
                                   _loop=asyncio.get_running_loop(), limits=ServerConfig())
    transport = Recorder()
    protocol.connection_made(transport)
    return protocol, transport, state


async def serve(app: Any, data: bytes, rounds: int = 100, pause_s: float = 0.0) -> Recorder:
    """Feed `data` to a fresh connection of the guarded protocol; wait for its responses."""
    protocol, transport, state = connect(app)
    protocol.data_received(data)
    for _ in range(rounds):
        await asyncio.sleep(pause_s)
        if not state.tasks and not protocol.pipeline:
            break
    await asyncio.sleep(0)  # a head held to the end of a turn is written by then
    protocol.connection_lost(None)
    return transport


def request(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n%s\r\n%s" % (len(body), extra, body))


async def test_a_content_length_answer_is_one_write() -> None:
    t = await serve(json_app, request())
    assert len(t.writes) == 1
    assert t.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert t.writes[0].endswith(b'\r\n\r\n{"ok":true}')
    assert b"content-length: 11\r\n" in t.writes[0]


async def test_pipelined_requests_each_leave_whole_and_in_order() -> None:
    t = await serve(json_app, request(b'{"a":1}') + request(b'{"b":2}') + request())
    one = (b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\ncontent-type: application/json\r\n\r\n"
           b'{"ok":true}')
    assert b"".join(t.writes) == one * 3
    # a queued request's cycle is the connection's newest, so the ones before it are not held
    # (pipelining is rare); the last, alone by then, leaves in one write
    assert t.writes[-1] == one


async def test_a_stream_head_leaves_with_a_first_chunk_sent_in_the_same_turn() -> None:
    t = await serve(stream_app, request())
    first = t.writes[0]
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in first
    assert first.endswith(b"\r\n\r\n9\r\ndata: 1\n\n\r\n")
    assert t.writes[1:] == [b"9\r\ndata: 2\n\n\r\n", b"0\r\n\r\n"]


async def test_a_stream_head_does_not_wait_for_a_slow_first_chunk() -> None:
    sent_at: list[float] = []

    async def slow_stream_app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await asyncio.sleep(0.05)  # the upstream's first token is late
        sent_at.append(time.monotonic())
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    t = await serve(slow_stream_app, request(), rounds=200, pause_s=0.001)
    assert t.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and t.writes[0].endswith(b"\r\n\r\n")
    assert t.written_at[0] < sent_at[0] - 0.04  # written at the end of its turn, not with the chunk
    assert t.writes[1:] == [b"9\r\ndata: 1\n\n\r\n", b"0\r\n\r\n"]


async def test_a_body_in_parts_follows_its_head_in_order() -> None:
    t = await serve(parts_app, request())
    assert t.writes[1:] == [b"ab", b"cd"]  # the empty part wrote the head alone, at once
    assert t.writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and t.writes[0].endswith(b"\r\n\r\n")


async def test_a_100_continue_is_written_at_once() -> None:
    body = b'{"x":1}'
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
            b"content-length: %d\r\n\r\n" % len(body))
    protocol, transport, _ = connect(json_app)
    protocol.data_received(head)
    for _ in range(5):
        await asyncio.sleep(0)
    assert transport.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]  # the client waits for it
    protocol.data_received(body)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(transport.writes) == 2 and transport.writes[1].endswith(b'{"ok":true}')
    protocol.connection_lost(None)


async def test_a_head_without_its_body_is_written_before_the_close() -> None:
    t = await serve(failing_app, request())
    assert t.closed
    assert len(t.writes) == 1 and t.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert t.writes[0].endswith(b"\r\n\r\n")


@pytest.mark.parametrize("app", [empty_app])
async def test_an_empty_answer_is_not_held(app: Any) -> None:
    t = await serve(app, request())
    assert len(t.writes) == 1 and t.writes[0].startswith(b"HTTP/1.1 204 No Content\r\n")


async def test_a_held_head_goes_out_before_an_error_the_protocol_writes_itself() -> None:
    """The protocol's own answers (a 400 for bytes that are not HTTP, a timeout's close) write to
    the socket directly: a head held in the same turn is written first, in its place."""
    protocol, transport, _ = connect(json_app)
    assert protocol.out is not None
    protocol.out.head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    protocol.send_400_response("Invalid HTTP request received.")
    assert transport.writes[0] == b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    assert transport.writes[1].startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert transport.writes[2] == b"<eof>"
    protocol.connection_lost(None)

"""A very fast fake OpenAI upstream on loopback, for benchmarking gateways.

Raw asyncio Protocols (uvloop when importable), HTTP/1.1 keep-alive and pipelining, bodies framed by
Content-Length (or chunked). Endpoints:

- ``POST /v1/chat/completions``: a fixed small ``chat.completion`` (with ``usage``); with
  ``"stream": true`` an SSE stream (role chunk, ``--chunks`` content chunks ``--chunk-gap-ms`` apart,
  a final chunk with ``finish_reason``, a usage chunk when ``stream_options.include_usage``, then
  ``data: [DONE]``), sent with chunked transfer encoding.
- ``GET /v1/models``: one model.
- ``GET /health``: ``ok``.
- ``GET /_control`` / ``POST /_control {"delay_ms", "chunks", "chunk_gap_ms", "words"}``: read or change the
  knobs at run time (so a gateway does not need restarting between scenarios); ``GET /_stats``: the
  number of chat completions answered so far.

Run: ``python bench/gateway/fast_upstream.py --port 9100 [--delay-ms 0] [--chunks 8]
[--chunk-gap-ms 0]``. Standard library only (plus uvloop if present).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import cast

MODEL = "bench-model"
#: With $FAST_UPSTREAM_TRACE (a file): each read's, each answer's first write's and each streamed
#: content chunk's write's monotonic ns,
#: written there at exit (`bench/gateway/stages.py`); None: nothing is kept.
TRACE: list[tuple[str, int]] | None = [] if os.environ.get("FAST_UPSTREAM_TRACE") else None
CREATED = int(time.time())
MAX_HEADER = 64 * 1024
MAX_BODY = 16 * 1024 * 1024


@dataclass
class Knobs:
    """What the upstream does; changeable at run time through /_control."""

    delay_ms: float = 0.0
    chunks: int = 8
    chunk_gap_ms: float = 0.0
    words: int = 0          # non-streaming content: 0 the fixed short answer, else "token " x words
    completions: int = 0
    streams: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {"delay_ms": self.delay_ms, "chunks": self.chunks, "chunk_gap_ms": self.chunk_gap_ms,
                "words": self.words, "completions": self.completions, "streams": self.streams}


def _completion_body(words: int = 0) -> bytes:
    content = "token " * words if words else "4. Two plus two is four."
    payload: dict[str, object] = {
        "id": "chatcmpl-bench0000000000000000",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 14, "completion_tokens": words or 9, "total_tokens": 14 + (words or 9)},
    }
    return json.dumps(payload, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=8)
def _completion_response(words: int) -> bytes:
    return _response("200 OK", _completion_body(words))


def _models_body() -> bytes:
    payload = {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED,
                                           "owned_by": "bench"}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def _response(status: str, body: bytes, content_type: str = "application/json",
              close: bool = False) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n")
    return head.encode() + body


COMPLETION = _completion_body()
COMPLETION_RESPONSE = _response("200 OK", COMPLETION)
MODELS_RESPONSE = _response("200 OK", _models_body())
HEALTH_RESPONSE = _response("200 OK", b"ok", "text/plain")
NOT_FOUND = _response("404 Not Found", b'{"error":{"message":"not found","type":"not_found"}}')
STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
WORDS = ("Two ", "plus ", "two ", "is ", "four", ". ", "That ", "is ", "all", ".")


def _sse_chunk(delta: dict[str, object], finish: str | None) -> bytes:
    payload = {"id": "chatcmpl-benchstream", "object": "chat.completion.chunk", "created": CREATED,
               "model": MODEL, "system_fingerprint": "fp_bench",
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _usage_chunk(completion_tokens: int) -> bytes:
    payload = {"id": "chatcmpl-benchstream", "object": "chat.completion.chunk", "created": CREATED,
               "model": MODEL, "choices": [],
               "usage": {"prompt_tokens": 14, "completion_tokens": completion_tokens,
                         "total_tokens": 14 + completion_tokens}}
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    body: bytes
    close: bool


@dataclass
class _Parser:
    """Incremental HTTP/1.1 request parser (Content-Length or chunked bodies, pipelining)."""

    buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Request]:
        self.buf += data
        out: list[Request] = []
        while True:
            req = self._one()
            if req is None:
                return out
            out.append(req)

    def _one(self) -> Request | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER:
                raise ValueError("header too large")
            return None
        head = bytes(buf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        method, path, version = lines[0].split(" ", 2)
        length = 0
        chunked = False
        conn = ""
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            if key == "content-length":
                length = int(value.strip())
            elif key == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif key == "connection":
                conn = value.strip().lower()
        start = end + 4
        if chunked:
            parsed = self._chunked(start)
            if parsed is None:
                return None
            body, consumed = parsed
        else:
            if length > MAX_BODY:
                raise ValueError("body too large")
            if len(buf) < start + length:
                return None
            body, consumed = bytes(buf[start:start + length]), start + length
        del buf[:consumed]
        close = conn == "close" or (version == "HTTP/1.0" and conn != "keep-alive")
        return Request(method, path.split("?", 1)[0], body, close)

    def _chunked(self, pos: int) -> tuple[bytes, int] | None:
        buf = self.buf
        parts: list[bytes] = []
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            pos = eol + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n", pos)
                while trailer_end >= 0 and trailer_end != pos:  # skip trailers
                    pos = trailer_end + 2
                    trailer_end = buf.find(b"\r\n", pos)
                if trailer_end < 0:
                    return None
                return b"".join(parts), pos + 2
            if len(buf) < pos + size + 2:
                return None
            parts.append(bytes(buf[pos:pos + size]))
            pos += size + 2


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: answers requests in order, immediately when it can."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.parser = _Parser()
        self.transport: asyncio.Transport | None = None
        self.pending: deque[Request] = deque()
        self.worker: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no asyncio subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.worker is not None:
            self.worker.cancel()

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None:
            return
        if TRACE is not None:
            TRACE.append(("recv", time.monotonic_ns()))
        try:
            requests = self.parser.feed(data)
        except ValueError:
            transport.write(_response("400 Bad Request", b'{"error":"bad request"}', close=True))
            transport.close()
            return
        for req in requests:
            if self.worker is None and not self._must_wait(req):
                self._answer(req, transport)
                continue
            self.pending.append(req)
            if self.worker is None:
                self.worker = asyncio.get_running_loop().create_task(self._drain())

    def _must_wait(self, req: Request) -> bool:
        """Whether answering involves waiting (a delay or a stream)."""
        if req.method == "POST" and req.path.endswith("/chat/completions"):
            return self.knobs.delay_ms > 0 or _parse_stream_request(req.body) is not None
        return False

    def _answer(self, req: Request, transport: asyncio.Transport) -> None:
        """Write the (non-streaming) answer to one request."""
        if req.method == "POST" and req.path.endswith("/chat/completions"):
            self.knobs.completions += 1
            out = _completion_response(self.knobs.words) if self.knobs.words else COMPLETION_RESPONSE
        elif req.method == "GET" and req.path.endswith("/models"):
            out = MODELS_RESPONSE
        elif req.method == "GET" and req.path == "/health":
            out = HEALTH_RESPONSE
        elif req.path in ("/_control", "/_stats"):
            if req.method == "POST" and req.body:
                self._control(req.body)
            out = _response("200 OK", json.dumps(self.knobs.as_dict()).encode())
        else:
            out = NOT_FOUND
        if req.close:
            transport.write(out.replace(b"Connection: keep-alive", b"Connection: close", 1))
            transport.close()
        else:
            transport.write(out)
        if TRACE is not None:
            TRACE.append(("sent", time.monotonic_ns()))

    def _control(self, body: bytes) -> None:
        values = json.loads(body)
        if "delay_ms" in values:
            self.knobs.delay_ms = float(values["delay_ms"])
        if "chunks" in values:
            self.knobs.chunks = max(1, int(values["chunks"]))
        if "chunk_gap_ms" in values:
            self.knobs.chunk_gap_ms = float(values["chunk_gap_ms"])
        if "words" in values:
            self.knobs.words = max(0, int(values["words"]))
        if values.get("reset_stats"):
            self.knobs.completions = 0
            self.knobs.streams = 0

    async def _drain(self) -> None:
        try:
            while self.pending and self.transport is not None:
                req = self.pending.popleft()
                is_chat = req.method == "POST" and req.path.endswith("/chat/completions")
                if is_chat and self.knobs.delay_ms > 0:
                    await asyncio.sleep(self.knobs.delay_ms / 1000)
                transport = self.transport
                if transport is None:
                    return
                usage = _parse_stream_request(req.body) if is_chat else None
                if usage is None:
                    self._answer(req, transport)
                    continue
                await self._stream(transport, include_usage=usage)
                if req.close and self.transport is not None:
                    self.transport.close()
        finally:
            self.worker = None

    async def _stream(self, transport: asyncio.Transport, include_usage: bool) -> None:
        knobs = self.knobs
        knobs.streams += 1
        gap = knobs.chunk_gap_ms / 1000
        transport.write(STREAM_HEAD + _http_chunk(_sse_chunk({"role": "assistant", "content": ""},
                                                             None)))
        if TRACE is not None:
            TRACE.append(("sent", time.monotonic_ns()))
        for i in range(knobs.chunks):
            if gap > 0:
                await asyncio.sleep(gap)
            if self.transport is None:
                return
            data = _http_chunk(_sse_chunk({"content": WORDS[i % len(WORDS)]}, None))
            if TRACE is not None:  # each content chunk's write (bench/gateway/ttft_legs.py)
                TRACE.append(("chunk", time.monotonic_ns()))
            transport.write(data)
        tail = _sse_chunk({}, "stop")
        if include_usage:
            tail += _usage_chunk(knobs.chunks)
        tail += b"data: [DONE]\n\n"
        transport.write(_http_chunk(tail) + b"0\r\n\r\n")


def _parse_stream_request(body: bytes) -> bool | None:
    """None for a non-streaming request, else whether the client asked for the usage chunk."""
    if b'"stream"' not in body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("stream") is not True:
        return None
    options = data.get("stream_options") or {}
    return bool(isinstance(options, dict) and options.get("include_usage"))


async def serve(host: str, port: int, knobs: Knobs) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(knobs), host, port, backlog=4096,
                                      reuse_address=True)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    print(f"fast upstream on http://{host}:{port} ({type(loop).__module__})", flush=True)
    async with server:
        await stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="wait before answering")
    parser.add_argument("--chunks", type=int, default=8, help="content chunks per stream")
    parser.add_argument("--chunk-gap-ms", type=float, default=0.0, help="pause between chunks")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args(argv)
    knobs = Knobs(delay_ms=args.delay_ms, chunks=max(1, args.chunks), chunk_gap_ms=args.chunk_gap_ms)
    runner = asyncio.run
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            runner = uvloop.run
    try:
        runner(serve(args.host, args.port, knobs))
    finally:
        if TRACE is not None:
            with open(os.environ["FAST_UPSTREAM_TRACE"], "w") as f:
                f.writelines(f"{kind} {ns}\n" for kind, ns in TRACE)


if __name__ == "__main__":
    sys.exit(main())

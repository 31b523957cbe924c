"""Streaming load client (run as its own process): time to first token, total time, chunk spread.

Raw asyncio sockets, HTTP/1.1 keep-alive (one connection per concurrent client), chunked or
Content-Length framing, SSE decoded as bytes arrive. For each stream it records when the first content
token arrived (first ``delta.content`` that is not empty), when the last one did and when ``[DONE]`` did;
if a gateway buffered the stream, first and last token arrive together even though the upstream spaced
them ``--chunk-gap-ms`` apart. Prints one JSON object on stdout.

Usage: ``python stream_client.py --url URL --body JSON [--header 'K: V'] --requests N --concurrency C``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class StreamResult:
    ok: bool
    status: int = 0
    ttfb: float = 0.0         # first SSE event, s
    ttft: float = 0.0         # first non-empty content delta, s
    last_token: float = 0.0   # last non-empty content delta, s
    total: float = 0.0        # [DONE] (or end of body), s
    tokens: int = 0
    done_seen: bool = False
    error: str = ""


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    buf: bytearray = field(default_factory=bytearray)


class HttpStream:
    """One keep-alive connection that sends a POST and yields the response body as it arrives."""

    def __init__(self, host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> None:
        self.host, self.port, self.path = host, port, path
        head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
                "Accept: text/event-stream", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.conn: _Conn | None = None

    async def _connect(self) -> _Conn:
        if self.conn is None:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.conn = _Conn(reader, writer)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.writer.close()
            self.conn = None

    async def _fill(self, conn: _Conn) -> bool:
        data = await conn.reader.read(65536)
        conn.buf += data
        return bool(data)

    async def _line(self, conn: _Conn) -> bytes:
        while (i := conn.buf.find(b"\r\n")) < 0:
            if not await self._fill(conn):
                raise ConnectionError("connection closed mid-response")
        line = bytes(conn.buf[:i])
        del conn.buf[:i + 2]
        return line

    async def one(self, on_data: _OnData) -> int:
        """Send the request; feed body bytes to on_data as they arrive; return the status."""
        conn = await self._connect()
        conn.writer.write(self.request)
        status_line = await self._line(conn)
        status = int(status_line.split()[1])
        length, chunked, close = -1, False, False
        while line := await self._line(conn):
            name, _, value = line.decode("latin-1").partition(":")
            key, value = name.strip().lower(), value.strip().lower()
            if key == "content-length":
                length = int(value)
            elif key == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif key == "connection" and value == "close":
                close = True
        if chunked:
            await self._chunked(conn, on_data)
        elif length >= 0:
            await self._exactly(conn, length, on_data, "mid-body")
        else:
            close = True
            while True:
                if conn.buf:
                    on_data(bytes(conn.buf))
                    conn.buf.clear()
                if not await self._fill(conn):
                    break
        if close:
            self.close()
        return status

    async def _exactly(self, conn: _Conn, size: int, on_data: _OnData, where: str) -> None:
        """Hand the next `size` body bytes to on_data as they arrive."""
        while size > 0:
            if not conn.buf and not await self._fill(conn):
                raise ConnectionError(f"connection closed {where}")
            piece = bytes(conn.buf[:size])
            del conn.buf[:len(piece)]
            size -= len(piece)
            on_data(piece)

    async def _chunked(self, conn: _Conn, on_data: _OnData) -> None:
        while True:
            size = int((await self._line(conn)).split(b";", 1)[0], 16)
            if size == 0:
                while await self._line(conn):  # trailers, up to the empty line
                    pass
                return
            await self._exactly(conn, size, on_data, "mid-chunk")
            while len(conn.buf) < 2:
                if not await self._fill(conn):
                    raise ConnectionError("connection closed after a chunk")
            del conn.buf[:2]


class _OnData:
    """Decodes SSE from body bytes and stamps each event."""

    def __init__(self, t0: float, result: StreamResult) -> None:
        self.t0, self.result, self.pending = t0, result, b""

    def __call__(self, data: bytes) -> None:
        now = time.perf_counter() - self.t0
        self.pending += data
        while (i := self.pending.find(b"\n")) >= 0:
            line, self.pending = self.pending[:i].strip(), self.pending[i + 1:]
            if line.startswith(b"data:"):
                self._event(line[5:].strip(), now)

    def _event(self, payload: bytes, now: float) -> None:
        res = self.result
        if not res.ttfb:
            res.ttfb = now
        if payload == b"[DONE]":
            res.done_seen, res.total = True, now
            return
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if "error" in event:
            res.error = str(event["error"])[:200]
        for choice in event.get("choices") or ():
            if (choice.get("delta") or {}).get("content"):
                res.tokens += 1
                res.last_token = now
                if not res.ttft:
                    res.ttft = now


async def _client(stream: HttpStream, n: int, out: list[StreamResult]) -> None:
    for _ in range(n):
        res = StreamResult(ok=False)
        t0 = time.perf_counter()
        try:
            res.status = await asyncio.wait_for(stream.one(_OnData(t0, res)), 60)
            if not res.total:
                res.total = time.perf_counter() - t0
            res.ok = res.status == 200 and res.done_seen and res.tokens > 0 and not res.error
            if not res.ok and not res.error:
                res.error = f"status {res.status}, done={res.done_seen}, tokens={res.tokens}"
        except (OSError, ConnectionError, TimeoutError, ValueError, IndexError) as exc:
            res.error = f"{type(exc).__name__}: {exc}"
            stream.close()
        out.append(res)
    stream.close()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarise(results: list[StreamResult], wall: float) -> dict[str, object]:
    ok = [r for r in results if r.ok]
    ms = 1000.0
    spread = [(r.last_token - r.ttft) * ms for r in ok]
    return {
        "requests": len(results), "ok": len(ok), "errors": len(results) - len(ok),
        "first_errors": sorted({r.error for r in results if not r.ok})[:3],
        "wall_s": wall, "streams_per_s": len(ok) / wall if wall else 0.0,
        "ttfb_p50_ms": _pct([r.ttfb * ms for r in ok], 50),
        "ttfb_p99_ms": _pct([r.ttfb * ms for r in ok], 99),
        "ttft_p50_ms": _pct([r.ttft * ms for r in ok], 50),
        "ttft_p99_ms": _pct([r.ttft * ms for r in ok], 99),
        "total_p50_ms": _pct([r.total * ms for r in ok], 50),
        "total_p99_ms": _pct([r.total * ms for r in ok], 99),
        "spread_p50_ms": _pct(spread, 50),
        "spread_min_ms": min(spread) if spread else 0.0,
        "tokens_mean": statistics.fmean([r.tokens for r in ok]) if ok else 0.0,
    }


async def run(url: str, headers: dict[str, str], body: bytes, requests: int, concurrency: int
              ) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    per = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
    out: list[StreamResult] = []
    t0 = time.perf_counter()
    await asyncio.gather(*(_client(HttpStream(host, port, parts.path, headers, body), n, out)
                           for n in per if n))
    return summarise(out, time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="streaming load client")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True, help="JSON request body (stream is forced on)")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    body = json.loads(args.body)
    body["stream"] = True
    body.setdefault("stream_options", {"include_usage": True})
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    summary = asyncio.run(run(args.url, headers, json.dumps(body).encode(), args.requests,
                              max(1, args.concurrency)))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

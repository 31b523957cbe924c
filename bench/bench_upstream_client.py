"""Issue 17: the upstream client in isolation. CPU µs of the client process per POST (sequential and
16 concurrent) and per streamed chunk, against bench/gateway/fast_upstream.py on loopback, for:

- ``transport``: llmroute's HTTPTransport.post_checked / stream().lines() as the gateway calls it
  (whichever backend the imported llmroute uses: run it with main's src and with a branch's);
- ``aiohttp``: a bare aiohttp session with today's settings (auto headers but user-agent, a cookie
  jar, auto_decompress);
- ``aiohttp-lean``: the same with a DummyCookieJar, auto_decompress off, no auto headers;
- ``pyreqwest``: the Rust-backed client (when importable);
- ``h1``: llmroute.providers.h1, the asyncio + httptools pooled client.

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_upstream_client.py [--calls 4000] [--rounds 3]
[--only h1,aiohttp] [--no-uvloop]``. The upstream runs in its own process; the numbers are the
client's process CPU time (user + system) divided by calls, median of the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp

from llmroute.providers.http import HTTPTransport
from llmroute.settings import ProviderConfig

if TYPE_CHECKING:
    from llmroute.providers.h1 import H1Pool

BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"What is 2+2?"}],"max_tokens":32}'
STREAM_BODY = BODY[:-1] + b',"stream":true}'
HEADERS = {"authorization": "Bearer sk-bench-0123456789", "content-type": "application/json"}
PATH = "/v1/chat/completions"
Call = Callable[[bytes], Awaitable[int]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def upstream(chunks: int) -> Iterator[str]:
    port = _free_port()
    script = Path(__file__).parent / "gateway" / "fast_upstream.py"
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port), "--chunks",
                             str(chunks)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(5)


class Clients:
    """One call (POST, read the whole body) and one stream (POST, count lines) per client kind."""

    def __init__(self, base: str):
        self.base = base
        config = ProviderConfig(type="openai", base_url=base, timeout={})
        self.transport = HTTPTransport(config, {"authorization": HEADERS["authorization"]})
        self.sessions: list[aiohttp.ClientSession] = []
        self.pool: H1Pool | None = None
        self.reqwest: object | None = None

    def aiohttp_session(self, lean: bool) -> aiohttp.ClientSession:
        if lean:
            session = aiohttp.ClientSession(
                headers={"user-agent": "llmroute", **HEADERS}, auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("user-agent", "accept", "accept-encoding"),
                connector=aiohttp.TCPConnector(limit=100, limit_per_host=0, keepalive_timeout=30))
        else:
            session = aiohttp.ClientSession(
                headers={"user-agent": "llmroute", **HEADERS}, auto_decompress=True,
                skip_auto_headers=("user-agent",),
                connector=aiohttp.TCPConnector(limit=100, limit_per_host=0, keepalive_timeout=30))
        self.sessions.append(session)
        return session

    def call(self, kind: str) -> Call:
        url = self.base + PATH
        if kind == "transport":
            async def transport(body: bytes) -> int:
                reply = await self.transport.post_checked(
                    PATH, body, {"content-type": "application/json"}, timeout_s=300,
                    provider="p", model="m", error=_never)
                return len(reply.content)
            return transport
        if kind in ("aiohttp", "aiohttp-lean"):
            session = self.aiohttp_session(kind == "aiohttp-lean")

            async def via_aiohttp(body: bytes) -> int:
                async with session.post(url, data=body, allow_redirects=False) as response:
                    return len(await response.read())
            return via_aiohttp
        if kind == "pyreqwest":
            return self._pyreqwest(url)
        if kind == "h1":
            pool = self.pool = self.pool or _h1_pool(self.base)

            async def via_h1(body: bytes) -> int:
                response = await pool.request(PATH, body)
                try:
                    return len(await response.read())
                finally:
                    response.release()
            return via_h1
        raise ValueError(kind)

    def _pyreqwest(self, url: str) -> Call:
        from pyreqwest.client import ClientBuilder  # optional: only when measured

        client = (ClientBuilder().default_headers({"user-agent": "llmroute", **HEADERS})
                  .follow_redirects(False).max_connections(100).build())
        self.reqwest = client

        async def via_pyreqwest(body: bytes) -> int:
            response = await client.post(url).body_bytes(body).build().send()
            return len(bytes(await response.bytes()))
        return via_pyreqwest

    def stream(self, kind: str) -> Callable[[], Awaitable[int]]:
        """Lines of one streamed answer (the SSE framing as the adapters read it)."""
        if kind == "transport":
            async def transport() -> int:
                async with self.transport.stream(PATH, STREAM_BODY) as reply:
                    return sum([1 async for _ in reply.lines()])
            return transport
        if kind == "h1":
            pool = self.pool = self.pool or _h1_pool(self.base)

            async def via_h1() -> int:
                response = await pool.request(PATH, STREAM_BODY)
                count, buffer = 0, b""
                try:
                    while (data := await response.chunk()) is not None:
                        buffer += data
                        *lines, buffer = buffer.split(b"\n")
                        count += len(lines)
                finally:
                    response.release()
                return count
            return via_h1
        if kind in ("aiohttp", "aiohttp-lean"):
            session = self.aiohttp_session(kind == "aiohttp-lean")

            async def via_aiohttp() -> int:
                count = 0
                async with session.post(self.base + PATH, data=STREAM_BODY) as response:
                    async for data in response.content.iter_any():
                        count += data.count(b"\n")
                return count
            return via_aiohttp
        raise ValueError(f"no stream measure for {kind}")

    async def aclose(self) -> None:
        await self.transport.aclose()
        for session in self.sessions:
            await session.close()
        if self.pool is not None:
            self.pool.close()


def _h1_pool(base: str) -> H1Pool:
    from llmroute.providers import h1  # absent from branches before issue 17's transport

    return h1.H1Pool(base, {"user-agent": "llmroute", **HEADERS}, limit=100, connect_s=5, read_s=60)


def _never(status: int, body: bytes, headers: object, model: str) -> Exception:
    raise AssertionError(f"upstream answered {status}: {body[:200]!r}")


async def _cpu_per(run: Callable[[], Awaitable[int]], count: int) -> float:
    await run()  # warm: the connection(s) open
    start = time.process_time()
    await run()
    return (time.process_time() - start) / count * 1e6


async def measure(clients: Clients, kind: str, calls: int, streams: int, chunks: int
                  ) -> dict[str, float]:
    call = clients.call(kind)

    async def sequential() -> int:
        return sum([await call(BODY) for _ in range(calls)])

    async def concurrent() -> int:
        async def worker() -> int:
            return sum([await call(BODY) for _ in range(calls // 16)])
        return sum(await asyncio.gather(*(worker() for _ in range(16))))

    out = {"seq_us": await _cpu_per(sequential, calls),
           "c16_us": await _cpu_per(concurrent, calls // 16 * 16)}
    with contextlib.suppress(ValueError):
        stream = clients.stream(kind)

        async def streamed() -> int:
            return sum([await stream() for _ in range(streams)])
        # events per stream: role, chunks, finish, [DONE]
        out["chunk_us"] = await _cpu_per(streamed, streams * (chunks + 3))
    return out


async def main_async(args: argparse.Namespace, base: str) -> None:
    kinds = args.only.split(",")
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    clients = Clients(base)
    try:
        for _ in range(args.rounds):
            for kind in kinds:  # interleaved, so drift hits every kind alike
                results[kind].append(await measure(clients, kind, args.calls, args.streams,
                                                   args.chunks))
    finally:
        await clients.aclose()
    print(f"{'client':14} {'seq µs/call':>12} {'c16 µs/call':>12} {'µs/chunk':>9}  (CPU, median "
          f"of {args.rounds})")
    for kind, rounds in results.items():
        cells = [statistics.median(r[key] for r in rounds) if key in rounds[0] else float("nan")
                 for key in ("seq_us", "c16_us", "chunk_us")]
        print(f"{kind:14} {cells[0]:12.1f} {cells[1]:12.1f} {cells[2]:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="transport,aiohttp,aiohttp-lean,pyreqwest,h1")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    if not args.no_uvloop:
        import uvloop
        uvloop.install()
    with upstream(args.chunks) as base:
        asyncio.run(main_async(args, base))


if __name__ == "__main__":
    main()

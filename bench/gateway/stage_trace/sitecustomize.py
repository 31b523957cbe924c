"""The stage bench's trace hook (`bench/gateway/stages.py`), loaded by the gateway's interpreter at
start (`sitecustomize`, found because stages.py puts this folder on the gateway's PYTHONPATH).
Nothing is installed unless LLMROUTE_STAGE_TRACE names a file; the gateway's code is not changed.

It wraps the functions at the boundaries of a request's stages and appends (mark, monotonic ns,
thread CPU ns) to one list, written as JSON lines at exit: at one client, requests do not
overlap, so the marks between two `serve0` marks are one request's. Marks: `serve0/1` (the hot
endpoint), `gw0/1` (`Gateway.complete` or `Gateway.stream`), `admit1` (routing and admission
done), `up0/up1` (the upstream call, non-streaming; inside it `acquire1` (a pooled
connection, or `connect1` a new one), `data0` (the upstream's first bytes handed to the
connection), `parsed1` (its head parsed) and `head1` (the waiting task resumed)), `first` (a
stream's first upstream chunk in hand), `settle1`, `entry1` (the ledger entry built), `record1` (handed to
the ledger: the write-ahead log append), `metrics1`, `account1`, `keep1` (the response cache), `durable1`,
`relay1` (a stream's relay ended: its entry recorded), `body` (each body message sent: the first
is a stream's first byte), `sent1` (a JSON answer
written). Each wrapper costs ~1 µs, which the stage it closes absorbs.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

Mark = tuple[str, int, int]


def _install(path: str) -> None:
    marks: list[Mark] = []
    now, cpu = time.monotonic_ns, time.thread_time_ns

    def mark(name: str) -> None:
        marks.append((name, now(), cpu()))

    def around_async(fn: Callable[..., Any], start: str | None, end: str) -> Callable[..., Any]:
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if start:
                mark(start)
            try:
                return await fn(*args, **kwargs)
            finally:
                mark(end)
        return wrapper

    def around_sync(fn: Callable[..., Any], end: str) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                mark(end)
        return wrapper

    from llmroute import accounting, gateway, metrics
    from llmroute.cache import response
    from llmroute.control import admission
    from llmroute.ledger import service
    from llmroute.providers import h1, openai_compat
    from llmroute.server import hot

    G = gateway.Gateway
    G.complete = around_async(G.complete, "gw0", "gw1")  # type: ignore[method-assign]
    G.stream = around_async(G.stream, "gw0", "gw1")  # type: ignore[method-assign]
    G.admit = around_async(G.admit, None, "admit1")  # type: ignore[method-assign]
    G._open_stream = around_async(G._open_stream, None, "first")  # type: ignore[method-assign]
    G._durable = around_async(G._durable, None, "durable1")  # type: ignore[method-assign]
    plain_relay = G._relay

    async def relay(self: Any, *args: Any) -> Any:  # `relay1`: a stream's relay has ended
        try:
            async for item in plain_relay(self, *args):
                yield item
        finally:
            mark("relay1")

    G._relay = relay  # type: ignore[method-assign]
    G._account = around_sync(G._account, "account1")  # type: ignore[method-assign]
    P = openai_compat.OpenAICompatProvider
    P.complete = around_async(P.complete, "up0", "up1")  # type: ignore[method-assign]
    h1.H1Pool.acquire = around_async(h1.H1Pool.acquire, None, "acquire1")  # type: ignore[method-assign]
    h1.H1Pool._connect = around_async(h1.H1Pool._connect, None, "connect1")  # type: ignore[method-assign]
    h1.H1Pool.request = around_async(h1.H1Pool.request, None, "head1")  # type: ignore[method-assign]
    plain_received = h1._Conn.data_received

    def received(self: Any, data: bytes) -> None:  # `data0`: the upstream's bytes reach us
        mark("data0")
        plain_received(self, data)

    h1._Conn.data_received = received  # type: ignore[method-assign]
    h1._Conn.on_headers_complete = around_sync(  # type: ignore[method-assign]
        h1._Conn.on_headers_complete, "parsed1")
    A = admission.Admission
    A.settle = around_async(A.settle, None, "settle1")  # type: ignore[method-assign]
    accounting.Accountant.entry = around_sync(accounting.Accountant.entry, "entry1")  # type: ignore[method-assign]
    service.LedgerService.record = around_sync(service.LedgerService.record, "record1")  # type: ignore[method-assign]
    metrics.GatewayMetrics.observe = around_sync(metrics.GatewayMetrics.observe, "metrics1")  # type: ignore[method-assign]
    R = response.ResponseCache
    R.keep = around_async(R.keep, None, "keep1")  # type: ignore[method-assign]
    H = hot.HotRoutes
    H.serve = around_async(H.serve, "serve0", "serve1")  # type: ignore[method-assign]
    hot.send_json = around_async(hot.send_json, None, "sent1")  # type: ignore[attr-defined]
    plain_stream = hot.send_stream

    async def send_stream(receive: Any, send: Any, *args: Any) -> None:
        async def marked(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body":
                mark("body")
        await plain_stream(receive, marked, *args)

    hot.send_stream = send_stream  # type: ignore[attr-defined]

    def dump() -> None:
        with open(path, "w") as f:
            for m in marks:
                f.write(json.dumps(m) + "\n")

    atexit.register(dump)

    def on_term(signum: int, _frame: object) -> None:
        dump()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


if os.environ.get("LLMROUTE_STAGE_TRACE"):
    _install(os.environ["LLMROUTE_STAGE_TRACE"])

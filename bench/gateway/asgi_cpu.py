"""The CPU the gateway's event-loop thread spends per request, measured in-process through the ASGI
app itself (no HTTP server, no client sockets), against the testing FakeUpstream in its own thread
(its CPU is not counted: `time.thread_time` of the loop's thread only). Less noisy than the
process-level numbers on a shared machine, and it isolates what the server layer costs (issue 17).

    PYTHONPATH=<tree>/src .venv/bin/python bench/gateway/asgi_cpu.py [--requests 3000]

Prints one JSON line: which `llmroute` was imported, µs of loop-thread CPU per non-streaming
request, per 4-chunk and per 64-chunk stream (the fake sends one chunk per word of its answer,
"echo from mini-up: <prompt>"), and per chunk: (64-chunk - 4-chunk) / 60."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import llmroute
from llmroute.chat import chat_request
from llmroute.config import load
from llmroute.server.app import create_app
from llmroute.testing.upstream import FakeUpstream

KEY = "bench-upstream-key"
CONFIG = """\
providers:
  fake: {{type: openai, base_url: "{base}", api_key_env: FAKE_KEY}}
models:
  fake/mini: {{deployment: fake, upstream_name: mini-up, input_per_m: "0.15", output_per_m: "0.6"}}
tiers:
  simple: {{model: fake/mini}}
  medium: {{model: fake/mini}}
  complex: {{model: fake/mini}}
ledger: {{enabled: false}}
"""
ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def scope_of(body: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 9), "server": (
                "127.0.0.1", 80),
            "headers": [(b"host", b"gw"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"authorization", b"Bearer x"), (b"user-agent", b"bench")]}


async def one(app: ASGI, body: bytes) -> int:
    """One request through the app; how many body messages it sent."""
    gone = asyncio.Event()
    sent = 0
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal sent
        if message["type"] == "http.response.start":
            assert message["status"] == 200, message
        else:
            sent += 1
            if not message.get("more_body"):
                gone.set()

    await app(scope_of(body), receive, send)
    return sent


async def per_request_us(app: ASGI, body: bytes, n: int) -> float:
    for _ in range(min(200, n)):
        await one(app, body)
    before = time.thread_time()
    for _ in range(n):
        await one(app, body)
    return (time.thread_time() - before) * 1e6 / n


async def canned(app: Any, plain: bytes, streams: list[bytes]) -> None:
    """Replace the gateway's complete/stream by real answers' copies (a stream's by the length of
    its prompt): what is left is the server layer (and the request's parsing and validation)."""
    gw = app.state.gateway
    response, done = await gw.complete(chat_request(json.loads(plain)))
    answers: dict[int, tuple[Any, list[dict[str, Any]]]] = {}
    for body in streams:
        req = chat_request(json.loads(body))
        outcome, chunks = await gw.stream(req)
        answers[len(str(req.body["messages"][0]["content"]))] = (
            outcome, [chunk async for chunk in chunks])

    async def complete(*args: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
        return dict(response), done

    async def relay(pieces: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
        for chunk in pieces:
            yield dict(chunk)

    async def stream(req: Any, *args: Any, **kwargs: Any) -> tuple[Any, AsyncIterator[Any]]:
        outcome, pieces = answers[len(str(req.body["messages"][0]["content"]))]
        return outcome, relay(pieces)

    gw.complete, gw.stream = complete, stream


async def main(args: argparse.Namespace) -> dict[str, object]:
    with FakeUpstream(api_key=KEY) as up, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llmroute.yaml"
        path.write_text(CONFIG.format(base=up.openai_base_url))
        app = create_app(load(path, environ={}), environ={"FAKE_KEY": KEY})
        async with app.router.lifespan_context(app):
            def chat(words: int, stream: bool) -> bytes:
                text = " ".join(f"w{i}" for i in range(words))
                return json.dumps({"model": "fake/mini", "stream": stream, "max_tokens": 16,
                                   "messages": [{"role": "user", "content": text}]}).encode()

            if args.server_only:
                await canned(app, chat(1, False), [chat(1, True), chat(61, True)])
            out: dict[str, object] = {"llmroute": llmroute.__file__,
                                      "server_only": args.server_only}
            out["us_per_request"] = await per_request_us(app, chat(1, False), args.requests)
            n = max(args.requests // 4, 50)
            one_chunk = await per_request_us(app, chat(1, True), n)
            many = await per_request_us(app, chat(61, True), n)  # "echo from mini-up:" + 61
            out["us_per_stream_4_chunks"], out["us_per_stream_64_chunks"] = one_chunk, many
            out["us_per_chunk"] = (many - one_chunk) / 60
            return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--server-only", action="store_true",
                        help="canned gateway answers: the server layer's own CPU")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))

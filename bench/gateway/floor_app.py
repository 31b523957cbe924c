"""The floor: what any gateway on llmroute's Python stack pays per request before it does anything
of its own (issue 17). A bare ASGI app under the same server llmroute runs on (uvicorn with httptools
and uvloop, one worker, no access log) that reads the body, parses it with orjson, forwards it to
the upstream through llmroute's own HTTP/1.1 pool (`providers/h1.py`) and answers with the
upstream's bytes. No auth, validation, routing, accounting, ledger, metrics or logs.

    python bench/gateway/floor_app.py --port P --upstream-port U [--canned]

`--canned`: no upstream call at all, a fixed chat completion (the server and JSON parse alone).
`bench/gateway/run.py --only upstream,floor,floor-canned,llmroute` measures it beside llmroute in
the same run, so the CPU per request that is llmroute's own is the difference.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn

from llmroute.providers.h1 import H1Pool

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CANNED = orjson.dumps({
    "id": "chatcmpl-floor", "object": "chat.completion", "created": 0, "model": "bench-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}})
CANNED_SSE = b"".join(b"data: " + orjson.dumps({
    "id": "chatcmpl-floor", "object": "chat.completion.chunk", "created": 0, "model": "bench-model",
    "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}) + b"\n\n"
    for word in ("ok", " ok", " ok")) + b"data: [DONE]\n\n"
HEADERS = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def make_app(upstream_port: int | None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    pool = (None if upstream_port is None else
            H1Pool(f"http://127.0.0.1:{upstream_port}/v1",
                   {"authorization": "Bearer bench", "content-type": "application/json"},
                   limit=1000, connect_s=5.0, read_s=60.0))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":  # the readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        request = orjson.loads(await read_body(receive))
        if pool is None:
            stream = bool(request.get("stream"))
            await send({"type": "http.response.start", "status": 200,
                        "headers": SSE if stream else HEADERS})
            await send({"type": "http.response.body", "body": CANNED_SSE if stream else CANNED})
            return
        request["model"] = "bench-model"
        response = await pool.request("/chat/completions", orjson.dumps(request))
        if not request.get("stream"):
            answer = await response.read()
            response.release()
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": answer})
            return
        await send({"type": "http.response.start", "status": 200, "headers": SSE})
        while (data := await response.chunk()) is not None:  # relayed as it arrives
            await send({"type": "http.response.body", "body": data, "more_body": True})
        response.release()
        await send({"type": "http.response.body", "body": b""})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--canned", action="store_true")
    args = parser.parse_args()
    app = make_app(None if args.canned else args.upstream_port)
    uvicorn.run(app, host="127.0.0.1", port=args.port, loop="uvloop", http="httptools",
                lifespan="off", access_log=False, log_level="warning")


if __name__ == "__main__":
    main()

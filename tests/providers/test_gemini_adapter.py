"""The Gemini adapter against a server answering JSON that is not in Gemini's shape: a `server`
error of the upstream (retried, then fallen back), never an exception the gateway cannot map."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from llmroute.errors import UpstreamError
from llmroute.providers.gemini import GeminiProvider
from llmroute.settings import ProviderConfig

MALFORMED = [b'{"candidates": 3}',
             b'{"candidates": [{"content": {"parts": [{"functionCall": 1}]}}]}',
             b'{"candidates": [{"index": "x"}]}',
             b'{"usageMetadata": {"promptTokenCount": "a"}}']
REQUEST = {"messages": [{"role": "user", "content": "hi"}]}


def app_answering(body: bytes) -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        if request.query.get("alt") == "sse":
            reply = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await reply.prepare(request)
            await reply.write(b"data: " + body + b"\r\n\r\n")
            return reply
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1beta/models/{target}", answer)
    return app


async def kinds(body: bytes) -> tuple[str, str]:
    """The error kinds of a whole answer and of a stream, both `body`."""
    async with TestServer(app_answering(body)) as server:
        config = ProviderConfig(type="gemini", base_url=str(server.make_url("/v1beta")))
        provider = GeminiProvider("gem", config, "k-123456789")
        try:
            try:
                await provider.complete(REQUEST, "gemini-2.5-flash")
                whole = "none"
            except UpstreamError as exc:
                whole = exc.kind
            try:
                async for _ in provider.stream({**REQUEST, "stream": True}, "gemini-2.5-flash"):
                    pass
                streamed = "none"
            except UpstreamError as exc:
                streamed = exc.kind
        finally:
            await provider.aclose()
    return whole, streamed


@pytest.mark.parametrize("body", MALFORMED)
def test_an_answer_not_in_geminis_shape_is_a_server_error(body: bytes) -> None:
    whole, streamed = asyncio.run(kinds(body))
    assert whole == "server"
    assert streamed in ("server", "connection")  # malformed, or a stream that never finished

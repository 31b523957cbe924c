"""A hot endpoint is `HotRoutes.serve` with its API bound (issue 17, own17: a partial, no coroutine
of its own around `serve`'s), and answers alike from the app's own dispatch and from Starlette's
table (`Raw`), where a request with a root path goes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson

from helpers import load_yaml
from llmroute.server.app import create_app
from llmroute.server.hot import HotRoutes

CONFIG = "ledger:\n  enabled: false\n"
BODIES: tuple[dict[str, Any], ...] = (
    {"model": "auto"},                                                  # no messages: 400
    {"model": "auto", "messages": [{"role": "user", "content": 3}]},   # bad content: 400
    {"model": "auto/nope", "messages": [{"role": "user", "content": "hi"}]},  # unknown policy
)


def _app(tmp_path: Path) -> Any:
    return create_app(load_yaml(tmp_path, CONFIG, environ={}), environ={})


def test_the_endpoint_is_serves_coroutine_itself(tmp_path: Path) -> None:
    app = _app(tmp_path)
    for path, endpoint in app.hot.items():
        async def nothing(*args: Any) -> Any:
            return None

        call = endpoint({"type": "http", "path": path}, nothing, nothing)
        try:
            assert call.cr_code is HotRoutes.serve.__code__, path
        finally:
            call.close()


def test_both_dispatches_answer_alike(tmp_path: Path) -> None:
    app = _app(tmp_path)

    async def ask(root: str, body: dict[str, Any]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, root_path=root)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            return await client.post(f"{root}/v1/chat/completions", content=orjson.dumps(body),
                                     headers={"content-type": "application/json"})

    for body in BODIES:
        hot, routed = asyncio.run(ask("", body)), asyncio.run(ask("/gw", body))
        assert hot.status_code == routed.status_code >= 400, body
        assert hot.json() == routed.json(), body
        assert routed.headers["x-llmroute-request-id"].startswith("req_")

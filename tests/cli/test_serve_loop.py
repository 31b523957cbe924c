"""`llmroute serve` with one worker serves on uvicorn's loop choice (uvloop when installed), as
`--workers N` does: a plain `asyncio.run` had put the single-worker path on the stdlib loop
(bench/gateway/profile.py showed `BaseEventLoop._run_once`; 0.743 vs 0.654 ms of CPU per request)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette

from llmroute.cli import serve_cmd


@pytest.mark.parametrize(("loop", "module"), [("auto", "uvloop"), ("asyncio", "asyncio")])
def test_one_worker_runs_on_the_configured_loop(monkeypatch: pytest.MonkeyPatch, loop: str,
                                                module: str) -> None:
    pytest.importorskip("uvloop")
    seen: list[str] = []

    async def serve(self: uvicorn.Server, sockets: Any = None) -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    monkeypatch.setattr(uvicorn.Server, "serve", serve)
    app = Starlette()
    app.state.keys = None
    started = serve_cmd._serve_one(app, {"host": "127.0.0.1", "port": 0, "loop": loop}, None, None)
    assert started is False  # the stand-in never started a server
    assert len(seen) == 1 and seen[0].split(".")[0] == module

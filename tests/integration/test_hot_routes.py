"""The hot routes' raw ASGI endpoints (server/hot.py, server/asgi.py) through a real uvicorn: what
Starlette and its middlewares did for them still happens — other methods reach Starlette (405 with
`Allow`), a chunked body over the limit is a 413, an unexpected failure is a logged OpenAI-shaped 500
on a connection that stays usable, and a client leaving mid-stream stops the stream at once, even
while the gateway waits for the upstream's next chunk."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmroute.testing.behaviours import SlowStream
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, assert_openai_error, user

CLOSED = 'llmroute_errors_total{code="client_closed_request",type="api_error"}'


def test_other_methods_on_a_hot_path_reach_starlette(gw: GatewayServer) -> None:
    with gw.http() as http:
        answer = http.get("/v1/chat/completions")

    assert answer.status_code == 405
    assert "POST" in answer.headers["allow"]
    assert_openai_error(answer.json())


def test_a_chunked_body_over_the_limit_is_refused(serve: Serve) -> None:
    gw = serve({"server": {"max_body_bytes": 2000}})

    def body() -> Iterator[bytes]:  # no content-length: the limit is checked as the body arrives
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}]}'

    with gw.http() as http:
        answer = http.post("/v1/chat/completions", content=body(),
                           headers={"content-type": "application/json"})

    assert answer.status_code == 413
    assert answer.headers["x-llmroute-request-id"].startswith("req_")
    assert "2000 bytes" in assert_openai_error(answer.json())["message"]


def test_an_unexpected_failure_is_a_logged_500(gw: GatewayServer, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gw.app.state.gateway, "complete", broken)
    with gw.http() as http:
        answer = http.post("/v1/chat/completions",
                           json={"model": "auto", "messages": user("hi")})
        assert answer.status_code == 500
        assert "internal error" in assert_openai_error(answer.json())["message"]
        assert "a bug" not in answer.text
        monkeypatch.undo()  # the same connection serves the next request
        assert http.post("/v1/chat/completions",
                         json={"model": "auto", "messages": user("hi")}).status_code == 200
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


def _closed(http: httpx.Client) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(CLOSED):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses", "/v1/messages"])
def test_a_client_leaving_mid_stream_stops_it_at_once(serve: Serve, up: FakeUpstream,
                                                      path: str) -> None:
    gw = serve({"server": {"metrics": {"public": True}}})
    up.script("mini-up", SlowStream(chunk_delay_s=4.0, first_chunk_delay_s=0.0))
    body = {"model": "fake/mini", "stream": True,
            **({"input": "one two three", "max_output_tokens": 16} if path == "/v1/responses"
               else {"messages": user("one two three"), "max_tokens": 16})}
    with gw.http() as http:
        with http.stream("POST", path, json=body) as answer:
            assert answer.status_code == 200
            next(answer.iter_bytes())  # the first event; the next chunk is 4 s away
        left = time.monotonic()  # the connection is closed here
        while _closed(http) < 1 and time.monotonic() - left < 3:
            time.sleep(0.02)
        # recorded well before the upstream's next chunk: the wait for it was cancelled
        assert _closed(http) == 1
        assert time.monotonic() - left < 2.0

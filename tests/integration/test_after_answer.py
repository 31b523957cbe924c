"""What a non-streaming answer waits for (issue 17): the request's ledger entry is handed to the
ledger (its write-ahead log append) before the answer is sent; the bookkeeping it need not wait
for (limits settled, metrics, the response cache's copy) runs after the answer is sent, and the
request's limit reservation holds until then. In-process (`Gateway.complete` without `defer`)
everything is done before it returns."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmroute.chat import chat_request
from llmroute.config import load
from llmroute.gateway import Gateway
from llmroute.ledger.entry import LedgerEntry
from llmroute.server import hot
from llmroute.testing.upstream import FakeUpstream

from .support import ENV, GatewayServer, Serve, base_config, user

LIMITS = {"limits": [{"name": "day-usd", "scope": "global", "window": "day", "usd": "10"}]}


def _watch(gateway: Gateway, events: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Log, in order, the ledger's hand-over, the follower's, the settlement and the send."""
    recorder, follower = gateway.recorder, gateway.follower
    assert follower is not None  # the metrics

    def record(entry: LedgerEntry) -> None:
        events.append("recorded")
        if recorder is not None:
            recorder(entry)

    def follow(entry: LedgerEntry) -> None:
        events.append("followed")
        follower(entry)

    settle = gateway.admission.settle

    async def settled(*args: Any) -> None:
        await settle(*args)
        events.append("settled")

    send_json = hot.send_json

    async def sent(*args: Any) -> None:
        await send_json(*args)
        events.append("sent")

    monkeypatch.setattr(gateway, "recorder", record)
    monkeypatch.setattr(gateway, "follower", follow)
    monkeypatch.setattr(gateway.admission, "settle", settled)
    monkeypatch.setattr(hot, "send_json", sent)


def _until(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize(("limits", "after"), [
    (LIMITS, ["settled", "followed"]),  # a task: the settlement is awaited
    ({}, ["followed"]),  # nothing to settle or keep: a callback
])
def test_the_ledger_comes_before_the_answer_and_the_rest_after(
        serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limits: dict[str, Any],
        after: list[str]) -> None:
    gw: GatewayServer = serve({**limits, "ledger": {"enabled": True,
                                                     "url": f"sqlite:///{tmp_path}/l.db",
                                                     "spool_path": str(tmp_path / "spool")}})
    events: list[str] = []
    _watch(gw.app.state.gateway, events, monkeypatch)
    with gw.http() as http:
        answer = http.post("/v1/chat/completions", json={"model": "auto", "messages": user("hi")})
    assert answer.status_code == 200
    _until(lambda: len(events) >= 2 + len(after))
    assert events == ["recorded", "sent", *after]


def test_a_stream_tells_the_follower_after_its_last_frame(
        serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gw: GatewayServer = serve({"ledger": {"enabled": True, "url": f"sqlite:///{tmp_path}/l.db",
                                          "spool_path": str(tmp_path / "spool")}})
    events: list[str] = []
    _watch(gw.app.state.gateway, events, monkeypatch)
    send_stream = hot.send_stream

    async def streamed(*args: Any) -> None:
        await send_stream(*args)
        events.append("streamed")

    monkeypatch.setattr(hot, "send_stream", streamed)
    with gw.http() as http:
        answer = http.post("/v1/chat/completions",
                           json={"model": "auto", "messages": user("hi"), "stream": True})
    assert answer.status_code == 200 and "[DONE]" in answer.text
    _until(lambda: len(events) >= 3)
    assert events == ["recorded", "streamed", "followed"]


def test_the_reservation_holds_until_the_settlement(serve: Serve,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    gw = serve(LIMITS)
    gateway: Gateway = gw.app.state.gateway
    seen: list[int] = []
    settle = gateway.admission.limiter.settle

    async def settling(ticket: Any, actual: Any) -> None:
        seen.append(len(ticket.meters))  # the request's reservation, still held
        await settle(ticket, actual)

    monkeypatch.setattr(gateway.admission.limiter, "settle", settling)
    with gw.http() as http:
        for _ in range(3):
            assert http.post("/v1/chat/completions",
                             json={"model": "auto", "messages": user("hi")}).status_code == 200
    _until(lambda: len(seen) >= 3)
    assert seen == [1, 1, 1]


def test_in_process_everything_is_done_before_complete_returns(
        up: FakeUpstream, tmp_path: Path) -> None:
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump({**base_config(up), **LIMITS}, sort_keys=False))
    events: list[str] = []
    gateway = Gateway(load(path, environ={}), environ=ENV,
                      recorder=lambda entry: events.append("recorded"),
                      follower=lambda entry: events.append("followed"))
    settle = gateway.admission.settle

    async def settled(*args: Any) -> None:
        await settle(*args)
        events.append("settled")

    gateway.admission.settle = settled  # type: ignore[method-assign]

    async def one() -> list[str]:
        try:
            await gateway.complete(chat_request({"model": "auto", "messages": user("hi")}))
            return list(events)  # as it returned: nothing has yielded to the loop since
        finally:
            await gateway.aclose()

    assert asyncio.run(one()) == ["recorded", "settled", "followed"]

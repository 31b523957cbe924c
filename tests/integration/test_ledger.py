"""The ledger through the real server: one entry per accepted request (success, failure, stream),
feedback over HTTP, and Prometheus metrics fed by the same entries."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from llmroute.ledger import open_store
from llmroute.ledger.entry import LedgerEntry
from llmroute.server.auth import hash_key
from llmroute.testing.behaviours import bad_request, server_error
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, user


def ledger_config(tmp_path: Path) -> dict[str, Any]:
    return {"ledger": {"enabled": True, "url": f"sqlite:///{tmp_path / 'ledger.db'}",
                       "spool_path": str(tmp_path / "spool.jsonl"), "flush_interval_s": 0.05,
                       "store_text": True}}


def entries(tmp_path: Path) -> list[LedgerEntry]:
    async def read() -> list[LedgerEntry]:
        store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
        try:
            return await store.query()
        finally:
            await store.close()

    return asyncio.run(read())


def wait_for_entries(tmp_path: Path, count: int, timeout_s: float = 5.0) -> list[LedgerEntry]:
    deadline = time.monotonic() + timeout_s
    found: list[LedgerEntry] = []
    while time.monotonic() < deadline:
        found = entries(tmp_path)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    return found


def test_every_accepted_request_is_in_the_ledger(serve: Serve, up: FakeUpstream,
                                                 tmp_path: Path) -> None:
    gw: GatewayServer = serve(ledger_config(tmp_path))
    with gw.client() as client:
        ok = client.chat.completions.with_raw_response.create(model="auto",
                                                              messages=user("hi there"))
        up.script("mini-up", server_error(500), server_error(500))
        fallback = client.chat.completions.create(model="auto", messages=user("hi again"))
        up.script("mid-up", bad_request("nope"))
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="fake/mid", messages=user("bad"))
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="no/such-model", messages=user("x"))
        chunks = list(client.chat.completions.create(model="auto", messages=user("stream me"),
                                                     stream=True))
    assert chunks
    found = {e.request_id: e for e in wait_for_entries(tmp_path, 5)}
    assert len(found) == 5
    first = found[ok.headers["x-llmroute-request-id"]]
    assert first.status == "ok" and first.model == "fake/mini" and first.tier == "simple"
    assert first.cost_usd == Decimal(ok.headers["x-llmroute-cost-usd"])
    assert first.baseline_model == "fake/big" and first.baseline_cost_usd is not None
    assert first.baseline_cost_usd > first.cost_usd
    assert first.prompt_text == "user: hi there"
    assert first.response_text == ok.parse().choices[0].message.content
    retried = next(e for e in found.values() if e.model == fallback.model and e.status == "ok"
                   and len(e.attempts) > 1)
    assert [a.error_kind for a in retried.attempts] == ["server", "server", None]
    errors = sorted((e.http_status, e.error_type) for e in found.values() if e.status == "error")
    assert errors == [(400, "invalid_request_error"), (404, "invalid_request_error")]
    streamed = next(e for e in found.values() if e.stream)
    assert streamed.ttft_s is not None and streamed.output_tokens
    assert streamed.response_text == "".join(c.choices[0].delta.content or "" for c in chunks
                                             if c.choices)


def test_feedback_api(serve: Serve, tmp_path: Path) -> None:
    gw = serve(ledger_config(tmp_path))
    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi"))
    request_id = raw.headers["x-llmroute-request-id"]
    url = gw.base_url.replace("/v1", "") + "/v1/feedback"
    with httpx.Client(timeout=10) as http:
        accepted = http.post(url, json={"request_id": request_id, "rating": 4, "success": True})
        assert accepted.status_code == 200, accepted.text
        again = http.post(url, json={"request_id": request_id, "rating": 4, "success": True})
        assert again.status_code == 200  # idempotent
        comment = http.post(url, json={"request_id": request_id, "comment": "good"})
        assert comment.status_code == 200
        for bad in ({"request_id": request_id, "rating": 6}, {"request_id": request_id,
                    "rating": True}, {"request_id": request_id}, {"rating": 3},
                    {"request_id": request_id, "success": "yes"}):
            answer = http.post(url, json=bad)
            assert answer.status_code == 400, bad
            assert set(answer.json()["error"]) == {"message", "type", "param", "code"}
        unknown = http.post(url, json={"request_id": "req_nope", "rating": 3})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "request_not_found"
    entry = next(e for e in entries(tmp_path) if e.request_id == request_id)
    assert (entry.user_rating, entry.task_success, entry.feedback_comment) == (4, True, "good")


def test_a_key_gives_feedback_only_on_its_own_requests(serve: Serve, tmp_path: Path) -> None:
    keys = [{"name": n, "hash": hash_key(f"lr-{n}")} for n in ("team-a", "team-b")]
    gw = serve({**ledger_config(tmp_path), "keys": keys})
    with gw.client("lr-team-a") as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi"))
    request_id = raw.headers["x-llmroute-request-id"]
    url = gw.base_url.replace("/v1", "") + "/v1/feedback"
    body = {"request_id": request_id, "rating": 1}
    with httpx.Client(timeout=10) as http:
        anonymous = http.post(url, json=body)
        assert anonymous.status_code == 401
        other = http.post(url, json=body, headers={"authorization": "Bearer lr-team-b"})
        # Another key's request reads as unknown: ids cannot be probed across keys.
        assert other.status_code == 404, other.text
        assert other.json()["error"]["code"] == "request_not_found"
        assert "lr-team" not in other.text
        own = http.post(url, json={**body, "rating": 5}, headers={"authorization": "Bearer lr-team-a"})
        assert own.status_code == 200, own.text
    entry = next(e for e in entries(tmp_path) if e.request_id == request_id)
    assert (entry.key_name, entry.user_rating) == ("team-a", 5)


def test_metrics_count_requests_cost_and_fallbacks(serve: Serve, up: FakeUpstream,
                                                   tmp_path: Path) -> None:
    gw = serve(ledger_config(tmp_path))
    with gw.client() as client:
        client.chat.completions.create(model="auto", messages=user("hi"))
        up.script("mini-up", server_error(500), server_error(500))
        client.chat.completions.create(model="auto", messages=user("hi"))
    text = httpx.get(gw.base_url.replace("/v1", "") + "/metrics", timeout=10).text
    assert 'llmroute_requests_total{key="-",model="fake/mini",policy="default",status="ok",' \
           'tier="simple"} 1.0' in text
    assert 'llmroute_fallbacks_total{key="-",model="anthropic-ish/claude",policy="default",' \
           'tier="simple"} 1.0' in text
    assert 'llmroute_upstream_attempts_total{model="fake/mini",result="server"} 2.0' in text
    assert "llmroute_cost_usd_total" in text and "llmroute_request_latency_seconds_bucket" in text

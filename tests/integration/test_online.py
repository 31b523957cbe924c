"""Learning online through the real gateway (issue 13), driven by the official openai SDK: feedback
given over `POST /v1/feedback` changes how the gateway routes; with two `llmroute serve` replicas
sharing Redis and a PostgreSQL ledger, feedback given to one changes the other's routing (the
replica holding the learner's lease applies it, the other reloads the published posterior); the
ledger keeps each request's prompt latent and exploration mark, and `x-llmroute-explore: false`
keeps a request from exploring."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis

from llmroute.testing.behaviours import Ok
from llmroute.testing.redis_tools import drop_prefix, redis_unreachable
from llmroute.testing.upstream import FakeUpstream

from .control_support import (
    POSTGRES_DSN,
    REDIS_URL,
    Replica,
    drop_schema,
    gateway_config,
    postgres_unreachable,
    start_replicas,
    stop_replicas,
    wait_for_ledger,
)
from .support import GatewayServer, Serve, user
from .test_ledger import entries, ledger_config, wait_for_entries

PROMPT = "Prove that the square root of two is irrational, step by step, for a beginner."
LEARNED = {"policies": {"learned": {"router": "classifier", "quality_target": 0.7}},
           "routing": {"default_policy": "learned"}}


def routed(client: openai.OpenAI, **options: Any) -> tuple[str, str]:
    """(model, request id) of one `auto` request for PROMPT."""
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=user(PROMPT),
                                                           **options)
    return raw.parse().model, raw.headers["x-llmroute-request-id"]


def fail_all(base_url: str, ids: list[str]) -> None:
    """Feedback over HTTP: each request's answer failed."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        for request_id in ids:
            answer = http.post("/v1/feedback", json={"request_id": request_id, "success": False})
            assert answer.status_code == 200, answer.text


def rerouted(client: openai.OpenAI, before: str, timeout_s: float) -> str:
    """The model PROMPT goes to once it is no longer `before` (fails at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        model, _ = routed(client)
        if model != before:
            return model
        time.sleep(0.1)
    raise AssertionError(f"still routed to {before} after {timeout_s}s")


def test_feedback_over_the_api_changes_routing(serve: Serve, tmp_path: Path) -> None:
    gw: GatewayServer = serve({**ledger_config(tmp_path), **LEARNED,
                               "learning": {"online": True, "reload_s": 0.05}})
    with gw.client() as client:
        first = [routed(client) for _ in range(20)]
        before = first[0][0]
        assert {model for model, _ in first} == {before}
        stored = wait_for_entries(tmp_path, 20)
        assert all(e.latent and not e.explored for e in stored)
        fail_all(gw.base_url.removesuffix("/v1"), [request_id for _, request_id in first])
        after = rerouted(client, before, 10)
    assert after != before
    assert any(e.user_rating is None and e.task_success is False for e in entries(tmp_path))


def test_a_request_marked_not_to_explore_never_does(serve: Serve, tmp_path: Path) -> None:
    gw = serve({**ledger_config(tmp_path), **LEARNED,
                "learning": {"online": True, "explore": 0.05, "seed": 11}})
    with gw.client() as client:
        for _ in range(150):
            routed(client, extra_headers={"x-llmroute-explore": "false"})
        for _ in range(150):
            routed(client)
        with pytest.raises(openai.BadRequestError):
            routed(client, extra_headers={"x-llmroute-explore": "maybe"})
    stored = wait_for_entries(tmp_path, 301)
    ok = [e for e in sorted(stored, key=lambda e: e.ts) if e.status == "ok"]
    assert len(ok) == 300
    assert not any(e.explored for e in ok[:150])
    assert 0 < sum(e.explored for e in ok[150:]) <= 30  # 5% of 150 is 7.5; 30 is far out


# -- two replicas ----------------------------------------------------------------------------------
@pytest.fixture
def shared(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh Redis prefix and PostgreSQL schema (skips when either is down)."""
    for why in (redis_unreachable(), postgres_unreachable()):
        if why is not None:
            pytest.skip(why)
    prefix = f"llmroute-test:{uuid.uuid4().hex}:"
    schema = f"llmroute_online_{uuid.uuid4().hex[:12]}"
    yield prefix, f"{POSTGRES_DSN}?schema={schema}"
    drop_prefix(prefix)
    drop_schema(schema)


def _stored(prefix: str, key: str) -> str | None:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        value = client.get(prefix + key)
        return None if value is None else str(value)
    finally:
        client.close()


def test_feedback_given_to_one_replica_changes_the_others_routing(
        shared: tuple[str, str], tmp_path: Path) -> None:
    with FakeUpstream() as upstream:  # the replicas' config names no upstream key
        upstream.set_default("*", Ok(text="An answer."))
        _two_replicas(upstream, shared, tmp_path)


def _two_replicas(upstream: FakeUpstream, shared: tuple[str, str], tmp_path: Path) -> None:
    prefix, ledger_url = shared
    configs = [gateway_config(upstream, prefix, tmp_path, name=name, ledger_url=ledger_url,
                              learning={"online": True, "reload_s": 0.1}, **LEARNED)
               for name in ("a", "b")]
    a, b = Replica("a", configs[0], tmp_path), Replica("b", configs[1], tmp_path)
    start_replicas([a])
    try:
        deadline = time.monotonic() + 10
        while _stored(prefix, "lease:online-learner") is None:  # a leads before b starts
            assert time.monotonic() < deadline, a.log()
            time.sleep(0.05)
        learner = _stored(prefix, "lease:online-learner")
        start_replicas([b])
        with a.client() as on_a, b.client() as on_b:
            before = routed(on_b)[0]
            given = [routed(on_a) for _ in range(20)]
            assert {model for model, _ in given} == {before}
            wait_for_ledger(ledger_url, 21)
            fail_all(a.url, [request_id for _, request_id in given])
            after = rerouted(on_b, before, 20)
        assert after != before
        # a learned all along, b only reloaded what a published
        assert _stored(prefix, "lease:online-learner") == learner
        assert _stored(prefix, "t:online:version") is not None
    finally:
        stop_replicas([a, b])

"""The Redis answer store and the cross-replica stampede lock, with two ResponseCaches over one
Redis standing in for two replicas: the follower on the other replica is served the leader's
answer once stored, falls through at once when the leader gives up, and values expire by PX."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from llmroute.cache.config import ResponseCacheConfig
from llmroute.cache.response import ResponseCache
from llmroute.cache.store_redis import RedisStore
from llmroute.chat import chat_request
from llmroute.outcome import Outcome, Plan, Principal
from llmroute.testing.redis_tools import TEST_REDIS_URL, drop_prefix, redis_unreachable
from llmroute.types import Usage

pytestmark = pytest.mark.skipif(redis_unreachable() is not None, reason=redis_unreachable() or "")
BODY = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
WHO = Principal(name="k")


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"llmroute-test-rc-{os.getpid()}-{os.urandom(4).hex()}:"
    yield name
    drop_prefix(name)


def replica(prefix: str, wait_s: float = 5.0) -> ResponseCache:
    config = ResponseCacheConfig(enabled=True, wait_s=wait_s)
    return ResponseCache(config, RedisStore(TEST_REDIS_URL, prefix=prefix, timeout_s=0.5))


def outcome() -> Outcome:
    plan = Plan(("m",), "simple", "rules", "default", 1.0, "", 1)
    return Outcome("req_leader", plan, model="m", usage=Usage(1, 1), cost_usd=Decimal("0.01"),
                   finished=True)


REQ = chat_request({"model": "auto", "temperature": 0,
                    "messages": [{"role": "user", "content": "one call"}]})


def test_a_follower_on_another_replica_gets_the_leaders_answer(prefix: str) -> None:
    async def run() -> None:
        a, b = replica(prefix), replica(prefix)
        try:
            lead = await a.probe(REQ, WHO)
            assert lead.state == "miss" and lead.locked
            waiting = asyncio.ensure_future(b.probe(REQ, WHO))
            await asyncio.sleep(0.1)
            assert not waiting.done()
            await a.keep(lead, BODY, outcome())
            follow = await waiting
            assert follow.state == "hit" and follow.answer is not None
            assert follow.answer.request_id == "req_leader"
            assert follow.answer.cost_usd == Decimal("0.01")
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(run())


def test_a_leader_that_fails_lets_the_other_replica_call_at_once(prefix: str) -> None:
    async def run() -> None:
        a, b = replica(prefix, wait_s=10), replica(prefix, wait_s=10)
        try:
            lead = await a.probe(REQ, WHO)
            waiting = asyncio.ensure_future(b.probe(REQ, WHO))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            a.release(lead)  # the upstream call failed
            follow = await waiting
            assert follow.state == "miss" and follow.answer is None
            assert time.monotonic() - started < 1.0  # not the whole wait_s
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(run())


def test_values_expire_by_px(prefix: str) -> None:
    async def run() -> None:
        store = RedisStore(TEST_REDIS_URL, prefix=prefix, timeout_s=0.5)
        try:
            await store.put("k", b"v", ttl_s=0.5)
            assert await store.get("k") == b"v"
            await asyncio.sleep(0.7)
            assert await store.get("k") is None
        finally:
            await store.aclose()

    asyncio.run(run())


def test_an_outage_is_a_bypass_and_the_cache_comes_back(prefix: str) -> None:
    from llmroute.cache import response
    from llmroute.testing.tcp_proxy import TcpProxy

    host, port = TEST_REDIS_URL.split("//")[1].split("/")[0].split(":")

    async def run() -> None:
        async with TcpProxy(host, int(port)) as proxy:
            config = ResponseCacheConfig(enabled=True, wait_s=2)
            cache = ResponseCache(config, RedisStore(f"redis://127.0.0.1:{proxy.port}/0",
                                                     prefix=prefix, timeout_s=0.2))
            try:
                lead = await cache.probe(REQ, WHO)
                await cache.keep(lead, BODY, outcome())
                assert (await cache.probe(REQ, WHO)).state == "hit"
                await proxy.hang()  # a black hole: the first request pays the timeout ...
                started = time.monotonic()
                assert (await cache.probe(REQ, WHO)).state == "bypass"
                assert not cache.up
                # ... the next ones within RETRY_S skip the store at once
                quick = time.monotonic()
                assert (await cache.probe(REQ, WHO)).state == "bypass"
                assert time.monotonic() - quick < 0.05 < quick - started
                await proxy.restore()
                await asyncio.sleep(response.RETRY_S)
                assert (await cache.probe(REQ, WHO)).state == "hit" and cache.up
            finally:
                await cache.aclose()

    asyncio.run(run())

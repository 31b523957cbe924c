"""The `SharedState` contract, run against `MemoryState` (on a fake clock) and `RedisState` (a real
Redis, each test under its own key prefix, with real sleeps); then what only Redis has: two clients
racing for one limit, an outage through a TCP proxy, and a Redis restart.

Redis is `LLMROUTE_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0); its tests skip when it cannot
be reached. The restart test starts its own `redis-server` on a free port and skips without one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from llmroute.control.state import NANO_USD, Charge, Refusal, SharedState, StateUnavailable
from llmroute.control.state_memory import PURGE_BATCH, MemoryState
from llmroute.control.state_redis import RedisState
from llmroute.testing.redis_tools import drop_prefix, redis_unreachable
from llmroute.testing.tcp_proxy import TcpProxy

REDIS_URL = os.environ.get("LLMROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DAY = 86_400.0




@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh key prefix on the test Redis (skips when it is down); its keys deleted afterwards."""
    why = redis_unreachable(REDIS_URL)
    if why is not None:
        pytest.skip(why)
    prefix = f"llmroute-test:{uuid.uuid4().hex}:"
    yield prefix
    drop_prefix(prefix, REDIS_URL)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """A state under test and how time passes for it (a fake clock's step, or a real sleep)."""

    state: SharedState
    advance: Callable[[float], Awaitable[None]]
    exact_time: bool


@pytest_asyncio.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()

        async def step(seconds: float) -> None:
            clock.now += seconds

        yield Backend(MemoryState(clock=clock), step, exact_time=True)
        return
    prefix: str = request.getfixturevalue("redis_prefix")
    state = RedisState(REDIS_URL, prefix=prefix)
    yield Backend(state, asyncio.sleep, exact_time=False)
    await state.aclose()


def limited(key: str, amount: int, limit: int | None, ttl_s: float = DAY) -> Charge:
    return Charge(key=key, amount=amount, limit=limit, ttl_s=ttl_s)


# --- counters ---------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_reserve_applies_all_charges_or_none(backend: Backend) -> None:
    s = backend.state
    assert await s.reserve([limited("a", 4, 10), limited("b", 3, 5), limited("c", 100, None)]) is None
    assert await s.read(["a", "b", "c", "missing"]) == [4, 3, 100, 0]

    refusal = await s.reserve([limited("a", 4, 10), limited("b", 3, 5), limited("c", 1, None)])
    assert refusal == Refusal(index=1, current=3)
    assert await s.read(["a", "b", "c"]) == [4, 3, 100]  # "a" was not charged either

    refusal = await s.reserve([limited("c", 1, None), limited("a", 7, 10), limited("b", 9, 5)])
    assert refusal == Refusal(index=1, current=4)  # the first charge that does not fit
    assert await s.read(["a", "b", "c"]) == [4, 3, 100]


@pytest.mark.asyncio
async def test_the_limit_itself_is_allowed_one_more_is_refused(backend: Backend) -> None:
    s = backend.state
    assert await s.reserve([limited("k", 9, 10)]) is None
    assert await s.reserve([limited("k", 1, 10)]) is None
    assert await s.read(["k"]) == [10]
    assert await s.reserve([limited("k", 1, 10)]) == Refusal(index=0, current=10)
    assert await s.reserve([limited("k", 0, 10)]) is None
    assert await s.read(["k"]) == [10]


@pytest.mark.asyncio
async def test_charges_to_one_key_in_one_call_add_up_before_the_check(backend: Backend) -> None:
    s = backend.state
    assert await s.reserve([limited("k", 6, 10), limited("k", 5, 10)]) == Refusal(index=1, current=6)
    assert await s.read(["k"]) == [0]
    assert await s.reserve([limited("k", 6, 10), limited("k", 4, 10)]) is None
    assert await s.read(["k"]) == [10]


@pytest.mark.asyncio
async def test_money_is_exact_up_to_millions_of_dollars(backend: Backend) -> None:
    s = backend.state
    limit = 9_000_000 * NANO_USD  # just below 2**53
    assert await s.reserve([limited("usd", limit - 1, limit)]) is None
    assert await s.reserve([limited("usd", 2, limit)]) == Refusal(index=0, current=limit - 1)
    assert await s.reserve([limited("usd", 1, limit)]) is None
    assert await s.read(["usd"]) == [limit]
    big = 2**60 + 1  # unlimited counters are exact 64-bit integers
    await s.adjust([limited("big", big, None)])
    await s.adjust([limited("big", 2, None)])
    assert await s.read(["big"]) == [big + 2]


@pytest.mark.asyncio
async def test_adjust_settles_a_reservation_with_no_limit_check(backend: Backend) -> None:
    s = backend.state
    assert await s.reserve([limited("spend", 10, 10)]) is None
    await s.adjust([limited("spend", -4, 10)])  # the call cost 6 of the 10 reserved
    assert await s.read(["spend"]) == [6]
    assert await s.reserve([limited("spend", 4, 10)]) is None
    assert await s.reserve([limited("spend", 1, 10)]) == Refusal(index=0, current=10)
    await s.adjust([limited("spend", 5, 10), limited("other", -3, None)])  # no check, may go past
    assert await s.read(["spend", "other"]) == [15, -3]


@pytest.mark.asyncio
async def test_counters_expire_ttl_after_creation(backend: Backend) -> None:
    s = backend.state
    assert await s.reserve([limited("w", 10, 10, ttl_s=0.5), limited("long", 1, None)]) is None
    await backend.advance(0.3)
    await s.adjust([limited("w", -1, None, ttl_s=0.5)])  # a later charge does not extend the window
    assert await s.read(["w", "long"]) == [9, 1]
    await backend.advance(0.35)
    assert await s.read(["w", "long"]) == [0, 1]
    assert await s.reserve([limited("w", 10, 10, ttl_s=0.5)]) is None  # a fresh window
    await s.adjust([limited("fresh", -2, None, ttl_s=0.3)])  # adjust creates with the ttl too
    assert await s.read(["w", "fresh"]) == [10, -2]
    await backend.advance(0.6)
    assert await s.read(["w", "fresh"]) == [0, 0]


# --- values, claims, leases -------------------------------------------------------------------

@pytest.mark.asyncio
async def test_first_value_first_writer_wins(backend: Backend) -> None:
    s = backend.state
    winners = await asyncio.gather(*(s.first_value("user:7", f"arm-{i}") for i in range(16)))
    assert set(winners) == {winners[0]}
    assert await s.first_value("user:7", "late") == winners[0]
    assert await s.first_value("user:8", "b") == "b"
    assert await s.first_value("tmp", "one", ttl_s=0.3) == "one"
    assert await s.first_value("tmp", "two", ttl_s=0.3) == "one"
    await backend.advance(0.45)
    assert await s.first_value("tmp", "two", ttl_s=0.3) == "two"
    assert await s.first_value("user:7", "late") == winners[0]  # no ttl: kept


@pytest.mark.asyncio
async def test_texts_last_writer_wins_and_never_expire(backend: Backend) -> None:
    s = backend.state
    assert await s.get_text("online:state") is None
    await s.set_text("online:state", "one")
    await s.set_text("online:state", '{"é": [1.5]}' * 1000)  # a large document, non-ASCII
    await backend.advance(0.2)
    assert await s.get_text("online:state") == '{"é": [1.5]}' * 1000
    assert await s.get_text("other") is None


@pytest.mark.asyncio
async def test_claim_is_won_once_per_ttl(backend: Backend) -> None:
    s = backend.state
    results = await asyncio.gather(*(s.claim("alert:budget:80", 0.3) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    assert await s.claim("alert:budget:90", 0.3) is True
    await backend.advance(0.45)
    assert await s.claim("alert:budget:80", 0.3) is True
    assert await s.claim("alert:budget:80", 0.3) is False


@pytest.mark.asyncio
async def test_lead_acquire_renew_expire_and_other_holder_refused(backend: Backend) -> None:
    s = backend.state
    assert await s.lead("alerts", "a", 0.4) is True
    assert await s.lead("alerts", "b", 0.4) is False
    await backend.advance(0.25)
    assert await s.lead("alerts", "a", 0.4) is True  # renewed: 0.4 s from now
    await backend.advance(0.25)
    assert await s.lead("alerts", "b", 0.4) is False  # without the renewal it would have lapsed
    assert await s.lead("other", "b", 0.4) is True  # leases are independent
    await backend.advance(0.55)  # "a" stopped renewing
    assert await s.lead("alerts", "b", 0.4) is True
    assert await s.lead("alerts", "a", 0.4) is False


# --- cooldowns --------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_open_cooldown_keeps_the_longer(backend: Backend) -> None:
    s = backend.state
    assert await s.cooldowns() == {}
    await s.open_cooldown("gpt-4o", 10.0)
    await s.open_cooldown("gpt-4o", 1.0)  # shorter: ignored
    left = await s.cooldowns()
    assert set(left) == {"gpt-4o"} and 9.5 < left["gpt-4o"] <= 10.0
    await s.open_cooldown("gpt-4o", 20.0)  # longer: taken
    assert 19.5 < (await s.cooldowns())["gpt-4o"] <= 20.0


@pytest.mark.asyncio
async def test_cooldowns_list_the_seconds_left_and_drop_ended_ones(backend: Backend) -> None:
    s = backend.state
    await s.open_cooldown("a", 2.0)
    await s.open_cooldown("b", 0.3)
    await backend.advance(0.5)
    left = await s.cooldowns()
    assert set(left) == {"a"}
    if backend.exact_time:
        assert left["a"] == pytest.approx(1.5)
    else:
        assert 1.0 < left["a"] <= 1.5
    await s.open_cooldown("b", 0.3)  # an ended cooldown can open again
    assert set(await s.cooldowns()) == {"a", "b"}


# --- memory only ------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_memory_purges_expired_windows_so_it_does_not_grow() -> None:
    clock = FakeClock()
    state = MemoryState(clock=clock)
    for minute in range(200):  # a per-minute window key, 20 users, each kept 60 s
        for user in range(20):
            await state.reserve([limited(f"rpm:{user}:{minute}", 1, 100, ttl_s=60.0)])
        await state.claim(f"alert:{minute}", 60.0)
        await state.lead("evaluator", f"replica-{minute % 2}", 60.0)
        clock.now += 60.0
    assert state.entries() <= 2 * (20 + 1 + 1) + PURGE_BATCH
    assert await state.read(["rpm:0:199", "rpm:0:0"]) == [0, 0]


@pytest.mark.asyncio
async def test_memory_state_is_a_shared_state() -> None:
    state: SharedState = MemoryState()
    await state.ping()
    await state.aclose()


# --- redis only -------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_two_clients_racing_for_one_limit_get_exactly_the_limit(redis_prefix: str) -> None:
    clients = [RedisState(REDIS_URL, prefix=redis_prefix) for _ in range(2)]
    try:
        calls = [clients[i % 2].reserve([limited("rpm", 1, 10), limited("spend", 5, None)])
                 for i in range(64)]
        results = await asyncio.gather(*calls)
        assert sum(r is None for r in results) == 10
        assert all(r == Refusal(index=0, current=10) for r in results if r is not None)
        assert await clients[0].read(["rpm", "spend"]) == [10, 50]
    finally:
        for client in clients:
            await client.aclose()


async def exercise(state: RedisState) -> None:
    """One call of every method."""
    await state.ping()
    await state.reserve([limited("x", 1, None)])
    await state.adjust([limited("x", 1, None)])
    await state.read(["x"])
    await state.first_value("v", "1")
    await state.claim("c", 1.0)
    await state.lead("l", "me", 1.0)
    await state.open_cooldown("m", 1.0)
    await state.cooldowns()


async def assert_unavailable_quickly(state: RedisState) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        state.ping, lambda: state.reserve([limited("x", 1, 5)]), lambda: state.read(["x"]),
        lambda: state.adjust([limited("x", 1, None)]), lambda: state.first_value("v", "2"),
        lambda: state.claim("c2", 1.0), lambda: state.lead("l", "me", 1.0),
        lambda: state.open_cooldown("m", 1.0), state.cooldowns,
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(StateUnavailable):
            await call()
        assert time.monotonic() - started < 1.0


@pytest.mark.asyncio
async def test_outage_raises_quickly_and_the_same_client_recovers(redis_prefix: str) -> None:
    target = urlsplit(REDIS_URL)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
        via_proxy = target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        state = RedisState(via_proxy, prefix=redis_prefix, timeout_s=0.3)
        try:
            await asyncio.gather(*(exercise(state) for _ in range(4)))  # several pooled connections
            await proxy.cut()  # connections dropped, new ones refused
            await assert_unavailable_quickly(state)
            await proxy.restore()
            await exercise(state)
            assert await state.read(["x"]) == [10]  # 4 x 2 before the cut, 2 now, none while cut
            await proxy.hang()  # a black hole: only the socket timeout ends a call
            await assert_unavailable_quickly(state)
            await proxy.restore()
            await asyncio.gather(*(exercise(state) for _ in range(4)))
            assert await state.read(["x"]) == [18]  # none went through while hanging
        finally:
            await state.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while redis_unreachable(f"redis://127.0.0.1:{port}") is not None:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    return process


@pytest.mark.asyncio
async def test_a_restarted_redis_is_used_again_scripts_reloaded(tmp_path: Path) -> None:
    if not (shutil.which("redis-server") or Path("/usr/bin/redis-server").exists()):
        pytest.skip("redis-server is not installed")
    port = free_port()
    server = start_redis(port, tmp_path)
    state = RedisState(f"redis://127.0.0.1:{port}/0", timeout_s=0.3)
    try:
        await exercise(state)
        server.terminate()
        server.wait(timeout=5)
        await assert_unavailable_quickly(state)
        server = start_redis(port, tmp_path)  # empty: no data, no scripts loaded
        assert await state.reserve([limited("x", 3, 3)]) is None
        assert await state.reserve([limited("x", 1, 3)]) == Refusal(index=0, current=3)
        await exercise(state)
    finally:
        await state.aclose()
        server.terminate()
        server.wait(timeout=5)

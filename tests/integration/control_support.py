"""Pieces of the control-plane integration tests (`test_control.py`): replicas (`llmroute serve`
processes) sharing one Redis and one PostgreSQL ledger schema, the base config they run, readers of
the shared state (Redis counters) and of the ledger, a TCP proxy in front of Redis driven from a
thread of its own, and calendar helpers for the expected `retry-after` / `resets_at` values.

Redis is `LLMROUTE_TEST_REDIS_URL` (default redis://127.0.0.1:6379/0) and PostgreSQL
`LLMROUTE_TEST_POSTGRES_DSN` (default postgresql://postgres@127.0.0.1:5432/test); the tests skip
when either cannot be reached.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import openai
import redis
import yaml

from llmroute.ledger import open_store
from llmroute.ledger.entry import LedgerEntry
from llmroute.server.auth import hash_key
from llmroute.testing.tcp_proxy import TcpProxy
from llmroute.testing.upstream import FakeUpstream

REDIS_URL = os.environ.get("LLMROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get("LLMROUTE_TEST_POSTGRES_DSN",
                              "postgresql://postgres@127.0.0.1:5432/test")
NANO_PER_USD = 1_000_000_000
T = TypeVar("T")

#: Prices (USD per 1M tokens) of the three models: big ones, so that costs are large, round numbers.
PRICES: dict[str, tuple[int, int]] = {
    "fake/big": (1000, 5000),   # $0.001 per input token, $0.005 per output token
    "fake/mid": (100, 500),
    "fake/small": (10, 50),
}
UPSTREAM_NAME = {"fake/big": "big-up", "fake/mid": "mid-up", "fake/small": "small-up"}


def cost(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """The exact USD cost of a usage on one of the models above."""
    inp, out = PRICES[model]
    return (Decimal(input_tokens) * inp + Decimal(output_tokens) * out) / 1_000_000


def nano(usd: Decimal) -> int:
    """USD as the counters' unit (these costs are whole nano-dollars: no rounding happens)."""
    value = usd * NANO_PER_USD
    assert value == value.to_integral_value(), usd
    return int(value)


# -- reachability ---------------------------------------------------------------------------------


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous test code."""
    return asyncio.run(factory())


async def _pg_execute(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN, timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_unreachable() -> str | None:
    """None when PostgreSQL answers at POSTGRES_DSN, else why not."""
    try:
        run_async(lambda: _pg_execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return f"PostgreSQL not reachable at {POSTGRES_DSN}: {type(exc).__name__}: {exc}"
    return None


def drop_schema(schema: str) -> None:
    run_async(lambda: _pg_execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))




# -- the shared state and the ledger, as stored -------------------------------------------------
def counters(prefix: str, limit: str) -> dict[str, int]:
    """Every Redis counter of limit `limit` under `prefix` (key -> value)."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = sorted(client.scan_iter(match=f"{prefix}c:lim:{limit}:*", count=1000))
        return {k: int(v) for k, v in zip(keys, client.mget(keys), strict=True)} if keys else {}
    finally:
        client.close()


def stored_value(prefix: str, key: str) -> str | None:
    """A first-writer-wins value (e.g. a sticky experiment assignment) under `prefix`."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        value = client.get(f"{prefix}v:{key}")
        return None if value is None else str(value)
    finally:
        client.close()


def ledger_entries(url: str) -> list[LedgerEntry]:
    async def read() -> list[LedgerEntry]:
        store = open_store(url)
        try:
            return await store.query()
        finally:
            await store.close()

    return run_async(read)


def wait_for_ledger(url: str, count: int, timeout_s: float = 10.0) -> list[LedgerEntry]:
    """The ledger's entries once it holds at least `count` (whatever it holds at the timeout)."""
    deadline = time.monotonic() + timeout_s
    found: list[LedgerEntry] = []
    while time.monotonic() < deadline:
        found = ledger_entries(url)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    return found


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step_s)
    return check()


# -- configuration --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """A gateway key: its name and the secret clients send (the config stores its hash)."""

    name: str
    team: str | None = None
    limits: tuple[Mapping[str, Any], ...] = ()

    @property
    def secret(self) -> str:
        return f"lr-test-{self.name}-secret"

    def config(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "hash": hash_key(self.secret)}
        if self.team:
            entry["team"] = self.team
        if self.limits:
            entry["limits"] = [dict(a) for a in self.limits]
        return entry


def gateway_config(up: FakeUpstream, prefix: str, tmp_path: Path, *, name: str,
                   ledger_url: str | None = None, state_url: str = REDIS_URL,
                   keys: Sequence[Key] = (), **sections: Any) -> dict[str, Any]:
    """Three models on the fake upstream, one per tier, priced as in PRICES; policies `default`
    (always `fake/big`), `mid` (`fake/mid`) and `cheap` (`fake/small`); the shared state in Redis
    under `prefix`; the ledger at `ledger_url` (off without one); `sections` replace the rest."""
    models = {
        model: {"deployment": "fake", "upstream_name": UPSTREAM_NAME[model],
                "input_per_m": str(inp), "output_per_m": str(out), "context_window": 100_000}
        for model, (inp, out) in PRICES.items()
    }
    config: dict[str, Any] = {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url,
                               "timeout": {"connect_s": 2, "first_byte_s": 5, "total_s": 10}}},
        "models": models,
        "tiers": {"simple": {"model": "fake/small"}, "medium": {"model": "fake/mid"},
                  "complex": {"model": "fake/big"}},
        "policies": {"default": {"router": "fixed", "tier": "complex"},
                     "mid": {"router": "fixed", "tier": "medium"},
                     "cheap": {"router": "fixed", "tier": "simple"}},
        "routing": {"default_policy": "default"},
        "resilience": {"deadline_s": 10, "retry": {"max_attempts": 1}},
        "state": {"url": state_url, "prefix": prefix},
        "ledger": ({"enabled": False} if ledger_url is None else
                   {"enabled": True, "url": ledger_url, "flush_interval_s": 0.05,
                    "spool_path": str(tmp_path / f"{name}.spool.jsonl")}),
        "keys": [k.config() for k in keys],
    }
    config.update(sections)
    return config


# -- replicas -------------------------------------------------------------------------------------
_RUNNING = re.compile(rb"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Replica:
    """One `llmroute serve` process on a port of its own choosing (`--port 0`)."""

    name: str
    config: dict[str, Any]
    tmp_path: Path
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    stopped: bool = False
    _log: Path = field(init=False)

    def __post_init__(self) -> None:
        self._log = self.tmp_path / f"{self.name}.log"

    def spawn(self) -> None:
        path = self.tmp_path / f"{self.name}.yaml"
        # sort_keys=False: the order of `tiers:` is the ladder, cheapest first
        path.write_text(yaml.safe_dump(self.config, sort_keys=False), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmroute", "serve", "-c", str(path), "--host", "127.0.0.1",
             "--port", "0"], stdout=self._log.open("wb"), stderr=subprocess.STDOUT, env=env)

    def wait_started(self, deadline: float) -> None:
        assert self.proc is not None
        while time.monotonic() < deadline:
            found = _RUNNING.search(self._log.read_bytes())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"replica {self.name} did not start:\n{self.log()}")

    def log(self) -> str:
        return self._log.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: Key | None = None, **options: Any) -> openai.OpenAI:
        """The sync openai SDK (no retries) on this replica, as `key` (or open)."""
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key.secret if key else "open",
                             max_retries=0, timeout=options.pop("timeout", 20.0), **options)

    def aclient(self, key: Key | None = None) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=key.secret if key else "open",
                                  max_retries=0, timeout=30.0)

    def http(self, key: Key | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key.secret}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20.0)

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout_s: float = 30.0) -> None:
        """Wait for the graceful shutdown (ledger flushed, pending settlements done)."""
        if self.proc is None or self.stopped:
            return
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"replica {self.name} did not stop:\n{self.log()}") from None
        self.stopped = True
        assert code in (0, -signal.SIGTERM), f"replica {self.name} exited {code}:\n{self.log()}"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stopped = True


def start_replicas(replicas: Sequence[Replica], timeout_s: float = 30.0) -> None:
    """Start every replica at once and wait until each serves."""
    for replica in replicas:
        replica.spawn()
    deadline = time.monotonic() + timeout_s
    for replica in replicas:
        replica.wait_started(deadline)


def stop_replicas(replicas: Sequence[Replica]) -> None:
    """SIGTERM every replica at once, then wait for each to finish."""
    for replica in replicas:
        replica.terminate()
    for replica in replicas:
        replica.wait_stopped()


# -- Redis behind a proxy -------------------------------------------------------------------------
class ProxyThread:
    """A `TcpProxy` in front of the test Redis, running on an event loop in a thread of its own, so
    the (synchronous) test can cut and restore Redis for the replica processes."""

    def __init__(self) -> None:
        target = urlsplit(REDIS_URL)
        self.proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="redis-proxy",
                                       daemon=True)

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def start(self) -> ProxyThread:
        self.thread.start()
        self._run(self.proxy.start())
        return self

    @property
    def url(self) -> str:
        db = urlsplit(REDIS_URL).path or "/0"
        return f"redis://127.0.0.1:{self.proxy.port}{db}"

    def cut(self) -> None:
        self._run(self.proxy.cut())

    def restore(self) -> None:
        self._run(self.proxy.restore())

    def close(self) -> None:
        self._run(self.proxy.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


# -- calendar -------------------------------------------------------------------------------------
def next_boundary(window: str, now: datetime, zone: ZoneInfo) -> datetime:
    """When the calendar window containing `now` ends (aware, UTC), computed here on its own:
    minute (UTC), local hour, local midnight, local Monday midnight, local 1st of the month."""
    local = now.astimezone(zone)
    if window == "minute":
        start = now.astimezone(UTC).replace(second=0, microsecond=0)
        return start + timedelta(minutes=1)
    if window == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
        return (start + timedelta(hours=1)).astimezone(UTC)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    if window == "day":
        end = (midnight + timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=zone)
    elif window == "week":
        monday = midnight - timedelta(days=local.weekday())
        end = (monday + timedelta(days=7)).replace(tzinfo=None).replace(tzinfo=zone)
    else:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = datetime(year, month, 1, tzinfo=zone)
    return end.astimezone(UTC)


def clear_of_boundaries(windows: Sequence[str], zone: ZoneInfo, margin_s: float) -> None:
    """Sleep past any window boundary closer than `margin_s`, so that a few requests and the reads
    that check them all fall in one window."""
    now = datetime.now(UTC)
    ends = [next_boundary(w, now, zone) for w in windows]
    soonest = min(ends)
    left = (soonest - now).total_seconds()
    if left < margin_s:
        time.sleep(left + 0.05)

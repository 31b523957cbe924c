"""Redis helpers for tests and benchmarks: is a Redis there, and clean up one test's keys."""

from __future__ import annotations

import os

import redis

#: The Redis tests use: `$LLMROUTE_TEST_REDIS_URL`, else the local one.
TEST_REDIS_URL = os.environ.get("LLMROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_unreachable(url: str = TEST_REDIS_URL) -> str | None:
    """None when Redis answers at `url`, else why not (a test's skip reason)."""
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return f"Redis not reachable at {url}: {exc}"
    finally:
        client.close()


def drop_prefix(prefix: str, url: str = TEST_REDIS_URL) -> None:
    """Delete every key under `prefix`."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()

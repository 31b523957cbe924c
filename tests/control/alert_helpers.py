"""Helpers for the alert tests: a real local webhook server (aiohttp, 127.0.0.1:0) that records what
it receives and fails on demand, ledger entries, and a PostgreSQL availability check."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from aiohttp import web

from llmroute.ledger import AttemptRecord, LedgerEntry

POSTGRES_DSN = os.environ.get("LLMROUTE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LLMROUTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class WebhookServer:
    """Answers POSTs to any path: the next status of `failures` first (with `retry_after`), then
    200; records every body it accepted in `received` and counts every request in `hits`."""

    failures: list[int] = field(default_factory=list)
    retry_after: str | None = None
    received: list[Received] = field(default_factory=list)
    hits: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> WebhookServer:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def _handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        body = await request.json()
        if self.failures:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(status=self.failures.pop(0), text="nope", headers=headers)
        self.received.append(Received(request.path, dict(request.headers), body))
        return web.json_response({"ok": True})

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def entry(n: int, ts: datetime, *, status: str = "ok", http: int = 200, model: str | None = "m/a",
          tried: Sequence[tuple[str, str | None]] | None = None, cost: str | None = "0.01",
          policy: str | None = "auto", key: str | None = "k1", rating: int | None = None,
          success: bool | None = None) -> LedgerEntry:
    """A ledger entry; `tried` lists (model, error kind or None) attempts (default: `model`, ok)."""
    attempts = tried if tried is not None else ([(model, None)] if model else [])
    return LedgerEntry(
        request_id=f"req-{n:06d}", ts=ts, status="ok" if status == "ok" else "error", http_status=http,
        model=model if status == "ok" else None, policy=policy, key_name=key,
        attempts=tuple(AttemptRecord(m, kind) for m, kind in attempts),
        cost_usd=None if cost is None else Decimal(cost), user_rating=rating, task_success=success)


async def postgres_error() -> str | None:
    """Why PostgreSQL cannot be used (None when it can)."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(POSTGRES_DSN, timeout=3), 5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return f"PostgreSQL unreachable at {POSTGRES_DSN}: {type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def drop_schema(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()



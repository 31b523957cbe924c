"""Helpers for the ledger tests: entries, a store that fails on demand, polling."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from llmroute.ledger import AttemptRecord, LedgerEntry, MigrationStatus, Store, StoreError
from llmroute.ledger.aggregates import WindowAggregate
from llmroute.ledger.explore_sql import Cursor as PageCursor
from llmroute.ledger.explore_sql import Filters
from llmroute.ledger.retention import Cutoffs, Pruned
from llmroute.ledger.rollup_read import RollupWindow

BASE_TS = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
POSTGRES_DSN = os.environ.get("LLMROUTE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def make_entry(n: int, **changes: Any) -> LedgerEntry:
    """A plain successful entry number `n` (ts = BASE_TS + n seconds)."""
    values: dict[str, Any] = {
        "request_id": f"req-{n:06d}",
        "ts": BASE_TS + timedelta(seconds=n),
        "status": "ok",
        "http_status": 200,
        "key_name": "team-a",
        "policy": "default",
        "router": "rules",
        "tier": "simple",
        "confidence": 0.8,
        "reason": "short prompt",
        "model": "openai/gpt-4o-mini",
        "attempts": (AttemptRecord("openai/gpt-4o-mini", None, latency_s=0.25),),
        "latency_s": 0.3,
        "input_tokens": 12,
        "output_tokens": 34,
        "cached_tokens": 0,
        "cost_usd": Decimal("0.0000225"),
    }
    values.update(changes)
    return LedgerEntry(**values)


def full_entry(n: int = 1) -> LedgerEntry:
    """An entry with every field set, unusual values included."""
    return make_entry(
        n,
        ts=BASE_TS + timedelta(seconds=n, microseconds=123456),
        status="error",
        http_status=502,
        user="user-42",
        session="sess-7",
        experiment_arm="arm-b",
        model=None,
        attempts=(
            AttemptRecord("a/model", "rate_limit", "429 slow down", 429, 0.125),
            AttemptRecord("b/model", "cooldown", "skipped: breaker open", None, 0.0, skipped=True),
            AttemptRecord("c/model", "timeout", "cut at the deadline", None, 30.5),
        ),
        error_type="api_error",
        error_code="all_attempts_failed",
        stream=True,
        latency_s=30.75,
        ttft_s=0.0625,
        upstream_latency_s=30.5,
        input_tokens=1_000_000,
        output_tokens=0,
        cached_tokens=512,
        cost_usd=Decimal("0.0000001234"),
        baseline_cost_usd=Decimal("0.00000001875"),
        baseline_model="openai/gpt-4o",
        prompt_text="héllo\nwörld \"quoted\" ☃ \u2028 end",
        response_text="",
        user_rating=4,
        task_success=False,
        feedback_comment="ok-ish",
        feedback_ts=BASE_TS + timedelta(hours=1),
        explored=True,
        latent="AAA8ADwAPAA8/w==",
        cache_write_tokens=2048,
        prompt_cache_saved_usd=Decimal("-0.00000000075"),
        cache="semantic",
        cache_saved_usd=Decimal("0.0000000000000000000000000001"),
        cached_from="req-earlier",
        cache_similarity=0.9375,
    )


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0, what: str = "") -> None:
    """Poll `predicate` until it holds; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.005)


class FlakyStore:
    """Wraps a store and fails on demand: `down` (writes and pings raise), `lose_acks` (the next
    n writes commit, then raise as if the answer was lost), `hang` (writes never return)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.down = False
        self.lose_acks = 0
        self.hang = False
        self.acknowledged: list[list[str]] = []  # ids of each write that reported success

    async def write(self, entries: Sequence[LedgerEntry]) -> None:
        if self.hang:
            await asyncio.Event().wait()
        if self.down:
            raise StoreError("injected: store down")
        await self.inner.write(entries)
        if self.lose_acks > 0:
            self.lose_acks -= 1
            raise StoreError("injected: acknowledgement lost")
        self.acknowledged.append([e.request_id for e in entries])

    async def ping(self) -> None:
        if self.down:
            raise StoreError("injected: store down")
        await self.inner.ping()

    async def migrate(self) -> list[str]:
        return await self.inner.migrate()

    async def migration_status(self) -> list[MigrationStatus]:
        return await self.inner.migration_status()

    async def feedback(self, request_id: str, rating: int | None = None, success: bool | None = None,
                       comment: str | None = None, *, at: datetime | None = None,
                       owner: str | None = None) -> bool:
        return await self.inner.feedback(request_id, rating, success, comment, at=at, owner=owner)

    async def get(self, request_id: str) -> LedgerEntry | None:
        return await self.inner.get(request_id)

    async def query(self, since: datetime | None = None, until: datetime | None = None,
                    limit: int | None = None, *,
                    experiments: Sequence[str] | None = None) -> list[LedgerEntry]:
        return await self.inner.query(since, until, limit, experiments=experiments)

    async def aggregate(self, by: str, since: datetime | None = None,
                        until: datetime | None = None, *, key: str | None = None
                        ) -> WindowAggregate:
        return await self.inner.aggregate(by, since, until, key=key)

    def iterate(self, since: datetime | None = None, until: datetime | None = None, *,
                batch_size: int = 1000,
                experiments: Sequence[str] | None = None,
                cache: Sequence[str] | None = None) -> AsyncIterator[list[LedgerEntry]]:
        return self.inner.iterate(since, until, batch_size=batch_size, experiments=experiments,
                                  cache=cache)

    async def latest(self, since: datetime, until: datetime, filters: Filters, limit: int,
                     before: PageCursor | None = None) -> list[LedgerEntry]:
        return await self.inner.latest(since, until, filters, limit, before)

    async def rollups(self, by: str, since: datetime | None = None,
                      until: datetime | None = None) -> RollupWindow:
        return await self.inner.rollups(by, since, until)

    async def rollups_by(self, bys: Sequence[str], since: datetime | None = None,
                         until: datetime | None = None) -> dict[str, RollupWindow]:
        return await self.inner.rollups_by(bys, since, until)

    async def rebuild_rollups(self) -> None:
        await self.inner.rebuild_rollups()

    async def prune(self, cutoffs: Cutoffs, *, dry_run: bool = False) -> Pruned:
        return await self.inner.prune(cutoffs, dry_run=dry_run)

    async def count(self) -> int:
        return await self.inner.count()

    async def close(self) -> None:
        await self.inner.close()


class TcpProxy:
    """A loopback TCP proxy (to PostgreSQL) that can cut every connection and refuse new ones, to
    make a real outage without touching the server."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.refusing = False
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen on a free loopback port and return it."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        """Abort every open connection and refuse new ones until `restore()`."""
        self.refusing = True
        for transport in list(self._transports):
            transport.abort()  # type: ignore[attr-defined]
        self._transports.clear()

    def restore(self) -> None:
        self.refusing = False

    async def aclose(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self._transports.update({writer.transport, up_writer.transport})
        for source, target in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, target))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                target.write(data)
                await target.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            target.transport.abort()


def forget_counts_statements(rollups: bool = False) -> list[str]:
    """SQL (either backend) taking a ledger back to before 0009_counts: its indexes, its columns
    (with `rollups`, those of the rollups table too) and its record dropped."""
    indexes = ("llmroute_requests_policy_ts", "llmroute_requests_status_ts",
               "llmroute_requests_cache_ts")
    return [*(f"DROP INDEX IF EXISTS {name}" for name in indexes),
            *(f"ALTER TABLE llmroute_requests DROP COLUMN {c}" for c in ("unpriced", "fallback")),
            *(f"ALTER TABLE llmroute_rollups DROP COLUMN {c}"
              for c in ("unpriced", "fallbacks") if rollups),
            "DELETE FROM llmroute_migrations WHERE name = '0009_counts'"]


async def run_statements(store: Store, statements: Sequence[str]) -> None:
    """Run raw SQL statements on either backend (to set up an older schema, say)."""
    from llmroute.ledger import SQLiteStore
    from llmroute.ledger.postgres import PostgresStore

    if isinstance(store, SQLiteStore):
        await store.run(lambda conn: [conn.execute(s) for s in statements])
    else:
        assert isinstance(store, PostgresStore)
        async with store.connection() as conn:
            for statement in statements:
                await conn.execute(statement)

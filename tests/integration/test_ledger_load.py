"""Issue 5's promise under load: 1,000 requests, 50 at a time, a store fault injected midway and a
SIGTERM at the end — afterwards the ledger holds exactly one entry per accepted request, on SQLite and
on PostgreSQL. The gateway runs as a real `llmroute serve` process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmroute.ledger.service import LedgerService
from llmroute.settings import LedgerConfig
from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

POSTGRES_DSN = os.environ.get("LLMROUTE_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def pg_admin(sql: str) -> None:
    """Run one statement on the test database over a connection of its own."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def require_postgres() -> None:
    """Skip the test unless asyncpg is installed and PostgreSQL answers."""
    asyncpg = pytest.importorskip("asyncpg")
    try:
        pg_admin("SELECT 1")
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL unreachable at {POSTGRES_DSN}: {exc}")
TOTAL, CONCURRENCY = 1000, 50


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(record=False) as upstream:
        upstream.set_default("*", Ok(delay_s=0.005))
        yield upstream


def start_gateway(up: FakeUpstream, tmp_path: Path, ledger_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url}},
        "models": {"fake/a": {"deployment": "fake", "input_per_m": 1, "output_per_m": 2},
                   "fake/b": {"deployment": "fake", "input_per_m": 5, "output_per_m": 10}},
        "tiers": {"simple": {"model": "fake/a"}, "medium": {"model": "fake/a"},
                  "complex": {"model": "fake/b"}},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "server": {"host": "127.0.0.1", "port": port, "graceful_shutdown_s": 20},
        "ledger": {"url": ledger_url, "spool_path": str(tmp_path / "spool.jsonl"),
                   "flush_interval_s": 0.05, "batch_size": 64},
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    log = (tmp_path / "gateway.log").open("wb")  # a file, not a pipe nobody reads while it runs
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(path)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"gateway did not start: {(tmp_path / 'gateway.log').read_text()}")


async def drive(url: str, on_half: Any) -> set[str]:
    """Send TOTAL requests, CONCURRENCY at a time; return the ids of the accepted ones."""
    accepted: set[str] = set()
    failures: list[str] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(TOTAL):
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                if i == TOTAL // 2:
                    on_half()
                body = {"model": "auto", "messages": [{"role": "user", "content": f"hello {i}"}]}
                try:
                    response = await client.post("/v1/chat/completions", json=body)
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue  # refused during shutdown: not accepted
                if "x-llmroute-request-id" in response.headers:
                    accepted.add(response.headers["x-llmroute-request-id"])

        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    assert len(failures) <= TOTAL // 100, failures[:5]
    return accepted


def settle(ledger_url: str, tmp_path: Path) -> list[str]:
    """Start a ledger service once more (it replays whatever the gateway spooled), then list ids."""
    async def run() -> list[str]:
        service = LedgerService(LedgerConfig(url=ledger_url, spool_path=str(tmp_path / "spool.jsonl")))
        await service.start()
        await service.aclose()
        reader = LedgerService(LedgerConfig(url=ledger_url, spool_path=str(tmp_path / "s2.jsonl")))
        try:
            return [e.request_id for e in await reader.store.query()]
        finally:
            await reader.store.close()

    return asyncio.run(run())


def run_load(up: FakeUpstream, tmp_path: Path, ledger_url: str, fault: Any) -> None:
    proc, url = start_gateway(up, tmp_path, ledger_url)
    try:
        accepted = asyncio.run(drive(url, fault))
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        output = (tmp_path / "gateway.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status says why it stopped.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert len(accepted) >= TOTAL * 0.99
    ids = settle(ledger_url, tmp_path)
    assert len(ids) == len(set(ids)), "duplicate ledger entries"
    assert set(ids) == accepted


def test_sqlite_ledger_under_load_with_a_lock_and_sigterm(up: FakeUpstream, tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"

    def lock_for_a_while() -> None:
        def hold() -> None:
            conn = sqlite3.connect(db, timeout=30)
            conn.execute("BEGIN EXCLUSIVE")
            time.sleep(6.5)  # longer than the store's 5 s busy timeout: writes fail meanwhile
            conn.rollback()
            conn.close()

        threading.Thread(target=hold, daemon=True).start()

    run_load(up, tmp_path, f"sqlite:///{db}", lock_for_a_while)


def test_postgres_ledger_under_load_with_killed_connections_and_sigterm(
    up: FakeUpstream, tmp_path: Path
) -> None:
    require_postgres()
    schema = f"llmroute_load_{uuid.uuid4().hex[:8]}"

    def kill_connections() -> None:
        # A real fault: terminate every backend of the gateway's pool, twice, a moment apart.
        sql = ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE pid <> pg_backend_pid() AND datname = current_database() "
               "AND application_name <> 'psql'")

        def run() -> None:
            for _ in range(2):
                pg_admin(sql)
                time.sleep(0.3)

        threading.Thread(target=run, daemon=True).start()

    try:
        run_load(up, tmp_path, f"{POSTGRES_DSN}?schema={schema}", kill_connections)
    finally:
        pg_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

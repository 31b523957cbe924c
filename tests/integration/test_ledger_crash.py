"""Issue 14's crash promise: a real `llmroute serve` process, driven at concurrency 30 with the
official openai SDK through a tier whose models fail part of the time (so some answers are errors),
is killed with SIGKILL mid-load; restarted, its ledger holds every request a client got an answer
for (`x-llmroute-request-id`, success or error; a stream only once it ended) exactly once. On
SQLite, on PostgreSQL, and on PostgreSQL cut off (behind a TCP proxy) when the crash happens and
back for the restart; and two workers killed together (a container's OOM kill), restarted as one,
which adopts the other worker's slot."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import openai
import pytest
import yaml

from llmroute.ledger import open_store
from llmroute.ledger.wal import leftover
from llmroute.testing.behaviours import Ok, server_error
from llmroute.testing.tcp_proxy import TcpProxy
from llmroute.testing.upstream import FakeUpstream

from .test_ledger_load import POSTGRES_DSN, free_port, pg_admin, require_postgres

CONCURRENCY, KILL_AFTER, FAILURE_RATE = 30, 300, 0.3
Hook = Callable[[int], None]  # called with the number of answers so far, after each answer


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(record=False) as upstream:
        yield upstream


def flaky_models(up: FakeUpstream, seed: int) -> None:
    """Both models of the tier fail 30% of the time (seeded): about 9% of answers are errors."""
    up.reset()
    rng = random.Random(seed)
    for model in ("a-up", "b-up"):
        up.script(model, *(server_error(500) if rng.random() < FAILURE_RATE else Ok(delay_s=0.002)
                           for _ in range(3000)))
        up.set_default(model, Ok())


def write_config(up: FakeUpstream, tmp_path: Path, ledger_url: str, port: int,
                 writes: str = "inline") -> Path:
    models = {"fake/a": {"deployment": "fake", "upstream_name": "a-up", "input_per_m": 1,
                         "output_per_m": 2},
              "fake/b": {"deployment": "fake", "upstream_name": "b-up", "input_per_m": 5,
                         "output_per_m": 10}}
    tier = {"model": "fake/a", "fallbacks": ["fake/b"]}
    config = {
        "providers": {"fake": {"type": "openai", "base_url": up.openai_base_url}},
        "models": models,
        "tiers": {"simple": tier, "medium": tier, "complex": tier},
        "policies": {"default": {"router": "rules", "default_tier": "simple"}},
        "server": {"host": "127.0.0.1", "port": port, "graceful_shutdown_s": 5},
        "resilience": {"retry": {"max_attempts": 1}, "cooldown": {"failures": 10_000}},
        # batches of 64 go at once, the rest waits up to 5 s: at the kill, entries are queued
        "ledger": {"url": ledger_url, "spool_path": str(tmp_path / "spool.jsonl"),
                   "batch_size": 64, "flush_interval_s": 5.0, "reads": "inline",
                   "writes": writes},
        "alerts": {"enabled": False},
    }
    path = tmp_path / "llmroute.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start(config: Path, port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    """`llmroute serve` in a process group of its own (a SIGKILL to the group kills every worker)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMROUTE")}
    logged = log.stat().st_size if log.exists() else 0
    proc = subprocess.Popen([sys.executable, "-m", "llmroute", "serve", "-c", str(config),
                             "--workers", str(workers)], start_new_session=True,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        started = log.read_bytes()[logged:].count(b"Application startup complete")
        try:  # every worker up: the first requests' connections go to all of them
            if started >= workers and httpx.get(f"http://127.0.0.1:{port}/health",
                                                timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"gateway did not start: {log.read_text()}")


async def ask(client: openai.AsyncOpenAI, n: int) -> tuple[str | None, bool]:
    """One request: its id when the client got a whole answer (or error), else None; and whether
    the answer was an error."""
    messages: Any = [{"role": "user", "content": f"hello {n}"}]
    try:
        if n % 4 == 0:
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=messages, stream=True)
            rid = raw.headers.get("x-llmroute-request-id")
            try:
                async for _ in raw.parse():
                    pass
            except openai.APIConnectionError:
                return None, False
            except openai.APIError:  # the stream's error event: an answer too
                return rid, True
            return rid, False
        raw_answer = await client.chat.completions.with_raw_response.create(
            model="auto", messages=messages)
        raw_answer.parse()
        return raw_answer.headers.get("x-llmroute-request-id"), False
    except openai.APIStatusError as exc:
        return exc.response.headers.get("x-llmroute-request-id"), True
    except (openai.APIConnectionError, httpx.HTTPError):
        return None, False  # the gateway died under this request: no answer


async def drive(url: str, proc: subprocess.Popen[bytes], on_answer: Hook) -> tuple[set[str], int]:
    """Requests at CONCURRENCY until the gateway is killed (after KILL_AFTER answers); returns the
    answered ids and how many of them were errors."""
    answered: set[str] = set()
    errors = 0
    counter = iter(range(10**6))
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=10)

    async def worker() -> None:
        nonlocal errors
        while proc.poll() is None:
            rid, error = await ask(client, next(counter))
            if rid is None:
                if proc.poll() is None:
                    await asyncio.sleep(0.01)
                continue
            answered.add(rid)
            errors += error
            on_answer(len(answered))
            if len(answered) >= KILL_AFTER and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # every worker at once
                proc.wait()

    async with client:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), 60)
    return answered, errors


async def ledger_ids(url: str) -> list[str]:
    store = open_store(url)
    try:
        return [e.request_id for e in await store.query(limit=100_000)]
    finally:
        await store.close()


def crash_and_restart(up: FakeUpstream, tmp_path: Path, ledger_url: str, *, store_for_gateway: str
                      | None = None, on_answer: Hook = lambda n: None,
                      before_restart: Callable[[], None] = lambda: None,
                      workers: int = 1, writes: str = "inline") -> str:
    """Load, SIGKILL, restart (one worker) over the same files; every answered id in the ledger
    once. Returns the gateway's log."""
    flaky_models(up, seed=14)
    port = free_port()
    config = write_config(up, tmp_path, store_for_gateway or ledger_url, port, writes)
    log = tmp_path / "gateway.log"
    proc = start(config, port, log, workers)
    try:
        answered, errors = asyncio.run(drive(f"http://127.0.0.1:{port}", proc, on_answer))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    assert len(answered) >= KILL_AFTER and 0 < errors < len(answered) / 4, errors
    before = set(asyncio.run(ledger_ids(ledger_url))) if store_for_gateway is None else set()
    left = {slot: len(leftover(tmp_path / slot).entries) for slot in ("spool.jsonl", "spool.jsonl.1")}
    before_restart()

    restarted = start(config, port, log)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not answered <= set(asyncio.run(ledger_ids(ledger_url))):
            time.sleep(0.2)
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(20)
    finally:
        if restarted.poll() is None:
            restarted.kill()
    ids = asyncio.run(ledger_ids(ledger_url))
    missing = answered - set(ids)
    assert not missing, (f"{len(missing)} of {len(answered)} answered requests missing "
                         f"({len(answered - before)} were not stored before the restart)\n"
                         + log.read_text()[-3000:])
    assert len(ids) == len(set(ids)), "an entry landed twice"
    output = log.read_text()
    assert "recovered" in output  # the restart found entries in the dead process's log
    assert list(tmp_path.glob("spool.jsonl*.wal.*")) == []  # and closing left no log behind
    if left["spool.jsonl.1"]:  # a second worker's log: adopted by the one restarted worker
        assert "idle slots" in output and not (tmp_path / "spool.jsonl.1").exists()
    return output


def test_sigkill_under_load_loses_no_answered_request_on_sqlite(
        up: FakeUpstream, tmp_path: Path) -> None:
    crash_and_restart(up, tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")


def test_sigkill_with_writes_in_a_child_process_loses_nothing(
        up: FakeUpstream, tmp_path: Path) -> None:
    """`ledger.writes: process`: the batches are written by the writer's child; the kill takes it
    too (same process group), and the restart still lands every answered request once."""
    crash_and_restart(up, tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", writes="process")


def test_two_workers_killed_together_and_restarted_as_one_lose_nothing(
        up: FakeUpstream, tmp_path: Path) -> None:
    crash_and_restart(up, tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", workers=2)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    require_postgres()
    schema = f"llmroute_crash_{uuid.uuid4().hex[:8]}"
    yield schema
    pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_sigkill_under_load_loses_no_answered_request_on_postgres(
        up: FakeUpstream, tmp_path: Path, pg_schema: str) -> None:
    crash_and_restart(up, tmp_path, f"{POSTGRES_DSN}?schema={pg_schema}")


def test_sigkill_with_writes_in_a_child_process_loses_nothing_on_postgres(
        up: FakeUpstream, tmp_path: Path, pg_schema: str) -> None:
    """`ledger.writes: process` on PostgreSQL: the child writes the batches on a pool of its own."""
    crash_and_restart(up, tmp_path, f"{POSTGRES_DSN}?schema={pg_schema}", writes="process")


class ProxyThread:
    """A `TcpProxy` to PostgreSQL on an event loop of its own (the test's thread drives load)."""

    def __init__(self, host: str, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = TcpProxy(host, port)
        self.call(self.proxy.start())

    def call(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def close(self) -> None:
        self.call(self.proxy.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_sigkill_with_postgres_cut_off_loses_nothing_once_it_is_back(
        up: FakeUpstream, tmp_path: Path, pg_schema: str) -> None:
    target = urlsplit(POSTGRES_DSN)
    proxy = ProxyThread(target.hostname or "127.0.0.1", target.port or 5432)
    user = target.netloc.rsplit("@", 1)[0] + "@" if "@" in target.netloc else ""
    via_proxy = target._replace(netloc=f"{user}127.0.0.1:{proxy.proxy.port}").geturl()
    cut = threading.Event()

    def cut_midway(answers: int) -> None:
        if answers >= KILL_AFTER // 3 and not cut.is_set():
            cut.set()
            proxy.call(proxy.proxy.cut())  # the store is unreachable from here to the kill

    spooled: list[int] = []

    def bring_it_back() -> None:
        spooled.append(sum(len(p.read_bytes().splitlines()) for p in tmp_path.glob("spool.jsonl*")
                           if p.suffix in (".jsonl", ".replay")))
        proxy.call(proxy.proxy.restore())

    try:
        crash_and_restart(up, tmp_path, f"{POSTGRES_DSN}?schema={pg_schema}",
                          store_for_gateway=f"{via_proxy}?schema={pg_schema}", on_answer=cut_midway,
                          before_restart=bring_it_back)
        assert cut.is_set() and spooled[0] > 0  # batches failed while it was cut off
    finally:
        proxy.close()

"""`ledger.wal.fsync: always` through the real server: an answer (plain or streamed) completes only
after the write-ahead log's fsync covers its ledger entry; with the default (`interval`) nothing
waits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from llmroute.ledger.writer import LedgerWriter
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, merge, user
from .test_ledger import ledger_config, wait_for_entries


def always(tmp_path: Path) -> dict[str, Any]:
    return merge(ledger_config(tmp_path), {"ledger": {"wal": {"fsync": "always"}}})


def hold(gw: GatewayServer) -> tuple[threading.Event, list[tuple[int, int]]]:
    """Make the gateway's durability wait until the returned event is set; each wait records
    (bytes the log's fsync covered, bytes appended) once the real wait is over."""
    gateway = gw.app.state.gateway
    real: Callable[[], Awaitable[None]] = gateway.durable
    writer = real.__self__  # type: ignore[attr-defined]
    assert isinstance(writer, LedgerWriter) and writer.wal is not None
    wal = writer.wal
    release, seen = threading.Event(), []

    async def held() -> None:
        while not release.is_set():
            await asyncio.sleep(0.01)
        appended = wal.appended
        await real()
        seen.append((wal.synced, appended))

    gateway.durable = held
    return release, seen


def in_background(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    done: list[object] = []
    thread = threading.Thread(target=lambda: done.append(call()), daemon=True)
    thread.start()
    return thread, done


def test_an_answer_waits_for_the_fsync_of_its_entry(serve: Serve, up: FakeUpstream,
                                                     tmp_path: Path) -> None:
    gw = serve(always(tmp_path))
    release, seen = hold(gw)
    with gw.client() as client:

        def plain() -> object:
            return client.chat.completions.create(model="auto", messages=user("hi"))

        def streamed() -> object:
            return list(client.chat.completions.create(model="auto", messages=user("hi"),
                                                       stream=True))

        for call in (plain, streamed):
            release.clear()
            thread, done = in_background(call)
            thread.join(0.5)
            assert not done, "the answer completed before its entry was durable"
            release.set()
            thread.join(10)
            assert done
    assert len(seen) == 2 and all(synced >= appended > 0 for synced, appended in seen), seen
    assert len(wait_for_entries(tmp_path, 2)) == 2


def test_by_default_nothing_waits(serve: Serve, tmp_path: Path) -> None:
    gw = serve(ledger_config(tmp_path))
    assert gw.app.state.gateway.durable is None

"""Training, calibration and replay read the ledger in bounded batches (issue 12): streamed through
small batches, a ledger of thousands of entries gives exactly what the old all-at-once reading gave,
and no consumer asks for the whole window or keeps the entries of the batches it has finished."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from llmroute import ledger
from llmroute.cli.learn_cmd import _ledger_records, _logged_table
from llmroute.cli.replay_cmd import _replay_window
from llmroute.config import load
from llmroute.control.replay import CHUNK, Replayer, replay, replay_batches
from llmroute.control.replay_offline import estimator_for
from llmroute.engine import Engine
from llmroute.learn.from_ledger import (
    load_from_ledger,
    logged_requests_from,
    logged_traffic,
    records_from_entries,
    traffic_table,
)
from llmroute.learn.model import RouterModel
from llmroute.ledger import SQLiteStore
from llmroute.ledger.entry import LedgerEntry
from llmroute.ledger.paging import DEFAULT_BATCH_SIZE

CONFIG = Path(__file__).resolve().parents[1] / "control" / "replay_config.yaml"
START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=1)
ENTRIES = 3000
BATCH = 97
POLICIES = ("cheap", "rules", "llm")
PROMPTS = ("what is the capital of France?", "hello",
           "please debug this python function that crashes when the input list is empty",
           "Compare the economic policies of the two countries over the last decade in detail",
           "tell me a joke about cats", "translate 'good morning' into French")
SERVED = ("test/small", "test/mid", "test/big", "legacy/model")
TIERS = ("simple", "medium", "complex", None)


def entry(i: int) -> LedgerEntry:
    """The i-th entry of a varied ledger: errors, entries without text, feedback of both kinds,
    unpriced and cached ones, pairs of entries on one timestamp."""
    ok = i % 17 != 0
    model = SERVED[i % 4] if ok else None
    text = None if i % 13 == 0 else f"system: be brief\nuser: {PROMPTS[i % 6]} (#{i % 50})"
    return LedgerEntry(
        request_id=f"req_{i:05d}", ts=START + timedelta(seconds=3 * (i // 2)),
        status="ok" if ok else "error", http_status=200 if ok else 502, tier=TIERS[i % 4],
        model=model, prompt_text=text, input_tokens=10 + i % 400, output_tokens=5 + i % 300,
        cached_tokens=3 * (i % 7) if model == "test/mid" else 0,
        cost_usd=None if i % 11 == 0 else Decimal(i % 97) / Decimal(100000),
        task_success=(i % 2 == 0) if i % 3 == 0 else None,
        user_rating=1 + i % 5 if i % 3 == 1 else None)


class WatchedStore(SQLiteStore):
    """A SQLite store that refuses `query` (the whole window as objects), hands out `iterate`'s
    batches at most `cap` long, and notes, as each batch is read, how many entries of the batches
    before the one just handed out are still alive (held by the consumer)."""

    def __init__(self, path: str, cap: int = BATCH) -> None:
        super().__init__(path)
        self.cap = cap
        self.batches: list[list[weakref.ref[LedgerEntry]]] = []
        self.largest = 0
        self.most_alive = 0

    async def query(self, since: datetime | None = None, until: datetime | None = None,
                    limit: int | None = None, *,
                    experiments: Sequence[str] | None = None) -> list[LedgerEntry]:
        raise AssertionError("the whole window was read at once (query)")

    def iterate(self, since: datetime | None = None, until: datetime | None = None, *,
                batch_size: int = DEFAULT_BATCH_SIZE,
                experiments: Sequence[str] | None = None,
                cache: Sequence[str] | None = None) -> AsyncIterator[list[LedgerEntry]]:
        inner = super().iterate(since, until, batch_size=min(batch_size, self.cap),
                                experiments=experiments, cache=cache)
        return self._watch(inner)

    async def _watch(self, inner: AsyncIterator[list[LedgerEntry]]) -> AsyncIterator[list[LedgerEntry]]:
        async for batch in inner:
            gc.collect(0)
            older = (ref for refs in self.batches[:-1] for ref in refs)
            self.most_alive = max(self.most_alive, sum(ref() is not None for ref in older))
            self.largest = max(self.largest, len(batch))
            self.batches.append([weakref.ref(e) for e in batch])
            yield batch

    @property
    def handed(self) -> int:
        """Entries handed out in all."""
        return sum(len(refs) for refs in self.batches)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite ledger of `ENTRIES` varied entries, all in [START, END)."""
    path = tmp_path_factory.mktemp("streamed") / "ledger.db"

    async def fill() -> None:
        store = SQLiteStore(str(path))
        await store.migrate()
        await store.write([entry(i) for i in range(ENTRIES)])
        await store.close()

    asyncio.run(fill())
    return path


@pytest.fixture(scope="module")
def everything(db: Path) -> list[LedgerEntry]:
    """The whole window, read at once (the old way), to compare with."""

    async def read() -> list[LedgerEntry]:
        store = SQLiteStore(str(db))
        try:
            return await store.query(START, END)
        finally:
            await store.close()

    return asyncio.run(read())


def engine() -> Engine:
    return Engine(load(CONFIG, environ={}))


@pytest.mark.asyncio
async def test_training_records_streamed_equal_the_whole_window_read_at_once(
        db: Path, everything: list[LedgerEntry]) -> None:
    store = WatchedStore(str(db))
    try:
        streamed = await load_from_ledger(store, START, END, batch_size=BATCH)
    finally:
        await store.close()
    assert len(everything) == ENTRIES
    assert streamed == records_from_entries(everything) and len(streamed) > 1000
    assert (store.largest, store.handed, len(store.batches)) == (BATCH, ENTRIES, -(-ENTRIES // BATCH))
    assert store.most_alive == 0          # no entry outlives the batch after its own


@pytest.mark.asyncio
async def test_calibration_table_streamed_equals_the_whole_window_read_at_once(
        db: Path, everything: list[LedgerEntry], handmade: RouterModel) -> None:
    # Three of the handmade profiles, named as the served models, so observed cells replace estimates.
    names = ("test/small", "test/mid", "test/big")
    model = handmade.with_profiles([replace(handmade.profile(old), name=new)
                                    for old, new in zip(("s1", "m1", "c1"), names, strict=True)])
    store = WatchedStore(str(db))
    try:
        kept = await logged_requests_from(store.iterate(START, END, batch_size=BATCH))
    finally:
        await store.close()
    streamed, whole = traffic_table(kept, model, names), logged_traffic(everything, model, names)
    assert streamed.texts == whole.texts and streamed.observed == whole.observed > 500
    assert np.array_equal(streamed.quality, whole.quality)
    assert np.array_equal(streamed.cost, whole.cost)
    assert store.largest == BATCH and store.most_alive == 0


@pytest.mark.asyncio
async def test_replay_streamed_equals_the_whole_window_replayed_at_once(
        db: Path, everything: list[LedgerEntry]) -> None:
    # Fresh engines for each run: an `llm` router caches its answers per prompt.
    first, second = engine(), engine()
    estimate = estimator_for(first, "rules")        # the bundled learned router, batched
    whole = [await replay(everything, first, name, estimate=estimate) for name in POLICIES]
    store = WatchedStore(str(db))
    replayers = [Replayer(second, name, estimate=estimate) for name in POLICIES]
    try:
        streamed = await replay_batches(store.iterate(START, END, batch_size=BATCH), replayers)
    finally:
        await store.close()
    for old, new in zip(whole, streamed, strict=True):
        assert new.to_dict() == old.to_dict()
        assert new.totals == old.totals and new.rows == ()      # folded: no rows kept
        assert old.read == ENTRIES and old.replayed > 2000 and old.compared_count > 1000
    assert whole[2].router_calls["answered"] > 0                # the llm policy was consulted
    assert store.largest == BATCH
    # Only the entries awaiting their chunk's batched estimate outlive their batch.
    assert 0 < store.most_alive <= CHUNK * len(POLICIES)


def _config(tmp_path: Path, db: Path) -> Path:
    path = tmp_path / "llmroute.yaml"
    path.write_text(CONFIG.read_text(encoding="utf-8") + f"ledger: {{url: 'sqlite:///{db}'}}\n",
                    encoding="utf-8")
    return path


def test_the_commands_stream_and_never_read_the_window_at_once(
        db: Path, everything: list[LedgerEntry], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """train --from-ledger, calibrate --from-ledger and replay, each on a store that refuses
    `query` and caps batches: the same numbers as over the whole window."""
    opened: list[WatchedStore] = []

    def watched(url: str) -> WatchedStore:
        opened.append(WatchedStore(url.removeprefix("sqlite:///")))
        return opened[-1]

    monkeypatch.setattr(ledger, "open_store", watched)
    config = _config(tmp_path, db)
    assert _ledger_records(config) == records_from_entries(everything)
    _, table, _ = _logged_table(config, "rules", START.isoformat(), None)
    assert table.n == sum(1 for e in everything if e.status == "ok" and e.prompt_text)
    gateway = engine()
    replayers = [Replayer(gateway, "rules", estimate=estimator_for(gateway, "rules"))]
    (report,) = _replay_window(f"sqlite:///{db}", replayers, START, END)
    assert report.read == ENTRIES
    assert len(opened) == 3
    for store in opened:
        assert store.largest == BATCH and store.handed == ENTRIES

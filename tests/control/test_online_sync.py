"""`OnlineSync` over a real SQLite ledger and the shared state (memory, with a fake clock): one
learner by lease applies the ledger's feedback in order and publishes; the others reload; a new
learner resumes at the published cursor, applying nothing twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from helpers import load_yaml
from llmroute.control.online_sync import OnlineSync, feedback_of
from llmroute.control.state_memory import MemoryState
from llmroute.engine import Engine
from llmroute.learn.online_hub import OnlineHub
from llmroute.ledger.entry import LedgerEntry
from llmroute.ledger.rated import Rated
from llmroute.ledger.sqlite import SQLiteStore
from llmroute.types import RouteRequest

CONFIG = """
tiers:
  simple: {model: openai/gpt-4o-mini}
  medium: {model: openai/gpt-4.1-mini}
  complex: {model: anthropic/claude-sonnet-4-5}
policies:
  learned: {router: classifier, quality_target: 0.7}
routing: {default_policy: learned}
learning: {online: true}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    created = SQLiteStore(tmp_path / "ledger.db")
    await created.migrate()
    yield created
    await created.close()


def hub(tmp_path: Path) -> OnlineHub:
    found = Engine(load_yaml(tmp_path, CONFIG)).online
    assert found is not None
    return found


async def requests(engine_hub: OnlineHub, tmp_path: Path, n: int) -> list[LedgerEntry]:
    """`n` routed requests as the ledger would keep them (latent, model), a second apart."""
    engine = Engine(load_yaml(tmp_path, CONFIG))
    start = datetime.now(UTC) - timedelta(hours=1)
    out = []
    for i in range(n):
        decision = await engine.decide(RouteRequest.from_prompt(f"Explain recursion, take {i}."))
        out.append(LedgerEntry(request_id=f"r{i:03d}", ts=start + timedelta(seconds=i), status="ok",
                               http_status=200, model=decision.model, latent=decision.latent,
                               user=f"user-{i}"))
    return out


def means(h: OnlineHub) -> np.ndarray:
    return next(iter(h.slots.values())).profiles.means.copy()


@pytest.mark.asyncio
async def test_one_learner_applies_the_others_reload(store: SQLiteStore, tmp_path: Path) -> None:
    clock = Clock()
    state = MemoryState(clock=clock)
    hubs = [hub(tmp_path), hub(tmp_path)]
    a, b = (OnlineSync(h, store, state, reload_s=1, holder=name, lag_s=0)
            for h, name in zip(hubs, "ab", strict=True))
    await a.tick()
    await b.tick()
    assert (a.leading, b.leading) == (True, False)
    entries = await requests(hubs[0], tmp_path, 8)
    await store.write(entries)
    before = means(hubs[0])
    for i, entry in enumerate(entries[:5]):
        await store.feedback(entry.request_id, success=False,
                             at=datetime.now(UTC) - timedelta(minutes=10 - i))
    await a.tick()
    assert a.applied == 5 and a.version == 1 and not np.array_equal(means(hubs[0]), before)
    await b.tick()
    assert b.version == 1 and np.array_equal(means(hubs[1]), means(hubs[0]))

    # a goes away: b takes the lease once it expires and resumes at the published cursor
    for entry in entries[5:]:
        await store.feedback(entry.request_id, rating=5, at=datetime.now(UTC) - timedelta(minutes=1))
    clock.now += 60
    await b.tick()
    assert b.leading and b.applied == 3 and b.version == 2
    counted = next(iter(hubs[1].slots.values())).profiles.n_updates.sum()
    assert counted == 8  # five from a (loaded), three of its own: none twice
    await b.tick()
    assert b.applied == 3 and b.version == 2  # nothing new: nothing published


def test_a_row_without_model_or_value_teaches_nothing() -> None:
    at = datetime.now(UTC)
    assert feedback_of(Rated("x", at, None, "k", None, 5, None, "AAA8")) is None
    assert feedback_of(Rated("x", at, "m", "k", None, None, None, "AAA8")) is None
    rated = feedback_of(Rated("x", at, "m", "key", "alice", 1, None, "AAA8"))
    assert rated is not None and (rated.quality, rated.rater) == (0.0, "alice")
    by_key = feedback_of(Rated("x", at, "m", "key", None, None, True, "AAA8"))
    assert by_key is not None and (by_key.quality, by_key.rater) == (1.0, "key")
    keyed = feedback_of(Rated("x", at, "m", "key", "alice", 1, None, "AAA8"), "key")
    assert keyed is not None and keyed.rater == "key"


@pytest.mark.asyncio
@pytest.mark.parametrize("raters", ["user", "key"])
async def test_a_key_naming_new_users_is_one_rater_when_raters_is_key(
        store: SQLiteStore, tmp_path: Path, raters: str) -> None:
    """60 failures, each under a new `user` but from one key: with `raters: key` they are one
    rater's, so the key carries its floor (0.25 of one feedback) on a model nobody else rated;
    with `raters: user` each new user brings a budget of its own."""
    learner = hub(tmp_path)
    sync = OnlineSync(learner, store, MemoryState(clock=Clock()), reload_s=1, lag_s=0,
                      raters="key" if raters == "key" else "user")
    entries = [replace(e, key_name="one-app") for e in await requests(learner, tmp_path, 60)]
    await store.write(entries)
    for i, entry in enumerate(entries):
        await store.feedback(entry.request_id, success=False,
                             at=datetime.now(UTC) - timedelta(minutes=30, seconds=-i))
    await sync.tick()
    assert sync.applied == 60
    profiles = next(iter(learner.slots.values())).profiles
    carried = float(profiles.model_weight.sum())
    if raters == "key":
        assert carried == pytest.approx(profiles.rater_floor * len({e.model for e in entries}))
    else:
        assert carried > 10 * profiles.rater_floor

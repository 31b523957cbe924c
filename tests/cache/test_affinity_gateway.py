"""Cache-aware routing through real gateways (uvicorn, the openai SDK as client, FakeUpstream
upstream): turn 2 of a conversation stays on turn 1's model, with the reason in the ledger and
`x-llmroute-affinity`; the router's escalation wins; a session id links turns; two gateway
instances share conversations through Redis; an unreachable Redis only means no affinity."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from integration.support import ENV, GatewayServer, base_config, merge
from llmroute.config import load
from llmroute.ledger import open_store
from llmroute.ledger.entry import LedgerEntry
from llmroute.server.app import create_app
from llmroute.server.auth import hash_key
from llmroute.testing.redis_tools import TEST_REDIS_URL, drop_prefix, redis_unreachable
from llmroute.testing.upstream import FakeUpstream

#: The turn-1 prompt: a reasoning request (medium tier: fake/mid) long enough to be cached.
FILLER = "The quiet river bends past the old mill and the willows lean over the water. " * 30
TURN1 = [{"role": "user", "content": "Please explain why the tide turns, step by step. " + FILLER}]
#: Prices chosen so that staying on fake/mid with its prefix cached beats fake/mini uncached:
#: ~600 prefix tokens: stay 600*0.04 + ~10*0.4 + 100*0.8 ≈ 108 µ$; switch 610*0.15 + 100*0.6 ≈ 152;
#: over the default horizon (fake/mini never chosen before: 2 calls): stay ≈ 216 µ$, switch ≈ 152
#: + a call reading fake/mini's cache (600*0.075 + 10*0.15 + 100*0.6 ≈ 107) ≈ 258 µ$
AFFINITY = {
    "models": {"fake/mini": {"cached_input_per_m": "0.075"},
               "fake/mid": {"cached_input_per_m": "0.04", "output_per_m": "0.8"},
               "fake/big": {"cached_input_per_m": "1.25"}},
    "routing": {"expected_output_tokens": 100},
    "cache": {"affinity": {"enabled": True, "min_prefix_tokens": 200}},
}


@pytest.fixture
def serve(up: FakeUpstream, tmp_path: Path) -> Iterator[Any]:
    started: list[GatewayServer] = []

    def start(overrides: Mapping[str, Any] | None = None) -> GatewayServer:
        path = tmp_path / f"llmroute-{len(started)}.yaml"
        config = merge(merge(base_config(up), AFFINITY), overrides or {})
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        server = GatewayServer(create_app(load(path, environ={}), environ=ENV))
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def turn2(first: Any, text: str) -> list[dict[str, Any]]:
    """The next request of the conversation: turn 1, the answer as the SDK returned it, a new turn."""
    answer = first.choices[0].message.model_dump(exclude_none=True)
    return [*TURN1, answer, {"role": "user", "content": text}]


def ledger(tmp_path: Path) -> dict[str, Any]:
    return {"ledger": {"enabled": True, "url": f"sqlite:///{tmp_path / 'ledger.db'}",
                       "flush_interval_s": 0.02}}


def entries(tmp_path: Path, count: int) -> list[LedgerEntry]:
    async def read() -> list[LedgerEntry]:
        store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
        try:
            return await store.query()
        finally:
            await store.close()

    deadline = time.monotonic() + 5
    while True:
        found = asyncio.run(read())
        if len(found) >= count or time.monotonic() > deadline:
            return sorted(found, key=lambda e: e.ts)
        time.sleep(0.05)


def test_turn_two_stays_on_turn_ones_model_and_says_why(serve: Any, tmp_path: Path) -> None:
    gw = serve(ledger(tmp_path))
    client = gw.client()
    first = client.chat.completions.with_raw_response.create(model="auto", messages=TURN1)
    assert first.headers["x-llmroute-model"] == "fake/mid"
    assert "x-llmroute-affinity" not in first.headers  # nothing warm yet
    # "thanks, go on" alone is short: the router sends it to the simple tier (fake/mini) ...
    alone = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "thanks, go on"}])
    assert alone.headers["x-llmroute-model"] == "fake/mini"
    # ... but as turn 2 of the conversation it stays where the prefix is cached
    second = client.chat.completions.with_raw_response.create(
        model="auto", messages=turn2(first.parse(), "thanks, go on"))
    assert second.headers["x-llmroute-model"] == "fake/mid"
    assert second.headers["x-llmroute-affinity"] == "stayed"
    assert second.parse().model == "fake/mid"
    reason = entries(tmp_path, 3)[-1].reason or ""
    assert reason.startswith("stayed on fake/mid: warm prompt cache (≈")
    assert " on fake/mini over 2 calls); the router said: " in reason


def test_an_escalation_switches_models(serve: Any, up: FakeUpstream) -> None:
    client = serve().client()
    first = client.chat.completions.create(model="auto", messages=TURN1)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=turn2(first, "please debug this python function, it throws an "
                                            "exception"))
    assert raw.headers["x-llmroute-model"] == "fake/big"
    assert raw.headers["x-llmroute-affinity"] == "switched"
    assert [r.model for r in up.requests] == ["mid-up", "big-up"]


def test_a_concrete_model_is_never_overridden(serve: Any, up: FakeUpstream) -> None:
    client = serve().client()
    first = client.chat.completions.create(model="auto", messages=TURN1)
    raw = client.chat.completions.with_raw_response.create(
        model="fake/mini", messages=turn2(first, "thanks, go on"))
    assert raw.headers["x-llmroute-model"] == "fake/mini"
    assert "x-llmroute-affinity" not in raw.headers


def test_a_streamed_turn_and_a_session_header_link_the_conversation(serve: Any) -> None:
    client = serve().client()
    session = {"x-llmroute-session": f"conv-{uuid.uuid4()}"}
    chunks = list(client.chat.completions.create(model="auto", messages=TURN1, stream=True,
                                                 stream_options={"include_usage": True},
                                                 extra_headers=session))
    assert chunks[0].model == "fake/mid"
    # the next turn names the session: whatever its messages, it is the same conversation
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[*TURN1, {"role": "user", "content": "thanks, go on"}],
        extra_headers=session)
    assert raw.headers["x-llmroute-model"] == "fake/mid"
    assert raw.headers["x-llmroute-affinity"] == "stayed"
    # another session id is another conversation
    other = client.chat.completions.with_raw_response.create(
        model="auto", messages=[*TURN1, {"role": "user", "content": "thanks, go on"}],
        extra_headers={"x-llmroute-session": "someone-else"})
    assert other.headers["x-llmroute-model"] == "fake/mini"


def test_a_streamed_answer_links_the_next_turn_by_its_text(serve: Any) -> None:
    client = serve().client()
    chunks = list(client.chat.completions.create(model="auto", messages=TURN1, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].model == "fake/mid" and text
    messages = [*TURN1, {"role": "assistant", "content": text},
                {"role": "user", "content": "thanks, go on"}]
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages)
    assert raw.headers["x-llmroute-model"] == "fake/mid"
    assert raw.headers["x-llmroute-affinity"] == "stayed"


def test_a_bad_session_header_is_a_400_naming_it(serve: Any) -> None:
    client = serve().client()
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="auto", messages=TURN1,
                                       extra_headers={"x-llmroute-session": "x" * 300})
    assert err.value.body["param"] == "x-llmroute-session"  # type: ignore[index]


def test_gateway_keys_do_not_share_conversations(serve: Any) -> None:
    keys = {"keys": [{"name": "a", "hash": hash_key("key-a-1234567890")},
                     {"name": "b", "hash": hash_key("key-b-1234567890")}]}
    gw = serve(keys)
    first = gw.client("key-a-1234567890").chat.completions.create(model="auto", messages=TURN1)
    # the same conversation sent with key b: key a's warm model does not steer it
    theirs = gw.client("key-b-1234567890").chat.completions.with_raw_response.create(
        model="auto", messages=turn2(first, "thanks, go on"))
    assert theirs.headers["x-llmroute-model"] == "fake/mini"
    mine = gw.client("key-a-1234567890").chat.completions.with_raw_response.create(
        model="auto", messages=turn2(first, "thanks, go on"))
    assert mine.headers["x-llmroute-model"] == "fake/mid"


redis_skip = pytest.mark.skipif(redis_unreachable() is not None,
                                reason=str(redis_unreachable()))


@redis_skip
def test_two_gateways_share_conversations_through_redis(serve: Any) -> None:
    prefix = f"llmroute-aff-{uuid.uuid4().hex[:8]}:"
    shared = {"state": {"url": TEST_REDIS_URL, "prefix": prefix}}
    try:
        a, b = serve(shared), serve(shared)
        first = a.client().chat.completions.create(model="auto", messages=TURN1)
        assert first.model == "fake/mid"
        deadline = time.monotonic() + 2  # the first gateway writes in the background
        raw = None
        while time.monotonic() < deadline:
            raw = b.client().chat.completions.with_raw_response.create(
                model="auto", messages=turn2(first, "thanks, go on"))
            if raw.headers.get("x-llmroute-affinity") == "stayed":
                break
            time.sleep(0.05)
        assert raw is not None and raw.headers["x-llmroute-model"] == "fake/mid"
        assert raw.headers["x-llmroute-affinity"] == "stayed"
    finally:
        drop_prefix(prefix)


def test_an_unreachable_redis_means_no_affinity_never_a_failure(serve: Any) -> None:
    # nothing listens on port 9: every Redis call fails at once
    gw = serve({"state": {"url": "redis://127.0.0.1:9/0", "budgets_when_down": "open"}})
    client = gw.client()
    first = client.chat.completions.create(model="auto", messages=TURN1)
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=turn2(first, "thanks, go on"))
    assert raw.status_code == 200
    assert raw.headers["x-llmroute-model"] == "fake/mini"
    assert "x-llmroute-affinity" not in raw.headers

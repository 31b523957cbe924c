"""The response cache's parts on their own: the header directive, the key (what is in it and what
is not, scope), the in-process store's LRU, byte and TTL bounds, the answer's serialization, and
the replay of an answer as chunks and back."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from llmroute.cache.answer import CachedAnswer, answer_of
from llmroute.cache.directive import DEFAULT, CacheDirective, cache_directive
from llmroute.cache.keys import request_key, sampled, scope_of
from llmroute.cache.replay import Assembler, chunks
from llmroute.cache.store_memory import MemoryStore
from llmroute.chat import chat_request, with_headers
from llmroute.errors import InvalidRequestError
from llmroute.outcome import Principal
from llmroute.types import Usage


def req(**body: Any) -> Any:
    return chat_request({"model": "auto", "messages": [{"role": "user", "content": "hi"}],
                         "temperature": 0, **body})


def test_directive_headers() -> None:
    assert cache_directive({}) is DEFAULT
    assert cache_directive({"Cache-Control": "no-cache"}) == CacheDirective(read=False)
    assert cache_directive({"cache-control": "max-age=0, No-Store"}) == \
        CacheDirective(read=False, write=False)
    assert cache_directive({"x-llmroute-cache-ttl": " 2.5 "}).ttl_s == 2.5
    assert cache_directive({"cache-control": "private"}) == DEFAULT
    with pytest.raises(InvalidRequestError) as caught:
        with_headers(req(), {"X-LLMRoute-Cache-TTL": "-1"})
    assert caught.value.param == "x-llmroute-cache-ttl" and caught.value.status == 400
    assert with_headers(req(), {"cache-control": "no-store"}).cache.write is False


def test_the_key_holds_what_changes_the_answer_and_only_that() -> None:
    base = request_key(req(), "key:a")
    assert request_key(req(), "key:a") == base
    assert request_key(req(user="u", metadata={"k": "v"}, store=True), "key:a") == base
    assert request_key(req(stream=True, stream_options={"include_usage": True}), "key:a") == base
    assert request_key(req(), "key:b") != base
    assert request_key(req(max_tokens=5), "key:a") != base
    assert request_key(req(seed=1), "key:a") != base
    assert request_key(req(model="auto/cheap"), "key:a") != base
    assert request_key(req(models=["fake/a"]), "key:a") != base
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"b": 1, "a": 2}}}]
    reordered = [{"function": {"parameters": {"a": 2, "b": 1}, "name": "f"}, "type": "function"}]
    assert request_key(req(tools=tools), "key:a") == request_key(req(tools=reordered), "key:a")


def test_scopes() -> None:
    who = Principal(name="k", team="t")
    assert scope_of(who, "key") == "key:k"
    assert scope_of(who, "team") == "team:t"
    assert scope_of(Principal(name="k"), "team") == "key:k"  # no team: its own
    assert scope_of(who, "global") == "global"
    assert sampled({}) and sampled({"temperature": 0.2}) and not sampled({"temperature": 0})


def test_the_memory_store_bounds_entries_bytes_and_time() -> None:
    now = [0.0]
    store = MemoryStore(max_entries=3, max_bytes=100, clock=lambda: now[0])

    async def run() -> None:
        for key in "abc":
            await store.put(key, b"x" * 10, ttl_s=5)
        assert await store.get("a") == b"x" * 10  # a is now the youngest
        await store.put("d", b"y" * 10, ttl_s=5)
        assert await store.get("b") is None and len(store) == 3  # b, the oldest, went
        await store.put("big", b"z" * 80, ttl_s=5)
        assert store.bytes <= 100 and await store.get("big") is not None
        assert await store.get("c") is None
        await store.put("huge", b"z" * 101, ttl_s=5)
        assert await store.get("huge") is None
        now[0] = 5.0
        assert await store.get("big") is None and store.bytes < 100

    asyncio.run(run())


ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "fake/a",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None,
                 "message": {"role": "assistant", "content": "Let me look.", "tool_calls": [
                     {"id": "call_1", "type": "function",
                      "function": {"name": "f", "arguments": "{\"x\": 1}"}},
                     {"id": "call_2", "type": "function",
                      "function": {"name": "g", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "cost": 1e-06}}


def test_an_answer_replays_as_chunks_that_assemble_back_to_it() -> None:
    stream = list(chunks(ANSWER, include_usage=True))
    assert stream[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert stream[-1]["choices"] == [] and stream[-1]["usage"] == ANSWER["usage"]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-1" for c in stream)
    assembler = Assembler()
    for chunk in stream:
        assembler.add(chunk)
    assert assembler.body(ANSWER["usage"]) == ANSWER
    assert "usage" not in list(chunks(ANSWER, include_usage=False))[-1]


def test_an_answers_reasoning_replays_and_assembles_back() -> None:
    blocks = [{"type": "thinking", "thinking": "first ", "signature": "s1"},
              {"type": "redacted_thinking", "data": "opaque"},
              {"type": "thinking", "thinking": "second", "signature": "s2"}]
    message = {**ANSWER["choices"][0]["message"], "reasoning_content": "first second",
               "thinking_blocks": blocks}
    answer = {**ANSWER, "choices": [{**ANSWER["choices"][0], "message": message}]}
    stream = list(chunks(answer, include_usage=True))
    deltas = [c["choices"][0]["delta"] for c in stream if c["choices"]]
    assert deltas[1:6] == [{"reasoning_content": "first "},
                           {"thinking_blocks": [{**blocks[0], "thinking": ""}]},
                           {"thinking_blocks": [blocks[1]]},
                           {"reasoning_content": "second"},
                           {"thinking_blocks": [{**blocks[2], "thinking": ""}]}]
    assembler = Assembler()
    for chunk in stream:
        assembler.add(chunk)
    assert assembler.body(answer["usage"]) == answer
    plain = {**ANSWER, "choices": [{**ANSWER["choices"][0], "message": {
        "role": "assistant", "content": "42", "reasoning_content": "think"}}]}
    assembler = Assembler()
    for chunk in chunks(plain, include_usage=False):
        assembler.add(chunk)
    assert assembler.body(plain["usage"]) == plain


def test_an_answer_round_trips_and_serves_a_copy_that_costs_nothing() -> None:
    answer = answer_of(ANSWER, model="fake/a", tier="simple", usage=Usage(3, 4, 1, 0),
                       cost_usd=Decimal("0.000001"), request_id="req_1")
    back = CachedAnswer.from_bytes(answer.to_bytes())
    assert back == answer
    served = back.fresh_body() if back else {}
    assert served["usage"]["cost"] == 0 and ANSWER["usage"]["cost"] == 1e-06
    assert CachedAnswer.from_bytes(b"{\"v\": 99}") is None
    assert CachedAnswer.from_bytes(b"not json") is None


def test_single_flight_leads_follows_and_replaces_a_leader_that_never_ends() -> None:
    from llmroute.cache.single_flight import Flights

    now = [0.0]
    flights = Flights(wait_s=1.0, clock=lambda: now[0])
    answer = answer_of(ANSWER, model="fake/a", tier="simple", usage=Usage(3, 4),
                       cost_usd=None, request_id="req_1")

    async def run() -> None:
        leader = flights.join("k")
        follower = flights.join("k")
        assert leader.leader and not follower.leader
        waiting = asyncio.ensure_future(flights.wait(follower))
        await asyncio.sleep(0)
        flights.finish(leader, answer)
        assert await waiting is answer and len(flights) == 0
        failed = flights.join("k")
        behind = flights.join("k")
        flights.finish(failed, None)
        assert await flights.wait(behind) is None  # the leader failed: fall through
        stuck = flights.join("k")
        now[0] = 1.5  # its stream was never read: a new request leads instead of waiting
        fresh = flights.join("k")
        assert stuck.leader and fresh.leader and fresh.future is not stuck.future
        flights.finish(stuck, None)  # a late finish does not drop the new leader's flight
        assert not flights.join("k").leader

    asyncio.run(run())


def test_the_semantic_index_finds_neighbours_within_a_group_and_stays_bounded() -> None:
    import numpy as np

    from llmroute.cache.semantic import Query, SemanticIndex

    class Fixed:
        dim = 3

        def encode(self, texts: Any) -> Any:
            return np.zeros((len(texts), 3), dtype=np.float32)

    index = SemanticIndex(Fixed(), threshold=0.9, max_entries=20)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(30, 3)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for i, v in enumerate(vectors):
        index.add(f"k{i}", Query("g" if i % 2 else "h", v))
    assert len(index) == 20  # k0..k9 went, oldest first
    for i in range(10, 30):
        found = index.nearest(Query("g" if i % 2 else "h", vectors[i]))
        assert found[0] == (f"k{i}", pytest.approx(1.0))
        assert all(score >= 0.9 for _, score in found)
    assert all(key != "k2" for key, _ in index.nearest(Query("h", vectors[2])))  # evicted
    assert index.nearest(Query("other", vectors[11])) == []
    index.forget("k11")
    assert all(key != "k11" for key, _ in index.nearest(Query("g", vectors[11])))
    assert index.nearest(Query("g", vectors[13]))[0][0] == "k13"  # rows moved stay right

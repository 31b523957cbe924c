"""The response cache through a real served gateway, the openai SDK as client and FakeUpstream
behind: hits, misses and bypasses (both headers), TTL expiry, tenant isolation, the stampede of
identical concurrent misses, cached streams read by the SDK (text and tool calls), stream ->
non-stream reuse, and the ledger's marks and costs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from llmroute.server.auth import hash_key
from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

from .support import GatewayServer, Serve, user

ON: dict[str, Any] = {"cache": {"response": {"enabled": True}}}
ZERO = {"temperature": 0}
KEY_A, KEY_B, KEY_A2 = "lr-tenant-a-key", "lr-tenant-b-key", "lr-tenant-a-second-key"
KEYS: dict[str, Any] = {"keys": [
    {"name": "a", "hash": hash_key(KEY_A), "team": "red"},
    {"name": "a2", "hash": hash_key(KEY_A2), "team": "red"},
    {"name": "b", "hash": hash_key(KEY_B), "team": "blue"},
]}


def ask(client: openai.OpenAI, text: str = "hello there", *, headers: dict[str, str] | None = None,
        **params: Any) -> tuple[Any, Any]:
    raw = client.chat.completions.with_raw_response.create(
        model=params.pop("model", "fake/mid"), messages=user(text), **{**ZERO, **params},
        extra_headers=headers or {})
    return raw.headers, raw.parse()


def test_a_repeat_is_a_hit_that_costs_nothing(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    with gw.client() as client:
        first_headers, first = ask(client)
        again_headers, again = ask(client)
    assert first_headers["x-llmroute-cache"] == "miss"
    assert again_headers["x-llmroute-cache"] == "hit"
    assert up.call_count() == 1
    assert again.choices[0].message.content == first.choices[0].message.content
    assert again_headers["x-llmroute-cost-usd"] == "0"
    assert again.usage is not None and again.usage.model_extra == {"cost": 0}
    assert first.usage is not None and first.usage.model_extra["cost"] > 0
    assert again_headers["x-llmroute-model"] == "fake/mid"
    assert again_headers["x-llmroute-router"] == "cache"


def test_no_header_when_the_cache_is_off(gw: GatewayServer, up: FakeUpstream) -> None:
    with gw.client() as client:
        headers, _ = ask(client)
        ask(client)
    assert "x-llmroute-cache" not in headers
    assert up.call_count() == 2


def test_sampled_requests_bypass_unless_a_ttl_opts_them_in(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    with gw.client() as client:
        # no temperature: OpenAI's default is 1, a sampled answer
        raw = client.chat.completions.with_raw_response.create(model="fake/mid",
                                                               messages=user("no temperature"))
        assert raw.headers["x-llmroute-cache"] == "bypass"
        assert ask(client, "warm", temperature=0.7)[0]["x-llmroute-cache"] == "bypass"
        assert ask(client, "warm", temperature=0.7)[0]["x-llmroute-cache"] == "bypass"
        opted = {"x-llmroute-cache-ttl": "60"}
        assert ask(client, "warm", temperature=0.7, headers=opted)[0]["x-llmroute-cache"] == "miss"
        assert ask(client, "warm", temperature=0.7, headers=opted)[0]["x-llmroute-cache"] == "hit"
    assert up.call_count() == 4


def test_sampled_requests_are_cached_when_configured(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"cache": {"response": {"enabled": True, "cache_nonzero_temperature": True}}})
    with gw.client() as client:
        for _ in range(2):
            client.chat.completions.create(model="fake/mid", messages=user("sampled"))
    assert up.call_count() == 1


def test_no_cache_answers_fresh_and_stores(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    with gw.client() as client:
        assert ask(client)[0]["x-llmroute-cache"] == "miss"
        up.set_default("*", Ok(text="a newer answer"))
        headers, fresh = ask(client, headers={"Cache-Control": "no-cache"})
        assert headers["x-llmroute-cache"] == "bypass"
        assert fresh.choices[0].message.content == "a newer answer"
        headers, again = ask(client)
    assert headers["x-llmroute-cache"] == "hit"
    assert again.choices[0].message.content == "a newer answer"  # the fresh answer was stored
    assert up.call_count() == 2


def test_no_store_neither_reads_nor_stores(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    with gw.client() as client:
        assert ask(client)[0]["x-llmroute-cache"] == "miss"
        for _ in range(2):
            assert ask(client, "other", headers={"cache-control": "no-store"})[0][
                "x-llmroute-cache"] == "bypass"
        assert ask(client, headers={"cache-control": "no-store"})[0]["x-llmroute-cache"] == "bypass"
        assert ask(client, "other")[0]["x-llmroute-cache"] == "miss"  # no-store kept nothing
    assert up.call_count() == 5


@pytest.mark.parametrize("value", ["soon", "0", "-3", "nan", "inf", "9999999999"])
def test_a_bad_ttl_header_is_a_400_naming_it(serve: Serve, up: FakeUpstream, value: str) -> None:
    gw = serve(ON)
    with gw.http() as http:
        response = http.post("/v1/chat/completions", headers={"x-llmroute-cache-ttl": value},
                             json={"model": "fake/mid", "messages": user("hi"), "temperature": 0})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-llmroute-cache-ttl"
    assert up.call_count() == 0


def test_an_entry_expires_after_its_ttl(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    short = {"x-llmroute-cache-ttl": "1"}
    with gw.client() as client:
        assert ask(client, headers=short)[0]["x-llmroute-cache"] == "miss"
        assert ask(client)[0]["x-llmroute-cache"] == "hit"
        time.sleep(1.2)
        assert ask(client)[0]["x-llmroute-cache"] == "miss"
    assert up.call_count() == 2


def test_one_tenant_never_sees_anothers_answers(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({**ON, **KEYS})
    with gw.client(KEY_A) as a, gw.client(KEY_B) as b, gw.client(KEY_A2) as a2:
        up.set_default("*", Ok(text="secret of tenant a"))
        assert ask(a)[0]["x-llmroute-cache"] == "miss"
        up.set_default("*", Ok(text="tenant b's own answer"))
        headers, answer = ask(b)
        assert headers["x-llmroute-cache"] == "miss"
        assert answer.choices[0].message.content == "tenant b's own answer"
        # scope `key` (the default): another key of the same team does not share either
        assert ask(a2)[0]["x-llmroute-cache"] == "miss"
        assert ask(a)[1].choices[0].message.content == "secret of tenant a"
    assert up.call_count() == 3


def test_team_scope_shares_within_a_team_only(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"cache": {"response": {"enabled": True, "scope": "team"}}, **KEYS})
    with gw.client(KEY_A) as a, gw.client(KEY_B) as b, gw.client(KEY_A2) as a2:
        assert ask(a)[0]["x-llmroute-cache"] == "miss"
        assert ask(a2)[0]["x-llmroute-cache"] == "hit"
        assert ask(b)[0]["x-llmroute-cache"] == "miss"
    assert up.call_count() == 2


def test_parameters_that_change_the_answer_are_in_the_key(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    with gw.client() as client:
        ask(client)
        assert ask(client, max_tokens=50)[0]["x-llmroute-cache"] == "miss"
        assert ask(client, model="fake/mini")[0]["x-llmroute-cache"] == "miss"
        assert ask(client, model="auto")[0]["x-llmroute-cache"] == "miss"
        # who the end user is and request metadata do not change the answer
        assert ask(client, user="someone", metadata={"session_id": "s1"})[0][
            "x-llmroute-cache"] == "hit"
    assert up.call_count() == 4


@pytest.mark.asyncio
async def test_a_stampede_of_identical_misses_makes_one_upstream_call(
        serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    up.set_default("*", Ok(delay_s=0.4))
    async with gw.aclient() as client:
        raws = await asyncio.gather(*(
            client.chat.completions.with_raw_response.create(
                model="fake/mid", messages=user("the same question"), temperature=0)
            for _ in range(8)))
    states = sorted(raw.headers["x-llmroute-cache"] for raw in raws)
    assert up.call_count() == 1
    assert states == ["hit"] * 7 + ["miss"]
    texts = {raw.parse().choices[0].message.content for raw in raws}
    assert texts == {"echo from mid-up: the same question"}


@pytest.mark.asyncio
async def test_when_the_leader_fails_the_waiters_make_their_own_calls(
        serve: Serve, up: FakeUpstream) -> None:
    from dataclasses import replace

    from llmroute.testing.behaviours import bad_request

    gw = serve(ON)
    up.set_default("*", Ok(delay_s=0.2))
    # the first call (the leader's) fails after the others have joined it; a 400 is not retried
    up.script("mid-up", replace(bad_request("no"), delay_s=0.3))
    async with gw.aclient() as client:
        results = await asyncio.gather(*(
            client.chat.completions.with_raw_response.create(
                model="fake/mid", messages=user("fragile"), temperature=0)
            for _ in range(3)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, Exception)]
    served = [r for r in results if not isinstance(r, BaseException)]
    assert len(failed) == 1 and len(served) == 2
    assert up.call_count() == 3


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def raw_sse(gw: GatewayServer, body: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A stream's headers and its SSE data lines, as sent."""
    with gw.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
        return dict(response.headers), lines


def test_a_streamed_answer_is_stored_and_serves_a_non_stream_request(
        serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    with gw.client() as client:
        raw = client.chat.completions.with_raw_response.create(
            model="fake/mid", messages=user("stream me"), temperature=0, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        assert raw.headers["x-llmroute-cache"] == "miss"
        headers, answer = ask(client, "stream me")
    assert headers["x-llmroute-cache"] == "hit"
    assert answer.choices[0].message.content == streamed == "echo from mid-up: stream me"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.prompt_tokens > 0
    assert up.call_count() == 1


def test_a_hit_streams_as_valid_sse_that_the_sdk_reads(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    with gw.client() as client:
        _, first = ask(client, "replay me")
        raw = client.chat.completions.with_raw_response.create(
            model="fake/mid", messages=user("replay me"), temperature=0, stream=True,
            stream_options={"include_usage": True})
        chunks = list(raw.parse())
    assert raw.headers["x-llmroute-cache"] == "hit"
    assert raw.headers["content-type"].startswith("text/event-stream")
    *content, last = chunks
    assert content[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in content) == \
        first.choices[0].message.content
    assert content[-1].choices[0].finish_reason == "stop"
    assert last.choices == [] and last.usage is not None
    assert last.usage.model_extra == {"cost": 0}
    assert first.usage is not None and last.usage.completion_tokens == first.usage.completion_tokens
    assert {c.model for c in chunks} == {"fake/mid"}
    assert up.call_count() == 1
    # on the wire: data lines of JSON, then [DONE]; no usage chunk when it was not asked for
    headers, lines = raw_sse(gw, {"model": "fake/mid", "messages": user("replay me"),
                                  "temperature": 0, "stream": True})
    assert headers["x-llmroute-cache"] == "hit"
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: {") for line in lines[:-1])
    assert '"usage"' not in "".join(lines)


def test_tool_calls_replay_through_the_sdks_stream_helper(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    up.set_default("*", Ok(tool_call="get_weather"))
    with gw.client() as client:
        params: dict[str, Any] = {"model": "fake/mid", "messages": user("weather in Oslo?"),
                                  "temperature": 0, "tools": TOOLS}
        first = client.chat.completions.create(**params)
        with client.chat.completions.stream(**params) as stream:
            for _ in stream:
                pass
            replayed = stream.get_final_completion()
        # and the other way: an answer first streamed (tool calls assembled) serves a request
        streamed_params = {**params, "messages": user("weather in Bergen?")}
        with client.chat.completions.stream(**streamed_params) as stream:
            for _ in stream:
                pass
            original = stream.get_final_completion()
        stored = client.chat.completions.create(**streamed_params)
    assert up.call_count() == 2
    [call] = first.choices[0].message.tool_calls or []
    [again] = replayed.choices[0].message.tool_calls or []
    assert (again.id, again.function.name, again.function.arguments) == \
        (call.id, call.function.name, call.function.arguments)
    assert replayed.choices[0].finish_reason == "tool_calls"
    [call] = original.choices[0].message.tool_calls or []
    [again] = stored.choices[0].message.tool_calls or []
    assert (again.id, again.function.name, again.function.arguments) == \
        (call.id, call.function.name, call.function.arguments)
    assert stored.choices[0].finish_reason == "tool_calls"


def test_a_cut_stream_is_not_stored(serve: Serve, up: FakeUpstream) -> None:
    from llmroute.testing.behaviours import CutStream

    gw = serve(ON)
    up.script("mid-up", CutStream(after_chunks=2))
    with gw.client() as client:
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="fake/mid", messages=user("cut"),
                                                temperature=0, stream=True))
        headers, _ = ask(client, "cut")
    assert headers["x-llmroute-cache"] == "miss"
    assert up.call_count() == 2


def test_an_answer_over_max_entry_bytes_is_not_stored(serve: Serve, up: FakeUpstream) -> None:
    gw = serve({"cache": {"response": {"enabled": True, "max_entry_bytes": 600}}})
    up.set_default("*", Ok(text="x" * 1000))
    with gw.client() as client:
        assert ask(client)[0]["x-llmroute-cache"] == "miss"
        assert ask(client)[0]["x-llmroute-cache"] == "miss"
    assert up.call_count() == 2


def ledger(tmp_path: Path) -> dict[str, Any]:
    return {"ledger": {"enabled": True, "url": f"sqlite:///{tmp_path / 'ledger.db'}",
                       "spool_path": str(tmp_path / "spool.jsonl"), "flush_interval_s": 0.05}}


def ledger_rows(tmp_path: Path, count: int) -> list[sqlite3.Row]:
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(tmp_path / "ledger.db") as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT request_id, cache, cost_usd, cache_saved_usd, cached_from, "
                              "model, input_tokens, output_tokens, stream, router "
                              "FROM llmroute_requests ORDER BY ts").fetchall()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_the_ledger_marks_hits_misses_and_bypasses(serve: Serve, up: FakeUpstream,
                                                   tmp_path: Path) -> None:
    gw = serve({**ON, **ledger(tmp_path)})
    with gw.client() as client:
        miss_headers, miss = ask(client, "account for me")
        hit_headers, _ = ask(client, "account for me")
        list(client.chat.completions.create(model="fake/mid", messages=user("account for me"),
                                            temperature=0, stream=True))
        ask(client, "account for me", headers={"cache-control": "no-store"})
    rows = {r["request_id"]: r for r in ledger_rows(tmp_path, 4)}
    assert len(rows) == 4
    original = rows[miss_headers["x-llmroute-request-id"]]
    hit = rows[hit_headers["x-llmroute-request-id"]]
    assert original["cache"] == "miss" and original["cached_from"] is None
    # cost: 2 prompt + 6 completion tokens of fake/mid at $0.40 / $1.60 per 1M, by hand
    assert miss.usage is not None
    expected = (Decimal(miss.usage.prompt_tokens) * Decimal("0.4")
                + Decimal(miss.usage.completion_tokens) * Decimal("1.6")) / 1_000_000
    assert Decimal(original["cost_usd"]) == expected
    assert hit["cache"] == "hit" and Decimal(hit["cost_usd"]) == 0
    assert Decimal(hit["cache_saved_usd"]) == expected
    assert hit["cached_from"] == original["request_id"]
    assert (hit["model"], hit["input_tokens"], hit["output_tokens"], hit["router"]) == \
        ("fake/mid", miss.usage.prompt_tokens, miss.usage.completion_tokens, "cache")
    streamed = [r for r in rows.values() if r["stream"]]
    assert [r["cache"] for r in streamed] == ["hit"]
    assert sorted(r["cache"] for r in rows.values()) == ["bypass", "hit", "hit", "miss"]


def test_hits_count_against_request_limits_and_spend_nothing(serve: Serve,
                                                             up: FakeUpstream) -> None:
    limits = [{"window": "minute", "requests": 3}, {"window": "day", "usd": "10"},
              {"window": "day", "tokens": 100000}]
    gw = serve({**ON, "keys": [{"name": "metered", "hash": hash_key(KEY_A), "limits": limits}]})
    with gw.client(KEY_A) as client, gw.http() as http:
        _, miss = ask(client, "count me")
        budgets = http.get("/v1/budgets", headers={"authorization": f"Bearer {KEY_A}"}).json()
        spent = {b["unit"]: b["used"] for b in budgets["data"]}
        assert ask(client, "count me")[0]["x-llmroute-cache"] == "hit"
        assert ask(client, "count me")[0]["x-llmroute-cache"] == "hit"
        with pytest.raises(openai.RateLimitError):  # the fourth request in the minute
            ask(client, "count me")
        budgets = http.get("/v1/budgets", headers={"authorization": f"Bearer {KEY_A}"}).json()
    used = {b["unit"]: b["used"] for b in budgets["data"]}
    assert used["requests"] == 3  # the refused one is not counted
    assert miss.usage is not None
    assert used["usd"] == spent["usd"] and Decimal(used["usd"]) > 0  # hits settle at $0
    assert used["tokens"] == spent["tokens"] == miss.usage.total_tokens
    assert up.call_count() == 1


def test_a_shared_answer_from_a_model_the_key_may_not_use_is_not_served(
        serve: Serve, up: FakeUpstream) -> None:
    keys = {"keys": [{"name": "a", "hash": hash_key(KEY_A), "team": "red"},
                     {"name": "a2", "hash": hash_key(KEY_A2), "team": "red",
                      "models": ["fake/mid"]}]}
    gw = serve({"cache": {"response": {"enabled": True, "scope": "team"}}, **keys})
    with gw.client(KEY_A) as a, gw.client(KEY_A2) as a2:
        headers, _ = ask(a, model="auto")
        assert (headers["x-llmroute-cache"], headers["x-llmroute-model"]) == ("miss", "fake/mini")
        headers, answer = ask(a2, model="auto")
    assert (headers["x-llmroute-cache"], headers["x-llmroute-model"]) == ("bypass", "fake/mid")
    assert answer.model == "fake/mid"
    assert up.call_count() == 2


def test_an_anthropic_stream_is_assembled_and_replayed(serve: Serve, up: FakeUpstream) -> None:
    gw = serve(ON)
    params: dict[str, Any] = {"model": "anthropic-ish/claude", "messages": user("from claude"),
                              "temperature": 0}
    with gw.client() as client:
        streamed = list(client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        raw = client.chat.completions.with_raw_response.create(**params)
        replayed = list(client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}))
    answer = raw.parse()
    assert raw.headers["x-llmroute-cache"] == "hit"
    assert answer.choices[0].message.content == text and text
    assert "".join(c.choices[0].delta.content or "" for c in replayed if c.choices) == text
    assert streamed[-1].usage is not None and replayed[-1].usage is not None
    assert replayed[-1].usage.completion_tokens == streamed[-1].usage.completion_tokens
    assert up.call_count() == 1

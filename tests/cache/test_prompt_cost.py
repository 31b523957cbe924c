"""Provider prompt caching through a real gateway: the openai SDK as the client, the fake
upstream simulating Anthropic's breakpoints and OpenAI's automatic prefix caching. Costs are
hand-computed from the configured prices and asserted to the exact Decimal in `usage`,
`usage.cost`, `x-llmroute-cost-usd` and the ledger entry (cost, cached and written tokens, what
the prompt cache saved).

Prices (USD per 1M tokens): `anthropic-ish/claude` input 3, cache write 3.75 (1-hour: 6),
cache read 0.3, output 15; `fake/big` input 2.5, cached input 1.25, output 10. Every answer is scripted as
"12345678": 8 // 4 + 1 = 3 output tokens.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from integration.support import GatewayServer, Serve
from integration.test_ledger import ledger_config, wait_for_entries
from llmroute.ledger.entry import LedgerEntry
from llmroute.testing.behaviours import Ok
from llmroute.testing.upstream import FakeUpstream

CLAUDE = "anthropic-ish/claude"
EPH = {"type": "ephemeral"}
PRICES = {"models": {
    CLAUDE: {"cached_input_per_m": "0.3", "cache_write_per_m": "3.75",
             "cache_write_1h_per_m": "6", "cache_min_tokens": 1024},
    "fake/big": {"cached_input_per_m": "1.25"}}}
M = Decimal(1_000_000)


def gateway(serve: Serve, tmp_path: Path, up: FakeUpstream, **extra: Any) -> GatewayServer:
    up.set_default("claude-up", Ok(text="12345678"))
    up.set_default("big-up", Ok(text="12345678"))
    return serve({**ledger_config(tmp_path), **PRICES, **extra})


def marked_system(user_text: str = "hello", mark: dict[str, Any] = EPH) -> list[dict[str, Any]]:
    """A system prompt of 8000 characters (2000 tokens) marked for caching, and a user turn."""
    return [{"role": "system", "content": [{"type": "text", "text": "s" * 8000,
                                            "cache_control": mark}]},
            {"role": "user", "content": user_text}]


def details(usage: Any) -> tuple[int, int, int]:
    """(prompt tokens, cached tokens, cache-write tokens) of an SDK usage object."""
    extra = usage.prompt_tokens_details.model_dump()
    return usage.prompt_tokens, extra["cached_tokens"], extra.get("cache_write_tokens", 0)


def by_id(tmp_path: Path, count: int) -> dict[str, LedgerEntry]:
    return {e.request_id: e for e in wait_for_entries(tmp_path, count)}


def assert_entry(entry: LedgerEntry, cost: Decimal, cached: int, written: int,
                 saved: Decimal | None) -> None:
    assert (entry.cost_usd, entry.cached_tokens, entry.cache_write_tokens,
            entry.prompt_cache_saved_usd) == (cost, cached, written, saved)


# Anthropic, turn 1: 2002 prompt tokens = 2 input + 2000 written; 3 output.
WRITE_COST = (2 * 3 + 2000 * Decimal("3.75") + 3 * 15) / M        # 0.007551
# Turn 2, same prompt: 2 input + 2000 read.
READ_COST = (2 * 3 + 2000 * Decimal("0.3") + 3 * 15) / M          # 0.000651
PLAIN_COST = (2002 * 3 + 3 * 15) / M                               # 0.006051, no caching


def test_anthropic_cache_write_then_read_priced_exactly(serve: Serve, up: FakeUpstream,
                                                        tmp_path: Path) -> None:
    gw = gateway(serve, tmp_path, up)
    with gw.client() as client:
        raw = [client.chat.completions.with_raw_response.create(model=CLAUDE,
                                                                messages=marked_system())
               for _ in range(2)]
    first, second = (r.parse() for r in raw)
    assert details(first.usage) == (2002, 0, 2000)
    assert details(second.usage) == (2002, 2000, 0)
    assert Decimal("0.007551") == WRITE_COST and Decimal("0.000651") == READ_COST
    for response, cost in zip(raw, (WRITE_COST, READ_COST), strict=True):
        assert Decimal(response.headers["x-llmroute-cost-usd"]) == cost
        assert response.parse().usage.model_extra["cost"] == float(cost)
    found = by_id(tmp_path, 2)
    write, read = (found[r.headers["x-llmroute-request-id"]] for r in raw)
    # a write costs more than plain input (saved < 0); a read saves the discount
    assert_entry(write, WRITE_COST, 0, 2000, PLAIN_COST - WRITE_COST)
    assert_entry(read, READ_COST, 2000, 0, PLAIN_COST - READ_COST)
    assert write.prompt_cache_saved_usd == Decimal("-0.0015")
    assert read.prompt_cache_saved_usd == Decimal("0.0054")


def stream_usage(client: openai.OpenAI, model: str, messages: list[dict[str, Any]]
                 ) -> tuple[Any, str]:
    response = client.chat.completions.with_raw_response.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True})
    chunks = list(response.parse())
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "12345678"
    return chunks[-1].usage, response.headers["x-llmroute-request-id"]


def test_anthropic_streams_carry_cache_usage_and_cost(serve: Serve, up: FakeUpstream,
                                                      tmp_path: Path) -> None:
    gw = gateway(serve, tmp_path, up)
    with gw.client() as client:
        (u1, id1), (u2, id2) = (stream_usage(client, CLAUDE, marked_system()) for _ in range(2))
    assert details(u1) == (2002, 0, 2000) and details(u2) == (2002, 2000, 0)
    assert (u1.model_extra["cost"], u2.model_extra["cost"]) == (float(WRITE_COST),
                                                                float(READ_COST))
    found = by_id(tmp_path, 2)
    assert_entry(found[id1], WRITE_COST, 0, 2000, PLAIN_COST - WRITE_COST)
    assert_entry(found[id2], READ_COST, 2000, 0, PLAIN_COST - READ_COST)
    # the fake sent the cache counts in message_start and again in message_delta
    assert all(r.body is not None and r.body["stream"] is True for r in up.requests)


def test_turn_two_reads_what_turn_one_wrote(serve: Serve, up: FakeUpstream,
                                           tmp_path: Path) -> None:
    gw = gateway(serve, tmp_path, up)
    system = {"role": "system", "content": "s" * 8000}
    turn1 = [system, {"role": "user", "content": "u" * 400, "cache_control": EPH}]
    with gw.client() as client:
        one = client.chat.completions.with_raw_response.create(model=CLAUDE, messages=turn1)
        answer = one.parse().choices[0].message.content
        turn2 = [system, {"role": "user", "content": "u" * 400},
                 {"role": "assistant", "content": answer},
                 {"role": "user", "content": "v" * 400, "cache_control": EPH}]
        two = client.chat.completions.with_raw_response.create(model=CLAUDE, messages=turn2)
    # turn 1: 8400 chars, 2101 tokens: 2100 written at the breakpoint, 1 input
    assert details(one.parse().usage) == (2101, 0, 2100)
    # turn 2: 8808 chars, 2203 tokens: turn 1's 2100 read, 2202 - 2100 = 102 written, 1 input
    assert details(two.parse().usage) == (2203, 2100, 102)
    cost2 = (1 * 3 + 2100 * Decimal("0.3") + 102 * Decimal("3.75") + 3 * 15) / M
    assert cost2 == Decimal("0.0010605")
    assert Decimal(two.headers["x-llmroute-cost-usd"]) == cost2
    entry = by_id(tmp_path, 2)[two.headers["x-llmroute-request-id"]]
    assert_entry(entry, cost2, 2100, 102, (2203 * 3 + 3 * 15) / M - cost2)


# OpenAI (automatic): 6000 characters, 1501 prompt tokens; the repeat reads 1408 (1024 + 3 * 128).
OPENAI_FIRST = (1501 * Decimal("2.5") + 3 * 10) / M                       # 0.0037825
OPENAI_READ = (93 * Decimal("2.5") + 1408 * Decimal("1.25") + 3 * 10) / M  # 0.0020225


@pytest.mark.parametrize("stream", [False, True])
def test_openai_automatic_caching_priced_exactly(serve: Serve, up: FakeUpstream,
                                                 tmp_path: Path, stream: bool) -> None:
    gw = gateway(serve, tmp_path, up)
    messages = [{"role": "user", "content": "x" * 6000}]
    ids, usages = [], []
    with gw.client() as client:
        for _ in range(2):
            if stream:
                usage, request_id = stream_usage(client, "fake/big", messages)
            else:
                raw = client.chat.completions.with_raw_response.create(model="fake/big",
                                                                       messages=messages)
                usage, request_id = raw.parse().usage, raw.headers["x-llmroute-request-id"]
                assert Decimal(raw.headers["x-llmroute-cost-usd"]) == \
                    (OPENAI_FIRST, OPENAI_READ)[len(ids)]
            ids.append(request_id)
            usages.append(usage)
    assert [details(u)[:2] for u in usages] == [(1501, 0), (1501, 1408)]
    assert [u.model_extra["cost"] for u in usages] == [float(OPENAI_FIRST), float(OPENAI_READ)]
    found = by_id(tmp_path, 2)
    assert_entry(found[ids[0]], OPENAI_FIRST, 0, 0, None)
    assert_entry(found[ids[1]], OPENAI_READ, 1408, 0, 1408 * Decimal("1.25") / M)
    assert Decimal("0.0020225") == OPENAI_READ


def test_cache_control_reaches_the_anthropic_upstream(serve: Serve, up: FakeUpstream,
                                                      tmp_path: Path) -> None:
    gw = gateway(serve, tmp_path, up)
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}},
              "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    messages = [*marked_system(), {"role": "assistant", "content": "ok", "cache_control": EPH},
                {"role": "user", "content": [{"type": "text", "text": "and?",
                                              "cache_control": EPH}]}]
    with gw.client() as client:
        client.chat.completions.create(model=CLAUDE, messages=messages,
                                       tools=tools)
    [request] = up.requests
    body = request.body
    assert body is not None
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    assert body["system"] == [{"type": "text", "text": "s" * 8000, "cache_control": EPH}]
    assert [[b.get("cache_control") for b in m["content"]] for m in body["messages"]] == [
        [None], [EPH], [EPH]]


def test_more_than_four_breakpoints_is_a_400_naming_the_fifth(serve: Serve, up: FakeUpstream,
                                                              tmp_path: Path) -> None:
    gw = gateway(serve, tmp_path, up)
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}",
                 "cache_control": EPH} for i in range(5)]
    with gw.client() as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=CLAUDE, messages=messages)
    assert caught.value.body["param"] == "messages[4].cache_control"
    assert up.requests == []


@pytest.mark.parametrize(("mark", "param"), [
    ({"type": "persistent"}, "messages[0].cache_control.type"),
    ({"type": "ephemeral", "ttl": "24h"}, "messages[0].cache_control.ttl"),
])
def test_a_malformed_mark_is_a_400(serve: Serve, up: FakeUpstream, tmp_path: Path,
                                   mark: dict[str, Any], param: str) -> None:
    gw = gateway(serve, tmp_path, up)
    with gw.client() as client, pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake/big", messages=[
            {"role": "user", "content": "hi", "cache_control": mark}])
    assert caught.value.body["param"] == param


@pytest.mark.parametrize("setting", ["auto", "pass"])
def test_openai_compatible_upstreams_get_marks_only_when_they_pass_them(
        serve: Serve, up: FakeUpstream, tmp_path: Path, setting: str) -> None:
    gw = gateway(serve, tmp_path, up, providers={"fake": {"cache_control": setting}})
    tools = [{"type": "function", "function": {"name": "f"}, "cache_control": EPH}]
    with gw.client() as client:
        client.chat.completions.create(model="fake/big", messages=marked_system(),
                                       tools=tools)
    [request] = up.requests
    sent = repr(request.body)
    # the fake serves 127.0.0.1: `auto` strips (only OpenRouter takes the marks), `pass` keeps
    assert ("cache_control" in sent) is (setting == "pass")
    assert request.body is not None and request.body["messages"][0]["content"][0]["text"] == "s" * 8000


def test_automatic_breakpoints_mark_long_prefixes(serve: Serve, up: FakeUpstream,
                                                  tmp_path: Path) -> None:
    gw = gateway(serve, tmp_path, up, cache={"prompt": {"auto_breakpoints": True}})
    short = [{"role": "system", "content": "short"}, {"role": "user", "content": "hi"}]
    turn1 = [{"role": "system", "content": "s" * 8000}, {"role": "user", "content": "hello"}]
    turn2 = [*turn1, {"role": "assistant", "content": "12345678"},
             {"role": "user", "content": "again"}]
    turn3 = [*turn2, {"role": "assistant", "content": "12345678"},
             {"role": "user", "content": "third"}]
    with gw.client() as client:
        usages = [client.chat.completions.create(model=CLAUDE, messages=m).usage
                  for m in (short, turn1, turn2, turn3)]
    bodies = [r.body for r in up.requests]
    assert all(b is not None for b in bodies)
    assert bodies[0]["system"] == "short"  # below 1024 tokens: unmarked
    assert bodies[1]["system"] == [{"type": "text", "text": "s" * 8000, "cache_control": EPH}]
    # turn 2: the system prompt and the turns before the newest user turn (ends at messages[1])
    assert [[b.get("cache_control") for b in m["content"]]
            for m in bodies[2]["messages"]] == [[None], [EPH], [None]]
    assert details(usages[0]) == (2, 0, 0)  # 7 characters
    assert details(usages[1]) == (2002, 0, 2000)
    # 8018 chars: 2005 tokens; the system prefix read, up to the assistant turn written
    # ((8000 + 5 + 8) // 4 = 2003)
    assert details(usages[2]) == (2005, 2000, 3)
    # turn 3: 8031 chars, 2008 tokens; turn 2's 2003 read (20-block lookback from the new
    # breakpoint), up to the second assistant turn written (8026 // 4 = 2006)
    assert details(usages[3]) == (2008, 2003, 3)


@pytest.mark.parametrize("stream", [False, True])
def test_one_hour_writes_are_priced_apart(serve: Serve, up: FakeUpstream,
                                          tmp_path: Path, stream: bool) -> None:
    gw = gateway(serve, tmp_path, up)
    messages = marked_system(mark={"type": "ephemeral", "ttl": "1h"})
    with gw.client() as client:
        if stream:
            usage, request_id = stream_usage(client, CLAUDE, messages)
        else:
            raw = client.chat.completions.with_raw_response.create(model=CLAUDE,
                                                                   messages=messages)
            usage, request_id = raw.parse().usage, raw.headers["x-llmroute-request-id"]
    assert usage.prompt_tokens_details.model_dump()["cache_write_1h_tokens"] == 2000
    cost = (2 * 3 + 2000 * 6 + 3 * 15) / M
    assert cost == Decimal("0.012051")
    assert usage.model_extra["cost"] == float(cost)
    entry = by_id(tmp_path, 1)[request_id]
    assert_entry(entry, cost, 0, 2000, PLAIN_COST - cost)


def test_a_stream_without_include_usage_is_still_priced_with_its_cache(
        serve: Serve, up: FakeUpstream, tmp_path: Path) -> None:
    gw = gateway(serve, tmp_path, up)
    with gw.client() as client:
        response = client.chat.completions.with_raw_response.create(
            model=CLAUDE, messages=marked_system(), stream=True)
        chunks = list(response.parse())
    assert all(c.usage is None for c in chunks)  # the client did not ask for usage
    entry = by_id(tmp_path, 1)[response.headers["x-llmroute-request-id"]]
    assert_entry(entry, WRITE_COST, 0, 2000, PLAIN_COST - WRITE_COST)

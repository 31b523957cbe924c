"""Cache-aware routing, decided: stay on a conversation's warm model when that is cheaper and no
less capable; switch on escalation, an ineligible or cooling model, an expired cache; the reason's
words; keys scoped by the gateway key; the prefix hash that links two turns. Costs hand-computed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from llmroute.cache.affinity import (
    Warm,
    answered_key,
    answered_keys,
    cached_prefix,
    dumps_all,
    loads_all,
    merged,
    prefix_key,
    session_key,
    session_of,
    weigh,
)
from llmroute.cache.affinity_stage import Affinity, router_pick
from llmroute.cache.affinity_store import MemoryAffinity
from llmroute.cache.config import AffinityConfig
from llmroute.catalog import Catalog, ModelSpec
from llmroute.chat import SESSION_HEADER, ChatRequest, with_headers
from llmroute.errors import InvalidRequestError
from llmroute.outcome import Outcome, Plan
from llmroute.types import Usage

LADDER = ("simple", "medium", "complex")


def spec(name: str, tier: str, inp: str, out: str, cached: str | None = None,
         write: str | None = None, provider: str = "openai") -> ModelSpec:
    return ModelSpec(name, provider, Decimal(inp), Decimal(out),
                     Decimal(cached) if cached else None, Decimal(write) if write else None,
                     tier=tier)


# haiku-, gpt-4.1-mini- and nano-like models in one tier, and a stronger one
HAIKU = spec("claude-haiku", "simple", "1", "5", cached="0.1", write="1.25", provider="anthropic")
MINI41 = spec("gpt-mini", "simple", "0.4", "1.6", cached="0.1")
NANO = spec("nano", "simple", "0.1", "0.4", cached="0.025")
BIG = spec("big", "complex", "3", "15", cached="0.3", write="3.75", provider="anthropic")
#: a little cheaper than gpt-mini, and cheaper still once its own cache is warm
CHEAP = spec("cheap", "simple", "0.3", "1.2", cached="0.075")
CATALOG = Catalog({s.name: s for s in (HAIKU, MINI41, NANO, BIG, CHEAP)})


def plan(chain: tuple[str, ...], tier: str, reason: str = "rules: short") -> Plan:
    return Plan(chain, tier, "rules", "default", 0.8, reason, 4000)


def stage(clock: float = 1000.0, available: bool = True, **config: Any) -> Affinity:
    cfg = AffinityConfig(enabled=True, **config)
    store = MemoryAffinity(cfg.ttl_s, cfg.max_entries, clock=lambda: clock)
    return Affinity(cfg, CATALOG, LADDER, store, lambda m: available, clock=lambda: clock)


def test_weigh_stays_when_the_cached_prefix_makes_the_warm_model_cheaper() -> None:
    # 4,000 prompt tokens of which 3,000 are warm on nano; 200 output tokens.
    # stay on nano: 3000*0.025 + 1000*0.1 + 200*0.4 = 75 + 100 + 80 = 255 -> $0.000255
    # switch to gpt-mini (no write price): 4000*0.4 + 200*1.6 = 1600 + 320 -> $0.00192
    weighed = weigh(Warm("nano", 0, 3000), NANO, MINI41, "simple", LADDER, Usage(4000, 200))
    assert weighed.stay
    assert weighed.stay_usd == Decimal("0.000255")
    assert weighed.switch_usd == Decimal("0.00192")
    assert weighed.note == ("stayed on nano: warm prompt cache (≈3,000 cached tokens, "
                            "est $0.0003 vs $0.0019 on gpt-mini)")


def test_weigh_prices_the_switch_as_a_cache_write_where_the_choice_has_a_write_price() -> None:
    # warm gpt-mini (3,000 cached) vs haiku, which would write the 3,000-token prefix:
    # stay: 3000*0.1 + 1000*0.4 + 200*1.6 = 300 + 400 + 320 = 1020 -> $0.00102
    # switch: 3000*1.25 + 1000*1 + 200*5 = 3750 + 1000 + 1000 = 5750 -> $0.00575
    weighed = weigh(Warm("gpt-mini", 0, 3000), MINI41, HAIKU, "simple", LADDER, Usage(4000, 200))
    assert weighed.stay
    assert (weighed.stay_usd, weighed.switch_usd) == (Decimal("0.00102"), Decimal("0.00575"))


def test_weigh_switches_when_staying_costs_more() -> None:
    # warm on big (complex) but the router chose nano: big with 3,000 cached still costs
    # 3000*0.3 + 1000*3 + 200*15 = 900 + 3000 + 3000 = 6900 vs nano 4000*0.1 + 200*0.4 = 480
    weighed = weigh(Warm("big", 0, 3000), BIG, NANO, "simple", LADDER, Usage(4000, 200))
    assert not weighed.stay
    assert weighed.note.startswith("left big's warm cache (≈3,000 cached tokens): staying costs "
                                   "more (est $0.0069 vs $0.0005 on nano)")


def test_weigh_never_trades_quality_the_router_escalated() -> None:
    # nano (simple) would be far cheaper, but the router asked for the complex tier
    weighed = weigh(Warm("nano", 0, 3000), NANO, BIG, "complex", LADDER, Usage(4000, 200))
    assert not weighed.stay
    assert "not used: the router chose the stronger tier 'complex'" in weighed.note


def test_weigh_counts_no_more_cached_tokens_than_the_prompt_has() -> None:
    weighed = weigh(Warm("nano", 0, 9000), NANO, MINI41, "simple", LADDER, Usage(4000, 0))
    assert weighed.stay_usd == Decimal(4000) * Decimal("0.025") / 1_000_000


def test_the_stage_stays_and_says_why_in_the_plan() -> None:
    # the default horizon: gpt-mini never chosen before, so this call and one more:
    # stay: 2 * 255 = 510 -> $0.00051; switch: 1920 (uncached) + 1020 (3,000 read on gpt-mini:
    # 3000*0.1 + 1000*0.4 + 200*1.6) = 2940 -> $0.00294
    aff = stage()
    out = aff.decide(plan(("gpt-mini", "nano"), "simple"), (Warm("nano", 990, 3000),), {},
                     Usage(4000, 200))
    assert out.chain == ("nano", "gpt-mini")
    assert out.tier == "simple" and out.affinity == "stayed"
    assert out.reason == ("stayed on nano: warm prompt cache (≈3,000 cached tokens, est $0.0005 "
                          "vs $0.0029 on gpt-mini over 2 calls); the router said: rules: short")
    one = stage(horizon_turns=1).decide(plan(("gpt-mini", "nano"), "simple"),
                                        (Warm("nano", 990, 3000),), {}, Usage(4000, 200))
    assert one.reason == ("stayed on nano: warm prompt cache (≈3,000 cached tokens, est $0.0003 "
                          "vs $0.0019 on gpt-mini); the router said: rules: short")


# gpt-mini warm with 9,000 of a 10,000-token prompt, 100 output tokens; the router chose cheap:
# stay, per call: 9000*0.1 + 1000*0.4 + 100*1.6 = 900 + 400 + 160 = 1460 µ$
# switch: first call uncached 10000*0.3 + 100*1.2 = 3000 + 120 = 3120 µ$; each later call reads
# cheap's own cache: 9000*0.075 + 1000*0.3 + 100*1.2 = 675 + 300 + 120 = 1095 µ$
WARM9K = Warm("gpt-mini", 990, 9000)


def test_weigh_over_a_horizon_pays_the_switch_once_then_reads_the_new_cache() -> None:
    one = weigh(WARM9K, MINI41, CHEAP, "simple", LADDER, Usage(10000, 100))
    assert one.stay and (one.stay_usd, one.switch_usd) == (Decimal("0.00146"), Decimal("0.00312"))
    # 5 calls: 5*1460 = 7300 vs 3120 + 4*1095 = 7500 -> still stays
    five = weigh(WARM9K, MINI41, CHEAP, "simple", LADDER, Usage(10000, 100), horizon=5)
    assert five.stay and (five.stay_usd, five.switch_usd) == (Decimal("0.0073"),
                                                              Decimal("0.0075"))
    # 6 calls: 6*1460 = 8760 vs 3120 + 5*1095 = 8595 -> switches
    six = weigh(WARM9K, MINI41, CHEAP, "simple", LADDER, Usage(10000, 100), horizon=6)
    assert not six.stay and (six.stay_usd, six.switch_usd) == (Decimal("0.00876"),
                                                               Decimal("0.008595"))
    assert six.note == ("left gpt-mini's warm cache (≈9,000 cached tokens): staying costs more "
                        "(est $0.0088 vs $0.0086 on cheap over 6 calls)")


def test_the_derived_horizon_grows_with_the_routers_picks_of_its_choice() -> None:
    routed = plan(("cheap",), "simple")
    # never chosen before: 2 calls (2920 vs 4215): stays on the warm model
    first = stage().decide(routed, (WARM9K,), {}, Usage(10000, 100))
    assert first.affinity == "stayed" and first.chain == ("gpt-mini", "cheap")
    # chosen 3 times before (nothing cached there: tokens 0): 5 calls, still stays
    fourth = stage().decide(routed, (WARM9K, Warm("cheap", 980, 0, 3)), {}, Usage(10000, 100))
    assert fourth.affinity == "stayed"
    # chosen 4 times before: 6 calls: switches (see the test above)
    fifth = stage().decide(routed, (WARM9K, Warm("cheap", 980, 0, 4)), {}, Usage(10000, 100))
    assert fifth.affinity == "switched" and fifth.chain == ("cheap",)
    assert "over 6 calls" in fifth.reason
    # a fixed horizon ignores the picks
    fixed = stage(horizon_turns=1).decide(routed, (WARM9K, Warm("cheap", 980, 0, 9)), {},
                                          Usage(10000, 100))
    assert fixed.affinity == "stayed"


def test_remember_counts_the_routers_pick_even_when_affinity_overrode_it() -> None:
    aff = stage()
    key = session_key("k", "s")

    async def go() -> list[Any]:
        stayed = replace(plan(("gpt-mini", "cheap"), "simple"), affinity="stayed")
        aff.remember(chat(TURN1, llmroute_session="s"), "k",
                     Outcome("r", stayed, model="gpt-mini", usage=Usage(9000, 5)), ANSWER)
        await asyncio.sleep(0)
        after_stay = await aff.store.get(key)
        routed = plan(("cheap",), "simple")
        aff.remember(chat(TURN2, llmroute_session="s"), "k",
                     Outcome("r", routed, model="cheap", usage=Usage(9500, 5)), ANSWER)
        await asyncio.sleep(0)
        return [after_stay, await aff.store.get(key)]

    after_stay, after_switch = run(go())
    # gpt-mini served (its cache holds 9,000) but the router had picked cheap
    assert after_stay == (Warm("gpt-mini", 1000, 9000, 0), Warm("cheap", 1000, 0, 1))
    # cheap served and picked again: first, with 2 picks; gpt-mini's cache still remembered
    assert after_switch == (Warm("cheap", 1000, 9500, 2), Warm("gpt-mini", 1000, 9000, 0))
    assert router_pick(replace(plan(("a", "b"), "simple"), affinity="stayed")) == "b"
    assert router_pick(plan(("a", "b"), "simple")) == "a"


def test_the_stage_switches_when_the_warm_model_is_ineligible_or_unavailable() -> None:
    warm = (Warm("nano", 990, 3000),)
    out = stage().decide(plan(("gpt-mini",), "simple"), warm, {"nano": "context window 4,000"},
                         Usage(4000, 200))
    assert out.chain == ("gpt-mini",) and out.affinity == "switched"
    assert out.reason.endswith("nano's warm cache (≈3,000 tokens) not used: ineligible "
                               "(context window 4,000)")
    out = stage(available=False).decide(plan(("gpt-mini",), "simple"), warm, {}, Usage(4000, 200))
    assert out.chain == ("gpt-mini",)
    assert "not available (unserved or cooling down)" in out.reason
    out = stage().decide(plan(("gpt-mini",), "simple"), (Warm("gone", 990, 3000),), {},
                         Usage(4000, 200))
    assert out.chain == ("gpt-mini",) and "not in the routing pool" in out.reason


def test_the_router_choosing_the_warm_model_is_marked_warm() -> None:
    out = stage().decide(plan(("nano",), "simple"), (Warm("nano", 990, 3000),), {}, Usage(4000, 200))
    assert out.chain == ("nano",) and out.affinity == "warm"
    assert out.reason == "rules: short; nano's prompt cache is warm (≈3,000 tokens)"


def chat(messages: list[dict[str, Any]], **metadata: str) -> ChatRequest:
    body: dict[str, Any] = {"model": "auto", "messages": messages}
    return ChatRequest("auto", body, metadata=metadata)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


TURN1 = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "hello"}]
ANSWER = {"role": "assistant", "content": "hi, how can I help?"}
TURN2 = [*TURN1, ANSWER, {"role": "user", "content": "tell me more"}]


def test_the_prefix_hash_links_two_turns_of_a_conversation() -> None:
    assert prefix_key("k", TURN1) is None  # a first turn: nothing warm to find
    recorded = answered_key("k", TURN1, {"content": ANSWER["content"], "refusal": None})
    assert prefix_key("k", TURN2) == recorded
    # a text-parts content and extra keys the SDK adds are the same message
    parts = [*TURN1, {"role": "assistant", "content": [{"type": "text", "text": ANSWER["content"]}],
                      "tool_calls": None}, {"role": "user", "content": "other"}]
    assert prefix_key("k", parts) == recorded
    edited = [*TURN1[:1], {"role": "user", "content": "hello!"}, ANSWER, TURN2[-1]]
    assert prefix_key("k", edited) != recorded


def test_keys_are_scoped_by_the_gateway_key() -> None:
    assert answered_key("team-a", TURN1, ANSWER) != answered_key("team-b", TURN1, ANSWER)
    assert session_key("team-a", "s1") != session_key("team-b", "s1")
    assert session_key(None, "s1") != session_key("team-a", "s1")


def test_tenants_do_not_steer_each_other() -> None:
    aff = stage()
    turn = Outcome("r", plan(("nano",), "simple"), model="nano", usage=Usage(3000, 50))
    aff.enabled = True

    async def go() -> tuple[Plan, Plan]:
        aff.remember(chat(TURN1), "tenant-a", turn, ANSWER)
        await asyncio.sleep(0)
        routed = plan(("gpt-mini", "nano"), "simple")
        mine = await aff.steer(routed, chat(TURN2), "tenant-a", {}, Usage(4000, 200))
        theirs = await aff.steer(routed, chat(TURN2), "tenant-b", {}, Usage(4000, 200))
        return mine, theirs

    mine, theirs = run(go())
    assert mine.chain[0] == "nano" and mine.affinity == "stayed"
    assert theirs.chain[0] == "gpt-mini" and theirs.affinity is None


def test_a_session_id_names_the_conversation_whatever_its_messages() -> None:
    assert session_of({}, {"metadata": {"conversation_id": "c-9"}}) == "c-9"
    assert session_of({"llmroute_session": "h"}, {"metadata": {"session_id": "b"}}) == "h"
    aff = stage()

    async def go() -> Plan:
        turn = Outcome("r", plan(("nano",), "simple"), model="nano", usage=Usage(3000, 50))
        aff.remember(chat(TURN1, llmroute_session="s-1"), "k", turn, ANSWER)
        await asyncio.sleep(0)
        other = chat([{"role": "user", "content": "a fresh turn"}], llmroute_session="s-1")
        return await aff.steer(plan(("gpt-mini",), "simple"), other, "k", {}, Usage(4000, 200))

    assert run(go()).chain[0] == "nano"


def test_the_session_header_lands_in_the_metadata_and_is_checked() -> None:
    req = with_headers(chat(TURN1), {"X-LLMRoute-Session": " conv-42 "})
    assert req.metadata["llmroute_session"] == "conv-42"
    with pytest.raises(InvalidRequestError) as err:
        with_headers(chat(TURN1), {SESSION_HEADER: "x" * 257})
    assert err.value.param == SESSION_HEADER and err.value.status == 400


def test_an_expired_cache_routes_as_the_router_said() -> None:
    now = [1000.0]
    cfg = AffinityConfig(enabled=True, ttl_s=300)
    store = MemoryAffinity(cfg.ttl_s, cfg.max_entries, clock=lambda: now[0])
    aff = Affinity(cfg, CATALOG, LADDER, store, lambda m: True, clock=lambda: now[0])

    async def go() -> tuple[Plan, Plan]:
        turn = Outcome("r", plan(("nano",), "simple"), model="nano", usage=Usage(3000, 50))
        aff.remember(chat(TURN1), "k", turn, ANSWER)
        await asyncio.sleep(0)
        routed = plan(("gpt-mini",), "simple")
        now[0] = 1299.0
        fresh = await aff.steer(routed, chat(TURN2), "k", {}, Usage(4000, 200))
        now[0] = 1301.0
        return fresh, await aff.steer(routed, chat(TURN2), "k", {}, Usage(4000, 200))

    fresh, expired = run(go())
    assert fresh.chain[0] == "nano"
    assert expired.chain == ("gpt-mini",) and expired.affinity is None
    assert len(store) == 0  # the expired entry is gone


def test_short_prefixes_and_uncached_anthropic_calls_are_not_remembered() -> None:
    aff = stage(min_prefix_tokens=1024)

    turn3 = [*TURN2, ANSWER, {"role": "user", "content": "and then?"}]

    async def go() -> list[Plan]:
        short = Outcome("r", plan(("nano",), "simple"), model="nano", usage=Usage(1000, 50))
        aff.remember(chat(TURN1), "k", short, ANSWER)
        # haiku caches only marked prefixes: a call that wrote and read nothing left nothing warm
        unmarked = Outcome("r", plan(("claude-haiku",), "simple"), model="claude-haiku",
                           usage=Usage(5000, 50))
        aff.remember(chat(TURN2), "k", unmarked, ANSWER)
        await asyncio.sleep(0)
        # only the router's picks are remembered (nothing cached): the next turns are not steered
        return [await aff.steer(plan(("gpt-mini",), "simple"), chat(t), "k", {}, Usage(5000, 50))
                for t in (TURN2, turn3)]

    after_short, after_unmarked = run(go())
    assert after_short.affinity is None and after_unmarked.affinity is None
    assert cached_prefix(HAIKU, Usage(5000, 50, 3000, 1500)) == 4500
    assert cached_prefix(NANO, Usage(5000, 50, 3000)) == 5000


def test_the_store_is_a_bounded_lru() -> None:
    store = MemoryAffinity(300, 2, clock=lambda: 0.0)

    async def go() -> list[Warm | None]:
        for key in ("a", "b"):
            await store.put(key, (Warm(key, 0.0, 2000),))
        await store.get("a")  # a is now the most recent: b goes first
        await store.put("c", (Warm("c", 0.0, 2000),))
        return [await store.get(k) for k in ("a", "b", "c")]

    a, b, c = run(go())
    assert a and not b and c


def test_warm_round_trips_as_text_and_refuses_garbage() -> None:
    warm = Warm("openai/gpt-4o-mini", 1733450000.25, 3100, 2)
    assert Warm.loads(warm.dumps()) == warm
    assert Warm.loads("nonsense") is None
    assert Warm.loads("x\t1\tm") is None
    assert Warm.loads("x\t1\t2\tm") is None
    # the three-field form written before picks were counted still reads, with no picks
    assert Warm.loads("3100\t7.000\topenai/gpt-4o-mini") == Warm("openai/gpt-4o-mini", 7.0, 3100)
    both = (warm, Warm("b", 1.0, 2))
    assert loads_all(dumps_all(both)) == both
    assert loads_all("garbage\n" + warm.dumps()) == (warm,)


def test_a_conversation_keeps_its_recent_models_newest_first() -> None:
    a, b, c = Warm("a", 1, 2000), Warm("b", 2, 2000), Warm("c", 3, 2000)
    assert merged(c, (b, a)) == (c, b, a)
    assert merged(Warm("a", 4, 3000), (b, a)) == (Warm("a", 4, 3000), b)  # each model once
    assert merged(None, (b, a)) == (b, a)
    assert len(merged(c, tuple(Warm(str(i), i, 2000) for i in range(9)))) == 4


def test_the_switch_reads_what_the_choices_own_cache_still_holds() -> None:
    # warm on gpt-mini (3,000) but nano still holds 2,500 tokens from two turns ago:
    # stay: 3000*0.1 + 1000*0.4 + 200*1.6 = 1020 -> $0.00102
    # switch to nano: 2500*0.025 + 1500*0.1 + 200*0.4 = 62.5 + 150 + 80 = 292.5 -> $0.0002925
    weighed = weigh(Warm("gpt-mini", 0, 3000), MINI41, NANO, "simple", LADDER, Usage(4000, 200),
                    chosen_cached=2500)
    assert not weighed.stay and weighed.switch_usd == Decimal("0.0002925")
    out = stage().decide(plan(("nano",), "simple"), (Warm("gpt-mini", 990, 3000),
                                                     Warm("nano", 960, 2500)), {}, Usage(4000, 0))
    assert out.chain == ("nano",) and out.affinity == "switched"


def test_a_turn_too_short_to_cache_keeps_the_earlier_warm_models() -> None:
    aff = stage(min_prefix_tokens=1024)

    async def go() -> Plan:
        long_turn = Outcome("r", plan(("nano",), "simple"), model="nano", usage=Usage(3000, 5))
        aff.remember(chat(TURN1, llmroute_session="s"), "k", long_turn, ANSWER)
        await asyncio.sleep(0)
        short = Outcome("r", plan(("gpt-mini",), "simple"), model="gpt-mini", usage=Usage(900, 5))
        aff.remember(chat(TURN2, llmroute_session="s"), "k", short, ANSWER)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return await aff.steer(plan(("gpt-mini",), "simple"), chat(TURN2, llmroute_session="s"),
                               "k", {}, Usage(4000, 200))

    assert run(go()).chain[0] == "nano"


def test_disabled_affinity_changes_nothing() -> None:
    cfg = AffinityConfig(enabled=False)
    aff = Affinity(cfg, CATALOG, LADDER, MemoryAffinity(300, 10), lambda m: True)
    routed = plan(("gpt-mini",), "simple")
    assert run(aff.steer(routed, chat(TURN2), "k", {}, Usage(4000, 200))) is routed


def test_one_pass_gives_both_keys_even_when_the_first_message_is_an_answer() -> None:
    opened = [{"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "hi"}]
    earlier, record = answered_keys("k", opened, ANSWER)
    assert earlier == prefix_key("k", opened)
    assert record == prefix_key("k", [*opened, ANSWER, {"role": "user", "content": "next"}])
    assert answered_keys("k", TURN1, ANSWER) == (None, prefix_key("k", TURN2))


def test_redis_keeps_a_conversation_for_the_ttl_and_ignores_garbage() -> None:
    from llmroute.cache.affinity_store import RedisAffinity
    from llmroute.testing.redis_tools import TEST_REDIS_URL, drop_prefix, redis_unreachable

    if (why := redis_unreachable()) is not None:
        pytest.skip(why)
    prefix = f"llmroute-aff-unit-{id(object())}:"
    warmth = (Warm("nano", 1000.0, 3000), Warm("big", 990.0, 2500))

    async def go() -> tuple[Any, ...]:
        store = RedisAffinity(TEST_REDIS_URL, prefix=prefix, ttl_s=0.3, timeout_s=0.5)
        try:
            await store.put("k", warmth)
            got = await store.get("k")
            await store._redis.set(f"{prefix}aff:bad", "not a record")
            bad = await store.get("bad")
            await asyncio.sleep(0.5)
            return got, bad, await store.get("k")
        finally:
            await store.aclose()

    try:
        got, bad, expired = run(go())
    finally:
        drop_prefix(prefix)
    assert got == warmth and bad == () and expired == ()

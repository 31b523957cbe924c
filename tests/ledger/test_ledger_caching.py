"""Caching in the ledger's numbers (issue 15), on SQLite and PostgreSQL: the response cache's
hits, semantic hits, misses and bypasses, the prompt cache's tokens and both savings, worked by
hand on `helpers.hand_worked_caching`; the rollups, `Store.aggregate` and the reference
(`aggregate_entries`) agree on every number, and the savings from routing leave the cache's hits
out."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from helpers import REPORT_BASE, hand_worked_caching, report_entry
from llmroute.ledger.aggregates import WindowAggregate
from llmroute.ledger.store import Store
from llmroute.reports.aggregate import Summary, aggregate_entries, report_from
from llmroute.reports.cache_hits import hit_dict, semantic_hits

D = Decimal


def _same_numbers(found: WindowAggregate, expected: WindowAggregate) -> None:
    """Equal tallies and model mixes, group by group (the rollups' percentiles are within 1 %)."""
    assert [g.label for g in found.groups] == [g.label for g in expected.groups]
    for mine, theirs in zip((found.total, *found.groups), (expected.total, *expected.groups),
                            strict=True):
        assert (mine.label, mine.tally, mine.models) == (theirs.label, theirs.tally, theirs.models)


async def _three_ways(store: Store, by: str) -> WindowAggregate:
    entries = hand_worked_caching()
    exact = await store.aggregate(by)
    rolled = (await store.rollups(by)).aggregate()
    reference = aggregate_entries(entries, by)
    _same_numbers(exact, reference)
    _same_numbers(rolled, reference)
    assert exact == reference  # percentiles too: the raw window is exact
    return exact


def _caching(s: Summary) -> tuple[object, ...]:
    return (s.cache_hits, s.cache_semantic_hits, s.cache_misses, s.cache_bypasses,
            s.cached_tokens, s.cache_write_tokens, s.cache_saved_usd, s.prompt_cache_saved_usd)


@pytest.mark.asyncio
async def test_the_caching_numbers_worked_by_hand(store: Store) -> None:
    await store.write(hand_worked_caching())
    total = report_from(await _three_ways(store, "model")).total
    # hits: r2; semantic: r3; misses: r1, r4, r7; bypassed: r5; r6 had the cache off
    # cached (read) tokens 1000 (r1) + 512 (r5); written 2048 (r4)
    # response cache saved 0.10 (r2) + 0.90 (r3); prompt caching 0.0009 - 0.000768 + 0.000384
    assert _caching(total) == (1, 1, 3, 1, 1512, 2048, D("1.00"), D("0.000516"))
    # lookups 1 + 1 + 3 = 5 (bypasses are not lookups): 2/5 hit, 1/5 exact, 1/5 semantic
    assert total.cache_lookups == 5
    assert (total.cache_hit_rate, total.cache_exact_hit_rate, total.cache_semantic_hit_rate) == (
        0.4, 0.2, 0.2)
    assert total.caching_savings_usd == D("1.000516")
    # routing: compared r1, r4, r5 (r2, r3 were served by the cache, r6 has no baseline, r7 no
    # cost): baseline 1.00 + 0.90 + 1.00 = 2.90, cost 0.10 + 0.90 + 0.20 = 1.20 → 1.70 saved
    assert (total.compared, total.compared_cost_usd, total.baseline_cost_usd) == (3, D("1.20"), D("2.90"))
    assert total.savings_usd == D("1.70") and total.savings_pct == D("58.62")
    # every request's cost still counts: 0.10 + 0 + 0 + 0.90 + 0.20 + 0.05; r7 has no cost, but
    # it failed without a paid call: it cost nothing, it is not unpriced (issue 16)
    assert (total.cost_usd, total.priced, total.unpriced) == (D("1.25"), 6, 0)


@pytest.mark.asyncio
async def test_per_model_and_per_policy(store: Store) -> None:
    await store.write(hand_worked_caching())
    small, big, none = report_from(await _three_ways(store, "model")).groups
    assert (small.label, big.label, none.label) == ("m/small", "m/big", "(none)")
    # m/small r1, r2, r5, r6: hit r2, miss r1, bypass r5; saved 0.10, 0.0009 + 0.000384
    assert _caching(small) == (1, 0, 1, 1, 1512, 0, D("0.10"), D("0.001284"))
    assert (small.cache_hit_rate, small.savings_usd) == (0.5, D("1.70"))  # r1 0.90 + r5 0.80
    # m/big r3, r4: semantic r3, miss r4 (2048 written, a premium of 0.000768)
    assert _caching(big) == (0, 1, 1, 0, 0, 2048, D("0.90"), D("-0.000768"))
    assert (big.cache_semantic_hit_rate, big.compared, big.savings_usd) == (0.5, 1, D("0.00"))
    assert _caching(none) == (0, 0, 1, 0, 0, 0, D("0"), D("0")) and none.cache_hit_rate == 0.0
    cheap, best, no_policy = report_from(await _three_ways(store, "policy")).groups
    assert (cheap.label, best.label, no_policy.label) == ("p-cheap", "p-best", "(none)")
    assert _caching(cheap) == _caching(small) and _caching(best) == _caching(big)
    day = report_from(await _three_ways(store, "day"))
    assert [g.label for g in day.groups] == [REPORT_BASE.date().isoformat()]


@pytest.mark.asyncio
async def test_a_window_without_caching(store: Store) -> None:
    entries = [e for e in hand_worked_caching() if e.request_id == "r6"]
    await store.write(entries)
    total = report_from(await store.aggregate("model")).total
    assert not total.caching_used and total.cache_hit_rate is None
    assert _caching(total) == (0, 0, 0, 0, 0, 0, D("0"), D("0"))


@pytest.mark.asyncio
async def test_the_semantic_hits_to_judge(store: Store) -> None:
    extra = [report_entry(8, 6, cache="semantic", cost_usd=D("0"), cache_similarity=0.91,
                          cached_from="r1", prompt_text="what's 2 + 2", response_text="4"),
             report_entry(9, 7, cache="semantic", cost_usd=D("0"), cache_similarity=0.9,
                          cached_from="pruned-long-ago"),  # no text stored, the source gone
             report_entry(10, 8, cache="hit", cost_usd=D("0"), cached_from="r1")]  # exact: not listed
    await store.write(hand_worked_caching() + extra)
    hits = await semantic_hits(store, None, None, batch_size=1)
    assert [h.request_id for h in hits] == ["r3", "r8", "r9"]  # oldest first, across pages
    r3, r8, r9 = hits
    assert (r3.ts, r3.similarity, r3.model, r3.cached_from) == (
        REPORT_BASE + timedelta(hours=2), 0.97, "m/big", "r4")
    assert (r3.prompt, r3.cached_prompt, r3.answer) == (
        "Summarise the treaty of Rome, briefly", "Summarise the treaty of Rome", "The treaty...")
    assert (r8.prompt, r8.cached_prompt, r8.answer) == ("what's 2 + 2", "What is 2+2?", "4")
    assert (r9.prompt, r9.cached_prompt, r9.answer, r9.cached_from) == (
        None, None, None, "pruned-long-ago")
    assert [h.request_id for h in await semantic_hits(store, None, None, limit=2)] == ["r3", "r8"]
    later = await semantic_hits(store, REPORT_BASE + timedelta(hours=5), None)
    assert [h.request_id for h in later] == ["r8", "r9"]
    assert hit_dict(r3) == {
        "request_id": "r3", "ts": "2025-01-01T14:00:00+00:00", "similarity": 0.97,
        "model": "m/big", "key": "team-b", "prompt": "Summarise the treaty of Rome, briefly",
        "cached_from": "r4", "cached_prompt": "Summarise the treaty of Rome",
        "answer": "The treaty..."}
    with pytest.raises(ValueError, match="limit"):
        await semantic_hits(store, None, None, limit=0)
    # Store.iterate(cache=) filters in the database: only the states asked for come back
    states = [e.cache async for batch in store.iterate(cache=("hit", "bypass"), batch_size=2)
              for e in batch]
    assert states == ["hit", "bypass", "hit"]
    assert [b async for b in store.iterate(cache=())] == []

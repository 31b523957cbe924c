"""The rollup delta taken straight from the entries (issue 17, cpu17b): `delta_of_entries` and the
one-pass `numbers_of` give exactly what the earlier `delta_of` over `fact_of`'s facts gave (kept
here, verbatim, as the reference): the same keys in the same order, the same tallies, moments and
histograms, the money with the same digits."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_factories import full_entry, make_entry

from llmroute.ledger import AttemptRecord, LedgerEntry
from llmroute.ledger.rollup_delta import delta_of, delta_of_entries, numbers_of
from llmroute.ledger.rollups import (
    ALL,
    EARLIEST,
    Delta,
    Fact,
    LatencyKey,
    RollupKey,
    _add_tally,
    _baseline,
    fact_of,
    floor_to,
    moments_many,
    tally_many,
)
from llmroute.ledger.sketch import Histogram, bin_of


def reference_delta_of(facts: Iterable[Fact]) -> Delta:
    """`rollups.delta_of` as it was before cpu17b (tally_many, moments_many, bin_of per fact)."""
    delta = Delta({}, {})
    groups: dict[tuple[datetime, str, str, str, str, str, str], list[Fact]] = {}
    hours: dict[tuple[int, int], datetime] = {}
    for fact in facts:
        since = fact.ts - EARLIEST
        slot = (since.days, since.seconds // 3600)
        hour = hours.get(slot)
        if hour is None:
            hour = hours[slot] = floor_to(fact.ts, "hour")
        group = (hour, fact.model, fact.tier, fact.policy, fact.key, fact.arm, _baseline(fact))
        groups.setdefault(group, []).append(fact)
    for (hour, model, tier, policy, key, arm, baseline), members in groups.items():
        tally, moments = tally_many(members), moments_many(members)
        counts: Histogram = {}
        for fact in members:
            index = bin_of(fact.latency_s)
            counts[index] = counts.get(index, 0) + 1
        values: dict[str, str] = {ALL: "", "model": model, "tier": tier, "policy": policy,
                                  "key": key, "arm": arm}
        for grain, start in (("hour", hour), ("day", floor_to(hour, "day"))):
            _add_tally(delta, RollupKey(grain, start, model, tier, policy, key, arm, baseline),
                       tally, moments)
            for dim, value in values.items():
                hist = delta.latencies.setdefault(LatencyKey(grain, start, dim, value), {})
                for index, count in counts.items():
                    hist[index] = hist.get(index, 0) + count
    return delta


ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11))]
START = datetime(2025, 1, 1, 22, 30, tzinfo=UTC)  # a batch across hours and a day
names = st.sampled_from([None, "", "a", "b"])
money = st.none() | st.sampled_from([Decimal("0"), Decimal("-0.00"), Decimal("1E-30"),
                                     Decimal("0.0000042"), Decimal("-0.00000000075"),
                                     Decimal("123.4500")]) | st.decimals(
    min_value=-10, max_value=10, allow_nan=False, allow_infinity=False, places=12)
attempt = st.builds(AttemptRecord, st.sampled_from(["a", "b"]), st.sampled_from([None, "server"]),
                    skipped=st.booleans(), router=st.booleans())


@st.composite
def entries(draw: st.DrawFn) -> LedgerEntry:
    values: dict[str, Any] = {
        "ts": (START + timedelta(seconds=draw(st.integers(0, 3 * 3600)),
                                 microseconds=draw(st.integers(0, 999_999)))
               ).astimezone(draw(st.sampled_from(ZONES))),
        "status": draw(st.sampled_from(["ok", "error"])),
        "model": draw(names), "tier": draw(names), "policy": draw(names), "key_name": draw(names),
        "experiment_arm": draw(names), "baseline_model": draw(names),
        "attempts": tuple(draw(st.lists(attempt, max_size=3))),
        "latency_s": draw(st.sampled_from([0.0, 1e-7, 1e-6, 0.3, 30.75, float("nan")])
                          | st.floats(0, 100)),
        "input_tokens": draw(st.none() | st.integers(0, 10)),
        "cached_tokens": draw(st.none() | st.integers(0, 10)),
        "cache_write_tokens": draw(st.none() | st.integers(0, 10)),
        "cache": draw(st.sampled_from([None, "hit", "semantic", "miss", "bypass"])),
        "user_rating": draw(st.none() | st.integers(1, 5)),
        "task_success": draw(st.sampled_from([None, True, False])),
    }
    for name in ("cost_usd", "baseline_cost_usd", "routing_cost_usd", "prompt_cache_saved_usd",
                 "cache_saved_usd"):
        values[name] = draw(money)
    return make_entry(draw(st.integers(0, 10**6)), **values)


def _same(new: Delta, old: Delta) -> None:
    assert new == old
    assert repr(new) == repr(old)  # the keys' order and the money's digits too


@settings(max_examples=300, deadline=None)
@given(st.lists(entries(), max_size=40))
def test_delta_of_entries_is_the_facts_delta(batch: list[LedgerEntry]) -> None:
    expected = reference_delta_of([fact_of(entry) for entry in batch])
    _same(delta_of_entries(batch), expected)
    _same(delta_of([fact_of(entry) for entry in batch]), expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(entries(), min_size=1, max_size=20))
def test_numbers_of_is_tally_moments_and_histogram(batch: list[LedgerEntry]) -> None:
    facts = [fact_of(entry) for entry in batch]
    counts: Histogram = {}
    for fact in facts:
        counts[bin_of(fact.latency_s)] = counts.get(bin_of(fact.latency_s), 0) + 1
    expected = (tally_many(facts), moments_many(facts), counts)
    for members in (facts, batch):
        got = numbers_of(members)
        assert got == expected
        assert repr(got) == repr(expected)


def test_the_gateway_entries_and_a_full_one() -> None:
    batch = [make_entry(n) for n in range(5)] + [full_entry(7), make_entry(8, cost_usd=None)]
    _same(delta_of_entries(batch), reference_delta_of([fact_of(e) for e in batch]))
    assert delta_of_entries([]) == Delta({}, {})

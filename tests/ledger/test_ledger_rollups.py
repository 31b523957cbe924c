"""Rollups (`Store.rollups`) against the reference over the raw entries, on SQLite and PostgreSQL:
tallies exactly equal, percentiles within the sketch's 1 %; kept right through replayed batches,
late feedback (it moves the numbers of the request's own hour and day), a rebuild, and the
migration that rolls up a ledger written before rollups existed."""

from __future__ import annotations

import dataclasses
import math
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from ledger_factories import forget_counts_statements, make_entry
from test_ledger_aggregate import BASE, random_ledger

from helpers import hand_worked_report
from llmroute.ledger import LedgerEntry, SQLiteStore, Store
from llmroute.ledger.aggregates import NONE_LABEL, GroupAggregate, WindowAggregate
from llmroute.ledger.migrations import CACHE_MIGRATION, ROUTING_COST_MIGRATION
from llmroute.ledger.rollup_cover import cover
from llmroute.ledger.rollup_read import RollupWindow
from llmroute.ledger.rollup_sql import ROLLUP_GROUP_KEYS
from llmroute.ledger.rollups import EARLIEST
from llmroute.ledger.sketch import ALPHA, MIN_LATENCY_S, bin_of, nearest_rank, value_of
from llmroute.reports.aggregate import aggregate_entries
from llmroute.reports.aggregate import nearest_rank as exact_nearest_rank

HOUR = timedelta(hours=1)


def _label(entry: LedgerEntry, by: str) -> str:
    value = {"model": entry.model, "tier": entry.tier, "policy": entry.policy,
             "key": entry.key_name, "arm": entry.experiment_arm,
             "day": entry.ts.date().isoformat()}[by]
    return value or NONE_LABEL


def reference(entries: list[LedgerEntry], by: str) -> WindowAggregate:
    """`aggregate_entries`, with the arm grouping the reference has no key for."""
    if by != "arm":
        return aggregate_entries(entries, by)
    relabelled = [dataclasses.replace(e, model=e.model, policy=_label(e, "arm")) for e in entries]
    found = aggregate_entries(relabelled, "policy")
    return WindowAggregate("arm", found.total, found.groups, found.baseline_models)


def close(found: float | None, exact: float | None) -> bool:
    if exact is None or found is None:
        return found is exact
    if exact < MIN_LATENCY_S:
        return found == 0.0
    return abs(found - exact) <= ALPHA * exact * (1 + 1e-9)


def assert_group(found: GroupAggregate, expected: GroupAggregate) -> None:
    assert (found.label, found.tally, found.models) == (expected.label, expected.tally, expected.models)
    assert close(found.latency_p50_s, expected.latency_p50_s), (found, expected)
    assert close(found.latency_p95_s, expected.latency_p95_s), (found, expected)


async def assert_rollups_match(store: Store, entries: list[LedgerEntry], by: str,
                               since: datetime | None = None,
                               until: datetime | None = None) -> RollupWindow:
    window = await store.rollups(by, since, until)
    inside = [e for e in entries if (since is None or e.ts >= since) and (until is None or e.ts < until)]
    found, expected = window.aggregate(), reference(inside, by)
    assert found.baseline_models == expected.baseline_models
    assert [g.label for g in found.groups] == [g.label for g in expected.groups]
    assert_group(found.total, expected.total)
    for mine, theirs in zip(found.groups, expected.groups, strict=True):
        assert_group(mine, theirs)
    return window


def _windows(rng: random.Random) -> list[tuple[datetime | None, datetime | None]]:
    start = BASE + timedelta(seconds=rng.randrange(0, 2 * 86400))
    aligned = BASE.replace(minute=0, second=0)
    return [(None, None), (start, start + timedelta(hours=rng.randint(1, 40))), (start, None),
            (None, start), (aligned, aligned + 2 * HOUR), (start, start + timedelta(minutes=7)),
            (aligned - timedelta(days=1), aligned + timedelta(days=2))]


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(3))
async def test_random_ledgers_roll_up_to_the_reference(store: Store, seed: int) -> None:
    rows = [dataclasses.replace(e, experiment_arm=random.Random(i).choice([None, "exp:a", "exp:b"]))
            for i, e in enumerate(random_ledger(seed, 300))]
    for start in range(0, len(rows), 70):  # several batches, as the writer sends them
        await store.write(rows[start:start + 70])
    rng = random.Random(2000 + seed)
    for by in ROLLUP_GROUP_KEYS:
        for since, until in _windows(rng):
            await assert_rollups_match(store, rows, by, since, until)


@pytest.mark.asyncio
async def test_hand_worked_fixture_rolls_up(store: Store) -> None:
    await store.write(hand_worked_report())
    for by in ROLLUP_GROUP_KEYS:
        await assert_rollups_match(store, hand_worked_report(), by)


@pytest.mark.asyncio
async def test_a_replayed_batch_is_rolled_up_once(store: Store) -> None:
    rows = [make_entry(i, ts=BASE + timedelta(minutes=17 * i)) for i in range(40)]
    await store.write(rows[:30])
    await store.write(rows[20:])  # ten already stored
    await store.write([rows[5], rows[5]])
    twice = make_entry(99, ts=BASE)
    await store.write([twice, dataclasses.replace(twice, cost_usd=Decimal("9"))])  # the first one wins
    rows.append(twice)
    window = await assert_rollups_match(store, rows, "model")
    assert window.total.tally.requests == 41 == await store.count()


@pytest.mark.asyncio
async def test_late_feedback_moves_the_numbers_of_its_day(store: Store) -> None:
    day1 = [make_entry(i, ts=BASE + timedelta(minutes=i), user_rating=None) for i in range(10)]
    day2 = [make_entry(100 + i, ts=BASE + timedelta(days=1, minutes=i)) for i in range(10)]
    await store.write(day1 + day2)
    target = day1[3]
    # a day later: a rating and an outcome for a request of the first day
    assert await store.feedback(target.request_id, rating=2, success=False, at=BASE + timedelta(days=1))
    assert await store.feedback(target.request_id, rating=2)  # the same again moves nothing
    assert await store.feedback(target.request_id, comment="noted")  # nor does a comment
    assert not await store.feedback(target.request_id, rating=5, owner="someone-else")
    assert not await store.feedback("no-such-request", rating=5)
    changed = [dataclasses.replace(e, user_rating=2, task_success=False) if e is target else e for e in day1]
    by_day = await assert_rollups_match(store, changed + day2, "day")
    first = by_day.groups[0]
    assert (first.label, first.tally.rated, first.tally.rating_points, first.tally.judged) == \
        (BASE.date().isoformat(), 1, 2, 1)
    assert by_day.groups[1].tally.rated == 0
    # a changed rating takes the old one away
    assert await store.feedback(target.request_id, rating=5, success=True)
    changed = [dataclasses.replace(e, user_rating=5, task_success=True) if e is target else e for e in day1]
    window = await assert_rollups_match(store, changed + day2, "day", BASE, BASE + timedelta(days=2))
    assert (window.total.tally.rating_points, window.total.tally.successes) == (5, 1)
    assert window.total.moments.rating_sq == 25 and window.total.moments.pair_n == 1
    # the hour's rollup (a window inside the first day) moved too
    await assert_rollups_match(store, changed, "model", BASE, BASE + HOUR)


@pytest.mark.asyncio
async def test_rebuild_gives_the_same_rollups(store: Store) -> None:
    rows = random_ledger(7, 200)
    await store.write(rows)
    await store.feedback(rows[0].request_id, rating=1, success=True)
    incremental = {by: await store.rollups(by) for by in ROLLUP_GROUP_KEYS}
    await store.rebuild_rollups()
    for by in ROLLUP_GROUP_KEYS:
        rebuilt = await store.rollups(by)
        assert rebuilt.aggregate() == incremental[by].aggregate()
        assert rebuilt.total.latency == incremental[by].total.latency
        for mine, theirs in zip(rebuilt.groups, incremental[by].groups, strict=True):
            assert mine.moments == pytest.approx(theirs.moments)


@pytest.mark.asyncio
async def test_the_migration_rolls_up_a_ledger_written_before_it(stores: Any) -> None:
    store = stores.new()
    await store.migrate()
    rows = [dataclasses.replace(r, routing_cost_usd=None, cache=None, cache_saved_usd=None,
                                cache_write_tokens=None, prompt_cache_saved_usd=None)
            for r in random_ledger(3, 150)]  # written before 0007 and 0008 too (cached tokens kept)
    assert sum(r.cached_tokens or 0 for r in rows) > 0
    await store.write(rows)
    await _forget_rollups(store)
    applied = await store.migrate()
    assert {"0004_rollups", ROUTING_COST_MIGRATION, CACHE_MIGRATION} <= set(applied)
    for by in ("model", "day"):
        await assert_rollups_match(store, rows, by)
        await assert_rollups_match(store, rows, by, BASE + timedelta(minutes=90), BASE + timedelta(hours=30))


async def _forget_rollups(store: Any) -> None:
    """Back to the schema before rollups (their tables dropped, the migration unrecorded), and so
    before 0007_routing_cost, 0008_cache and 0009_counts (their columns and indexes dropped; the
    rollups are rebuilt once every migration has run)."""
    cache_columns = ("cache_write_tokens", "prompt_cache_saved_usd", "cache", "cache_saved_usd",
                     "cached_from", "cache_similarity")
    statements = ["DROP TABLE llmroute_rollups", "DROP TABLE llmroute_rollup_latency",
                  *forget_counts_statements(),
                  "ALTER TABLE llmroute_requests DROP COLUMN routing_cost_usd",
                  *(f"ALTER TABLE llmroute_requests DROP COLUMN {c}" for c in cache_columns),
                  "DELETE FROM llmroute_migrations WHERE name IN "
                  f"('0004_rollups', '{ROUTING_COST_MIGRATION}', '{CACHE_MIGRATION}')"]
    if isinstance(store, SQLiteStore):
        await store.run(lambda conn: [conn.execute(s) for s in statements])
    else:
        async with store.connection() as conn:
            for statement in statements:
                await conn.execute(statement)


def test_cover_splits_windows_by_grain() -> None:
    day = BASE.replace(hour=0, minute=0, second=0)  # midnight of day D

    def at(days: int, hours: int, minutes: int = 0) -> datetime:
        return day + timedelta(days=days, hours=hours, minutes=minutes)

    # edges holding at most half their hour are read raw
    window = cover(at(0, 22, 40), at(2, 1, 20))
    assert window.raw == ((at(0, 22, 40), at(0, 23)), (at(2, 1), at(2, 1, 20)))
    assert window.hours == ((at(0, 23), at(1, 0)), (at(2, 0), at(2, 1)))
    assert window.days == ((at(1, 0), at(2, 0)),) and window.minus == ()
    # else the whole hour from its rollup, less the raw rows outside the window (when they are all
    # there: retention has deleted nothing after `raw_from`)
    window = cover(at(0, 22, 30), at(2, 1, 40), raw_from=EARLIEST, hours_from=EARLIEST)
    assert window.raw == () and window.minus == ((at(0, 22), at(0, 22, 30)), (at(2, 1, 40), at(2, 2)))
    assert window.hours == ((at(0, 22), at(1, 0)), (at(2, 0), at(2, 2)))
    assert window.days == ((at(1, 0), at(2, 0)),)
    # a partial day the window holds most of: its day rollup less the hours outside
    window = cover(at(0, 2, 10), at(2, 20, 50), raw_from=EARLIEST, hours_from=EARLIEST)
    assert window.minus == ((at(0, 2), at(0, 2, 10)), (at(2, 20, 50), at(2, 21)))
    assert (window.raw, window.hours, window.days) == ((), (), ((at(0, 0), at(3, 0)),))
    assert window.hours_minus == ((at(0, 0), at(0, 2)), (at(2, 21), at(3, 0)))
    within = cover(at(0, 3), at(0, 20), hours_from=EARLIEST)
    assert (within.raw, within.minus, within.hours, within.days) == ((), (), (), ((at(0, 0), at(1, 0)),))
    assert within.hours_minus == ((at(0, 0), at(0, 3)), (at(0, 20), at(1, 0)))
    # finer rows deleted by retention: never taken away, the edge read from what remains
    kept = cover(at(0, 22, 30), at(2, 1, 40), raw_from=at(2, 0), hours_from=at(0, 1))
    assert kept.raw == ((at(0, 22, 30), at(0, 23)),) and kept.minus == ((at(2, 1, 40), at(2, 2)),)
    pruned = cover(at(0, 3), at(0, 20), hours_from=at(0, 1))
    assert (pruned.hours, pruned.days, pruned.hours_minus) == (((at(0, 3), at(0, 20)),), (), ())
    inside = cover(at(0, 22, 30), at(0, 22, 40))
    assert (inside.raw, inside.hours, inside.days) == (((at(0, 22, 30), at(0, 22, 40)),), (), ())
    aligned = cover(at(0, 22), at(1, 3))
    assert (aligned.raw, aligned.hours, aligned.days) == (
        (), ((at(0, 22), at(1, 0)), (at(1, 0), at(1, 3))), ())
    assert cover(at(0, 1), at(0, 1)) == cover(at(0, 2), at(0, 1)) == type(window)((), (), ())
    whole = cover(None, None)
    assert (whole.raw, whole.hours, len(whole.days)) == ((), (), 1)


def test_cover_knows_nothing_is_stored_after_the_newest_row() -> None:
    """A window ending now: the current hour and day are their rollups less nothing (the rows
    after the newest one do not exist), however little of them has passed."""
    day = BASE.replace(hour=0, minute=0, second=0)

    def at(days: int, hours: int, minutes: int = 0) -> datetime:
        return day + timedelta(days=days, hours=hours, minutes=minutes)

    everything = {"raw_from": EARLIEST, "hours_from": EARLIEST}
    # 24 hours ending 10 minutes into the hour: no raw rows of the current hour are read
    window = cover(at(0, 19, 10), at(1, 19, 10), newest=at(1, 19, 9), **everything)
    assert window.raw == () and window.minus == ((at(0, 19), at(0, 19, 10)), (at(1, 19, 10), at(1, 20)))
    assert window.hours == ((at(0, 19), at(1, 0)),) and window.days == ((at(1, 0), at(2, 0)),)
    assert window.hours_minus == ((at(1, 20), at(2, 0)),)
    # without knowing the newest row, the first ten minutes are read raw
    assert cover(at(0, 19, 10), at(1, 19, 10), **everything).raw == ((at(1, 19), at(1, 19, 10)),)
    # one hour across an hour boundary, and a window inside the current hour
    hour = cover(at(1, 18, 10), at(1, 19, 10), newest=at(1, 19, 9), **everything)
    assert (hour.raw, hour.hours) == ((), ((at(1, 18), at(1, 20)),))
    assert hour.minus == ((at(1, 18), at(1, 18, 10)), (at(1, 19, 10), at(1, 20)))
    inside = cover(at(1, 19, 5), at(1, 19, 40), newest=at(1, 19, 39), **everything)
    assert (inside.raw, inside.hours) == ((), ((at(1, 19), at(1, 20)),))
    assert inside.minus == ((at(1, 19), at(1, 19, 5)), (at(1, 19, 40), at(1, 20)))
    # but not where retention deleted raw rows of that hour, nor when the rows after are real
    assert cover(at(1, 19, 5), at(1, 19, 40), newest=at(1, 19, 39), raw_from=at(1, 19, 1)).raw == (
        (at(1, 19, 5), at(1, 19, 40)),)
    assert cover(at(1, 19, 5), at(1, 19, 20), newest=at(1, 23), **everything).raw == (
        (at(1, 19, 5), at(1, 19, 20)),)
    assert cover(at(1, 19, 5), at(1, 19, 20), newest=at(1, 19, 19), **everything).raw == ()


@pytest.mark.asyncio
async def test_windows_ending_at_or_after_the_newest_row_are_exact(store: Store) -> None:
    rows = random_ledger(17, 400)
    await store.write(rows)
    newest = max(e.ts for e in rows)
    for back in (timedelta(minutes=7), timedelta(hours=1), timedelta(hours=24), timedelta(hours=50)):
        for until in (newest, newest + timedelta(microseconds=1), newest + timedelta(minutes=3)):
            for by in ("model", "arm"):
                await assert_rollups_match(store, rows, by, until - back, until)


def test_a_bin_value_is_within_one_percent() -> None:
    rng = random.Random(5)
    latencies = [MIN_LATENCY_S, 1e6, 1.0, *(10 ** rng.uniform(-6, 6) for _ in range(20_000))]
    for latency in latencies:
        assert abs(value_of(bin_of(latency)) - latency) <= ALPHA * latency * (1 + 1e-9), latency
    assert value_of(bin_of(0.0)) == value_of(bin_of(MIN_LATENCY_S / 2)) == 0.0


def test_histogram_percentiles_are_within_the_bound() -> None:
    rng = random.Random(6)
    for _ in range(500):
        values = [rng.choice([0.0, rng.lognormvariate(0, 1.5), rng.uniform(0, 600)])
                  for _ in range(rng.randint(1, 200))]
        hist: dict[int, int] = {}
        for value in values:
            hist[bin_of(value)] = hist.get(bin_of(value), 0) + 1
        for p in (1, 50, 95, 99, 100, rng.randint(1, 100)):
            assert close(nearest_rank(hist, p), exact_nearest_rank(values, p)), (values, p)
            assert not math.isnan(nearest_rank(hist, p) or 0.0)


@pytest.mark.asyncio
async def test_small_windows_are_exact_and_large_ones_read_rollups(store: Store) -> None:
    from llmroute.ledger.views import window_numbers

    rows = random_ledger(11, 120)
    await store.write(rows)
    small = await window_numbers(store, "model", None, None, exact_below=120)
    assert small.exact_percentiles and small.aggregate == aggregate_entries(rows, "model")
    large = await window_numbers(store, "model", None, None, exact_below=119)
    assert not large.exact_percentiles and large.percentiles_note == "within 1%"
    assert large.aggregate == (await store.rollups("model")).aggregate()
    assert large.aggregate.total.tally == small.aggregate.total.tally
    forced = await window_numbers(store, "model", None, None, exact=True, exact_below=0)
    assert forced.exact_percentiles and forced.aggregate == small.aggregate


@pytest.mark.asyncio
async def test_report_by_team_merges_each_keys_numbers(store: Store) -> None:
    from llmroute.ledger.views import window_numbers

    rows = random_ledger(13, 200)  # keys team-a, team-b and none
    await store.write(rows)
    teams = {"team-a": "search", "team-b": "search"}
    found = (await window_numbers(store, "team", None, None, teams=teams)).aggregate
    keyed = [dataclasses.replace(e, key_name="search" if e.key_name in teams else None) for e in rows]
    expected = aggregate_entries(keyed, "key")
    assert [g.label for g in found.groups] == [g.label for g in expected.groups] == ["(none)", "search"]
    for mine, theirs in zip(found.groups, expected.groups, strict=True):
        assert_group(mine, theirs)
    assert_group(found.total, expected.total)
    arms = await window_numbers(store, "arm", None, None)
    assert not arms.exact_percentiles and arms.aggregate.total.tally == expected.total.tally


@pytest.mark.asyncio
async def test_several_groupings_in_one_pass_equal_one_call_each(store: Store) -> None:
    rows = random_ledger(17, 250)
    await store.write(rows)
    since, until = BASE + timedelta(minutes=95), BASE + timedelta(hours=50, minutes=5)
    together = await store.rollups_by(ROLLUP_GROUP_KEYS, since, until)
    assert list(together) == list(ROLLUP_GROUP_KEYS)
    for by in ROLLUP_GROUP_KEYS:
        alone = await store.rollups(by, since, until)
        assert together[by].aggregate() == alone.aggregate()
        for mine, theirs in zip((together[by].total, *together[by].groups), (alone.total, *alone.groups),
                                strict=True):
            assert (mine.label, mine.tally, mine.latency, mine.models) == \
                (theirs.label, theirs.tally, theirs.latency, theirs.models)
            assert dataclasses.astuple(mine.moments) == pytest.approx(  # float sums: their order
                dataclasses.astuple(theirs.moments), rel=1e-12)
    for bad in ((), ("model", "model"), ("team",)):
        with pytest.raises(ValueError):
            await store.rollups_by(bad)
    with pytest.raises(ValueError):
        await store.rollups("model", datetime(2025, 1, 1))


def test_histograms_pack_and_merge_exactly() -> None:
    from llmroute.ledger.rollup_read import histogram_rows, merged_rows
    from llmroute.ledger.sketch import ZERO_BIN, pack, unpack

    hist = {ZERO_BIN: 3, -5: 1, 0: 2**40, 700: 7}
    assert unpack(pack(hist)) == hist and unpack(pack({1: 0})) == {} == unpack(None)
    rows = [("h1", "a", 1, 2), ("h1", "a", 5, 1), ("h1", "b", 1, 4), ("h2", "a", ZERO_BIN, 1)]
    assert [(a, b, unpack(blob)) for a, b, blob in histogram_rows(rows)] == [
        ("h1", "a", {1: 2, 5: 1}), ("h1", "b", {1: 4}), ("h2", "a", {ZERO_BIN: 1})]
    packed = [("model", "d1", "x", pack({1: 1, 2: 2})), ("model", "d1", "x", pack({2: 3, 9: 1})),
              ("model", "d2", "x", pack({4: 4}))]
    assert [(a, b, c, unpack(blob)) for a, b, c, blob in merged_rows(packed)] == [
        ("model", "d1", "x", {1: 1, 2: 5, 9: 1}), ("model", "d2", "x", {4: 4})]


@pytest.mark.asyncio
async def test_replicas_writing_at_once_keep_the_rollups_exact(stores: Any) -> None:
    import asyncio

    first = stores.new()
    await first.migrate()
    replicas = [first, *(stores.new() for _ in range(3))]
    rows = random_ledger(21, 480)  # the same hours and days for every replica
    batches = [rows[i:i + 20] for i in range(0, len(rows), 20)]

    async def replica(n: int) -> None:
        for batch in batches[n::len(replicas)]:
            await replicas[n].write(batch)
            await replicas[n].write(batch[:5])  # a replay, counted once

    await asyncio.gather(*(replica(n) for n in range(len(replicas))))
    for by in ("model", "day", "arm"):
        await assert_rollups_match(first, rows, by)

"""`Store.aggregate` against the reference (`reports.aggregate` over the same entries), on SQLite and
PostgreSQL: the hand-worked fixtures, seeded random ledgers, and the edge cases of exact money and
nearest-rank percentiles. Also `Store.query(experiments=...)`."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import pytest
from ledger_factories import make_entry

from helpers import REPORT_BASE, hand_worked_report, report_entry
from llmroute.ledger import LedgerEntry, SQLiteStore, Store, StoreError
from llmroute.ledger.aggregates import EXACT, GROUP_KEYS, TOTAL_LABEL, WindowAggregate, empty_group
from llmroute.reports.aggregate import aggregate_entries, build_report, report_from
from llmroute.reports.render import report_dict

BASE = REPORT_BASE
D = Decimal
entry = report_entry
hand_worked = hand_worked_report  # the six requests worked by hand in tests/reports


async def assert_matches(store: Store, entries: list[LedgerEntry], by: str,
                         since: datetime | None = None, until: datetime | None = None) -> WindowAggregate:
    """The store's numbers equal the reference's, and so do the reports' JSON (money as text, so
    a sum's exponent counts too: 0.30 is not 0.3)."""
    found = await store.aggregate(by, since, until)
    inside = [e for e in entries if (since is None or e.ts >= since) and (until is None or e.ts < until)]
    expected = aggregate_entries(inside, by)
    assert found == expected
    assert report_dict(report_from(found, "b/fallback"), {}) == report_dict(
        build_report(inside, by, "b/fallback"), {})
    return found


@pytest.mark.asyncio
@pytest.mark.parametrize("by", GROUP_KEYS)
async def test_hand_worked_fixture(store: Store, by: str) -> None:
    await store.write(hand_worked())
    await assert_matches(store, hand_worked(), by)


@pytest.mark.asyncio
async def test_hand_worked_numbers_come_from_the_database(store: Store) -> None:
    await store.write(hand_worked())
    report = report_from(await store.aggregate("model"))
    s = report.total
    # unpriced: r4 only (answered, cost unknown); the failure r5 made no paid call (issue 16)
    assert (s.requests, s.errors, s.judged, s.successes, s.priced, s.unpriced) == (6, 1, 4, 3, 4, 1)
    assert str(s.cost_usd) == "1.25" and (s.compared, s.baseline_cost_usd) == (3, D("2.90"))
    assert s.savings_pct == D("58.62") and (s.latency_p50_s, s.latency_p95_s) == (0.4, 5.0)
    assert s.mean_rating == 3.5 and s.cost_per_success_usd == D("0.60")
    assert s.cost_per_quality_point_usd == D("0.1090909090909090909090909091")
    assert s.model_mix == (("m/small", 3), ("m/big", 2), ("(none)", 1))
    assert [g.label for g in report.groups] == ["m/small", "m/big", "(none)"]
    assert report.baseline == "m/big"
    days = report_from(await store.aggregate("day"))
    assert [(g.label, g.requests, str(g.cost_usd)) for g in days.groups] == [
        ("2025-01-01", 2, "0.30"), ("2025-01-02", 4, "0.95")]


@pytest.mark.asyncio
async def test_cli_fixture_in_thousands(store: Store) -> None:
    """tests/cli/test_report_cli.py's ledger: $4,500 against $15,000, one failure, one unpriced."""
    big = {"model": "m/big", "tier": "complex", "key_name": "team-b", "baseline_model": "m/big"}
    rows = [entry(1, 0, cost_usd=D("1000"), baseline_cost_usd=D("5000"), baseline_model="m/big",
                  latency_s=0.2, user_rating=4, task_success=True),
            entry(2, 1, cost_usd=D("500"), baseline_cost_usd=D("5000"), baseline_model="m/big",
                  latency_s=0.4, user_rating=2, task_success=False),
            entry(3, 12.5, **big, cost_usd=D("3000"), baseline_cost_usd=D("5000"), latency_s=1.5,
                  user_rating=5, task_success=True),
            entry(4, 13, **big, latency_s=2.0),
            entry(5, 14, status="error", http_status=502, model=None, latency_s=5.0)]
    await store.write(rows)
    for by in GROUP_KEYS:
        await assert_matches(store, rows, by)
    total = report_from(await store.aggregate("model")).total
    assert (str(total.cost_usd), str(total.savings_usd), total.savings_pct) == ("4500", "10500", D("70.00"))


@pytest.mark.asyncio
@pytest.mark.parametrize("by", GROUP_KEYS)
async def test_empty_windows(store: Store, by: str) -> None:
    empty = WindowAggregate(by, empty_group(TOTAL_LABEL), (), ())
    assert await store.aggregate(by) == empty == aggregate_entries([], by)
    await store.write(hand_worked())
    assert await store.aggregate(by, BASE - timedelta(days=9), BASE - timedelta(days=8)) == empty
    assert await store.aggregate(by, BASE, BASE) == empty


@pytest.mark.asyncio
async def test_bad_grouping_and_naive_bounds_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot group by 'colour'"):
        await store.aggregate("colour")
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.aggregate("model", since=datetime(2025, 1, 1))


def _money(rng: random.Random) -> Decimal | None:
    """None a fifth of the time; else up to 20 decimals (0.00000001875 included), a few negative."""
    if rng.random() < 0.2:
        return None
    pick = rng.random()
    if pick < 0.1:
        return D("0.00000001875")
    if pick < 0.2:
        return D(rng.choice(["0", "0.0", "0.10", "4500", "0.0000225", "-0.5"]))
    return D(f"{rng.randrange(0, 10 ** rng.randint(1, 12))}E-{rng.randint(0, 20)}")


def random_ledger(seed: int, n: int) -> list[LedgerEntry]:
    """Entries over three UTC days (some a microsecond from midnight), with None and empty labels,
    unpriced and uncompared rows, sparse feedback, and latencies from a small set (many ties); a
    third with a routing cost (the LLM router's calls), drawn apart so the rest stays as it was;
    the caching fields drawn apart too (`_cache_fields`)."""
    rng = random.Random(seed)
    routing = random.Random(f"{seed}-routing")
    caching = random.Random(f"{seed}-cache")
    rows: list[LedgerEntry] = []
    for i in range(n):
        ts = BASE + timedelta(seconds=rng.randrange(0, 3 * 86400))
        if rng.random() < 0.05:
            ts = datetime(2025, 1, 2, tzinfo=UTC) - timedelta(microseconds=rng.choice([1, 0]))
        rows.append(make_entry(
            i, ts=ts, status=rng.choice(["ok", "ok", "ok", "error"]), http_status=200,
            model=rng.choice(["a/one", "b/two", "c/three", None, ""]),
            tier=rng.choice(["simple", "complex", None]), policy=rng.choice(["p1", "p2", ""]),
            key_name=rng.choice(["team-a", "team-b", None]),
            latency_s=rng.choice([0.1, 0.2, 0.25, 1.5, 3.0, 0.0]) * rng.choice([1, 1, 2]),
            cost_usd=_money(rng), baseline_cost_usd=_money(rng),
            baseline_model=rng.choice(["base/x", "base/y", "", None]),
            user_rating=rng.choice([None, None, 1, 3, 5]),
            task_success=rng.choice([None, None, True, False]),
            explored=rng.random() < 0.1,
            routing_cost_usd=_money(routing) if routing.random() < 0.3 else None,
            **_cache_fields(caching)))
    return rows


def _cache_fields(rng: random.Random) -> dict[str, Any]:
    """A response-cache state (None: the cache off) with its saving on hits, and prompt-cache
    tokens read and written with their saving (possibly negative), each sometimes missing."""
    state = rng.choice([None, None, "hit", "semantic", "miss", "bypass"])
    return {"cache": state,
            "cache_saved_usd": _money(rng) if state in ("hit", "semantic") else None,
            "cached_tokens": rng.choice([None, 0, 1024, 7]),
            "cache_write_tokens": rng.choice([None, None, 0, 2048]),
            "prompt_cache_saved_usd": _money(rng) if rng.random() < 0.5 else None}


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(4))
async def test_random_ledgers_equal_the_reference(store: Store, seed: int) -> None:
    rows = random_ledger(seed, 250)
    await store.write(rows)
    rng = random.Random(1000 + seed)
    for by in GROUP_KEYS:
        await assert_matches(store, rows, by)
        start = BASE + timedelta(seconds=rng.randrange(0, 2 * 86400))
        await assert_matches(store, rows, by, start, start + timedelta(hours=rng.randint(1, 30)))
        await assert_matches(store, rows, by, since=start)
        await assert_matches(store, rows, by, until=start)


@pytest.mark.asyncio
async def test_percentile_ties_and_small_groups(store: Store) -> None:
    # n = 20 equal latencies but two: p95 is the 19th (k = ceil(19.0)); n = 1 and n = 2 groups
    rows = [make_entry(i, model="m/many", latency_s=1.0) for i in range(18)]
    rows += [make_entry(18, model="m/many", latency_s=0.5), make_entry(19, model="m/many", latency_s=9.0)]
    rows += [make_entry(20, model="m/one", latency_s=2.5)]
    rows += [make_entry(21, model="m/two", latency_s=4.0), make_entry(22, model="m/two", latency_s=3.0)]
    await store.write(rows)
    found = await assert_matches(store, rows, "model")
    latencies = {g.label: (g.latency_p50_s, g.latency_p95_s) for g in found.groups}
    assert latencies == {"m/many": (1.0, 1.0), "m/one": (2.5, 2.5), "m/two": (3.0, 4.0)}


@pytest.mark.asyncio
async def test_money_is_exact_however_many_digits(store: Store) -> None:
    values = ["0.00000001875", "0.0000001234", "12345678901.000000000000000000001875",
              "0.000000000000000000000000000001", "99999999999999999.999999999999999999",
              "-0.00000001875", "1E-40"]
    rows = [make_entry(i, cost_usd=D(v), baseline_cost_usd=D(v) * 2) for i, v in enumerate(values)]
    rows += [make_entry(100 + i, cost_usd=D("0.1")) for i in range(10)]
    await store.write(rows)
    found = await assert_matches(store, rows, "model")
    with localcontext(EXACT):  # more than 28 digits: exact, not rounded
        expected = sum((D(v) for v in values), D("1.0"))
    assert found.total.tally.cost_usd == expected
    assert len(str(found.total.tally.cost_usd).replace(".", "").replace("-", "")) > 28


@pytest.mark.asyncio
async def test_sums_past_64_bits(store: Store) -> None:
    # each text fits a 64-bit integer once its point is dropped; their sum does not (SQLite: the
    # query runs again with the values in chunks)
    rows = [make_entry(i, cost_usd=D("9999999999999999.9"), baseline_cost_usd=D("9.9999999999999999"))
            for i in range(100)]
    await store.write(rows)
    found = await assert_matches(store, rows, "day")
    assert found.total.tally.cost_usd == D("999999999999999990.0")


@pytest.mark.asyncio
async def test_sqlite_refuses_money_text_it_cannot_sum(tmp_path: Any) -> None:
    store = SQLiteStore(tmp_path / "odd.db")
    try:
        await store.migrate()
        await store.write([make_entry(1)])
        await store.run(lambda conn: conn.execute("UPDATE llmroute_requests SET cost_usd = '1e-7'"))
        with pytest.raises(StoreError, match="not a plain decimal"):
            await store.aggregate("model")
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_query_by_experiment(store: Store) -> None:
    arms = ["exp:a", "exp:b", "EXP:a", "exp2:a", "expx:a", "exp", None, "new:control"]
    await store.write([make_entry(i, experiment_arm=arm) for i, arm in enumerate(arms)])
    assert [e.experiment_arm for e in await store.query(experiments=["exp"])] == ["exp:a", "exp:b"]
    found = await store.query(experiments=["exp", "new"], since=make_entry(1).ts)
    assert [e.experiment_arm for e in found] == ["exp:b", "new:control"]
    assert await store.query(experiments=[]) == []
    assert len(await store.query()) == len(arms)


@pytest.mark.asyncio
async def test_aggregate_of_one_key(store: Store) -> None:
    # An application key's dashboard: only its own rows, every number equal to the reference's over
    # them (a key never sees another key's requests); an unknown key sees an empty window.
    rows = random_ledger(7, 250)
    await store.write(rows)
    start = BASE + timedelta(hours=20)
    for key in ("team-a", "team-b"):
        own = [e for e in rows if e.key_name == key]
        for by in ("model", "policy", "key"):
            assert await store.aggregate(by, key=key) == aggregate_entries(own, by)
            inside = [e for e in own if e.ts >= start]
            assert await store.aggregate(by, start, key=key) == aggregate_entries(inside, by)
        labels = {g.label for g in (await store.aggregate("key", key=key)).groups}
        assert labels == {key}
    assert await store.aggregate("model", key="nobody") == aggregate_entries([], "model")

"""The dashboard's reads on SQLite and PostgreSQL, against references computed from the entries
themselves: the request explorer's pages (`explore.latest`) are the matching entries in (ts,
request_id) descending order, cut into pages with no loss or repeat, even across long runs of
tied timestamps and slices of every length; the series' buckets (`series.dashboard_series`) hold
exactly their entries' counts, money and ratings, for hour and day buckets and for one key."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from ledger_factories import BASE_TS, make_entry

from llmroute.ledger import LedgerEntry, SQLiteStore, Store
from llmroute.ledger.explore import Filters, latest
from llmroute.ledger.explore_sql import latest_sql
from llmroute.ledger.rollups import floor_to
from llmroute.ledger.series import dashboard_series
from llmroute.ledger.sqlite import _SQL as SQLITE_SQL


def ledger(seed: int, n: int, span_s: int) -> list[LedgerEntry]:
    """Entries over `span_s` seconds from BASE_TS on few distinct timestamps (ties), of three keys,
    two models, both statuses, every cache mark, priced or not, rated or not."""
    rng = random.Random(seed)
    moments = [BASE_TS + timedelta(seconds=rng.randrange(span_s)) for _ in range(max(1, n // 4))]
    return [make_entry(i, request_id=f"{rng.choice('abcXYZ')}{i:05d}", ts=rng.choice(moments),
                       key_name=rng.choice(["k1", "k2", None]), model=rng.choice(["m/a", "m/b"]),
                       status=rng.choice(["ok", "ok", "error"]), policy=rng.choice(["default", None]),
                       cache=rng.choice([None, "hit", "semantic", "miss", "bypass"]),
                       cost_usd=rng.choice([None, Decimal(rng.randrange(1, 10**6)) / 10**9]),
                       user_rating=rng.choice([None, 1, 4, 5])) for i in range(n)]


FILTERS = [Filters(), Filters(status="error"), Filters(key="k1", model="m/b"),
           Filters(cache="hit"), Filters(cache="miss", key="k2", status="ok"), Filters(model="none"),
           Filters(policy="default", status="ok"), Filters(policy="none")]


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(2))
async def test_explorer_pages_are_the_matches_newest_first(store: Store, seed: int) -> None:
    rows = ledger(seed, 400, 6 * 3600)
    await store.write(rows)
    since, until = BASE_TS + timedelta(minutes=30), BASE_TS + timedelta(hours=5)
    for filters in FILTERS:
        expected = sorted((e for e in rows if since <= e.ts < until and filters.match(e)),
                          key=lambda e: (e.ts, e.request_id), reverse=True)
        for limit in (1, 7, 50, 200):
            seen, cursor = [], None
            while True:
                page = await latest(store, since, until, filters, limit, cursor)
                assert len(page.entries) <= limit
                seen += [e.request_id for e in page.entries]
                if page.next is None:
                    break
                cursor = page.next
            assert seen == [e.request_id for e in expected], (filters, limit)


@pytest.mark.asyncio
async def test_series_buckets_hold_their_entries(store: Store) -> None:
    rows = ledger(7, 500, 3 * 86400)
    await store.write(rows)
    for hours, grain in ((40, "hour"), (72, "day")):
        since = BASE_TS + timedelta(minutes=17)
        until = since + timedelta(hours=hours)
        for key in (None, "k1"):
            found = await dashboard_series(store, since, until, key, {"k1": "t", "k2": "t"})
            assert found.bucket == grain
            inside = [e for e in rows if since <= e.ts < until and key in (None, e.key_name)]
            for point in found.points:
                mine = [e for e in inside if floor_to(e.ts, grain) == point.start]
                rated = [e.user_rating for e in mine if e.user_rating is not None]
                assert (point.requests, point.errors, point.rated) == (
                    len(mine), sum(e.status == "error" for e in mine), len(rated))
                assert Decimal(point.cost_usd) == sum(e.cost_usd or Decimal(0) for e in mine)
                assert point.mean_rating == (sum(rated) / len(rated) if rated else None)
                assert point.fallbacks == sum(e.fallback for e in mine)
            assert sum(p.requests for p in found.points) == len(inside)
            spend = {s.name: s.requests for s in found.keys}
            if key is None:
                assert spend == {k or "(none)": sum(e.key_name == k for e in inside)
                                 for k in ("k1", "k2", None)}
                assert {s.name: s.requests for s in found.teams} == {
                    "t": sum(e.key_name in ("k1", "k2") for e in inside),
                    "(none)": sum(e.key_name is None for e in inside)}
            else:
                assert spend == {"k1": len(inside)} and found.teams == ()


@pytest.mark.asyncio
async def test_sqlite_filters_probe_an_index_not_the_window(tmp_path: Path) -> None:
    """Each filter the explorer's SQL tests has an index on (column, ts) to walk backwards; the
    unfiltered page walks the ts index: no plan scans the table or sorts the whole window."""
    store = SQLiteStore(tmp_path / "plan.db")
    await store.migrate()
    since, until = BASE_TS, BASE_TS + timedelta(days=7)
    cases = [(Filters(), "llmroute_requests_ts"), (Filters(model="m"), "llmroute_requests_model_ts"),
             (Filters(key="k"), "llmroute_requests_key_ts"),
             (Filters(policy="p"), "llmroute_requests_policy_ts"),
             (Filters(status="error"), "llmroute_requests_status_ts"),
             (Filters(cache="hit"), "llmroute_requests_cache_ts")]
    for filters, index in cases:
        for before in (None, (BASE_TS + timedelta(days=1), "req-x")):
            sql, params = latest_sql(SQLITE_SQL, "SELECT * FROM llmroute_requests", since, until,
                                     filters, 51, before)
            plan = " | ".join(str(row[-1]) for row in await store.run(
                lambda conn, s=sql, p=params: conn.execute(f"EXPLAIN QUERY PLAN {s}", p).fetchall()))
            assert f"USING INDEX {index} " in plan, (filters, plan)
            assert "SCAN llmroute_requests" not in plan.replace(f"USING INDEX {index}", ""), plan
            assert "TEMP B-TREE FOR ORDER BY" not in plan, plan
    await store.close()

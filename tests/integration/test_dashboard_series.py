"""The dashboard's time series and spend tables through the real server: the hand-worked report
ledger (tests/helpers.py, six requests over 15 hours, three keys) moved into the last day; the
buckets, the spend per key and per team checked against hand-computed numbers; an application
key sees its own only; a real Chromium draws the charts and tables with human timestamps."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from helpers import REPORT_BASE, hand_worked_report
from llmroute.ledger import open_store
from llmroute.ledger.entry import LedgerEntry
from llmroute.server.auth import hash_key

from .browser import CHROMIUM, dashboard_dom
from .support import GatewayServer, Serve
from .test_ledger import ledger_config

ADMIN, APP_A = "lr-series-admin-1f", "lr-series-team-a-2e"
KEYS: dict[str, Any] = {"keys": [
    {"name": "ops", "hash": hash_key(ADMIN), "role": "admin"},
    {"name": "team-a", "hash": hash_key(APP_A), "team": "alpha"},
    {"name": "team-b", "hash": hash_key("lr-series-team-b-3d"), "team": "beta"},
]}


def filled(serve: Serve, tmp_path: Path, cache: Mapping[str, str] | None = None,
           text: Mapping[str, tuple[str, str]] | None = None) -> tuple[GatewayServer, datetime]:
    """A gateway whose ledger holds the hand-worked report, its first request 18 whole hours
    before the current hour (with `cache`: these requests' response-cache marks, `text`: their
    prompt and response texts); that first request's hour."""
    gw = serve({**KEYS, **ledger_config(tmp_path)})
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=18)
    marks, texts = dict(cache or {}), dict(text or {})
    rows = [dataclasses.replace(e, ts=base + (e.ts - REPORT_BASE), cache=marks.get(e.request_id),
                                prompt_text=texts.get(e.request_id, (None, None))[0],
                                response_text=texts.get(e.request_id, (None, None))[1])
            for e in hand_worked_report()]

    async def fill(entries: list[LedgerEntry]) -> None:
        store = open_store(ledger_config(tmp_path)["ledger"]["url"])
        await store.write(entries)
        await store.close()

    asyncio.run(fill(rows))
    return gw, base


def get(gw: GatewayServer, key: str, since: str) -> dict[str, Any]:
    with gw.http() as http:
        answer = http.get("/dashboard/data", params={"since": since},
                          headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def busy(points: list[dict[str, Any]]) -> dict[str, tuple[int, int, Decimal, float | None]]:
    return {p["start"]: (p["requests"], p["errors"], Decimal(p["cost_usd"]), p["mean_rating"])
            for p in points if p["requests"]}


def test_series_and_spend_match_the_hand_worked_ledger(serve: Serve, tmp_path: Path) -> None:
    gw, base = filled(serve, tmp_path)
    day = get(gw, ADMIN, "24h")["series"]
    assert day["bucket"] == "hour"
    starts = [datetime.fromisoformat(p["start"]) for p in day["points"]]
    assert len(starts) in (25, 26) and starts == sorted(starts)  # every hour of the window
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(starts))
    D = Decimal
    at = {h: (base + timedelta(hours=h)).isoformat() for h in (0, 1, 12, 13, 14, 15)}
    assert busy(day["points"]) == {  # hand-computed from tests/helpers.py's six requests
        at[0]: (1, 0, D("0.10"), 4.0), at[1]: (1, 0, D("0.20"), 2.0),
        at[12]: (1, 0, D("0.90"), 5.0), at[13]: (1, 0, D(0), 3.0),
        at[14]: (1, 1, D(0), None), at[15]: (1, 0, D("0.05"), None)}
    keys = {k["name"]: (k["requests"], k["errors"], D(k["cost_usd"])) for k in day["keys"]}
    assert keys == {"team-a": (3, 0, D("0.35")), "team-b": (2, 0, D("0.90")),
                    "(none)": (1, 1, D(0))}
    teams = {t["name"]: (t["requests"], t["errors"], D(t["cost_usd"])) for t in day["teams"]}
    assert teams == {"alpha": (3, 0, D("0.35")), "beta": (2, 0, D("0.90")), "(none)": (1, 1, D(0))}

    week = get(gw, ADMIN, "7d")["series"]
    assert week["bucket"] == "day" and len(week["points"]) == 8
    by_day: dict[str, int] = {}  # the six requests' UTC days
    for hours in (0, 1, 12.5, 13, 14, 15):
        start = (base + timedelta(hours=hours)).replace(hour=0, minute=0).isoformat()
        by_day[start] = by_day.get(start, 0) + 1
    assert {s: r for s, (r, _, _, _) in busy(week["points"]).items()} == by_day
    assert sum(Decimal(p["cost_usd"]) for p in week["points"]) == D("1.25")


def test_an_app_key_sees_only_its_own_series_and_spend(serve: Serve, tmp_path: Path) -> None:
    gw, base = filled(serve, tmp_path)
    own = get(gw, APP_A, "24h")
    assert own["role"] == "app"
    series = own["series"]
    at = {h: (base + timedelta(hours=h)).isoformat() for h in (0, 1, 15)}
    assert busy(series["points"]) == {at[0]: (1, 0, Decimal("0.10"), 4.0),
                                      at[1]: (1, 0, Decimal("0.20"), 2.0),
                                      at[15]: (1, 0, Decimal("0.05"), None)}
    assert [k["name"] for k in series["keys"]] == ["team-a"] and "teams" not in series
    assert "team-b" not in str(own) and "beta" not in str(own)


def test_a_real_browser_draws_the_series_and_spend_with_human_times(serve: Serve,
                                                                   tmp_path: Path) -> None:
    if CHROMIUM is None:  # the page itself needs the real browser (installed by .ci/run)
        return
    gw, _ = filled(serve, tmp_path)
    dom = dashboard_dom(tmp_path / "profile-series", f"{gw.url}/dashboard", ADMIN,
                        ready="document.querySelectorAll('#series-requests rect.bar').length > 0")
    chart = re.search(r'<svg id="series-requests".*?</svg>', dom, re.S)
    assert chart is not None and chart.group(0).count('class="bar"') in (25, 26), dom[-3000:]
    # six hours with a request: six bars of non-zero height in the requests chart
    heights = re.findall(r'height="([0-9.]+)" fill="#4c72b0" class="bar"', chart.group(0))
    assert sum(1 for h in heights if float(h) > 0) == 6, heights
    assert "one bar per hour" in dom
    keys = re.search(r'id="spend-keys"[^>]*>(.*?)</tbody>', dom, re.S)
    assert keys is not None and "<td>team-a</td><td>3</td><td>0</td><td>$0.35</td>" in keys.group(1)
    teams = re.search(r'id="spend-teams"[^>]*>(.*?)</tbody>', dom, re.S)
    assert teams is not None and "<td>beta</td><td>2</td><td>0</td><td>$0.90</td>" in teams.group(1)
    # the status line's window in local time, with how long ago it starts
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d \(24 h ago\) to \d{4}-\d\d-\d\d \d\d:\d\d "
                     r"\(just now\)", dom), dom[:3000]
    status = re.search(r'id="status"[^>]*>([^<]*)<', dom)
    assert status is not None and "+00:00" not in status.group(1)  # no raw ISO string

"""The live dashboard through the real server: key checks (a bearer header, or the login form's
session: tests/integration/test_dashboard_login.py; never `?key=`), the JSON numbers against the
ledger, the ledger-disabled answers, and the page rendered by a real headless Chromium that logs in
through the form."""

from __future__ import annotations

import re
import struct
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmroute.ledger.entry import money_text
from llmroute.reports.aggregate import build_report
from llmroute.reports.render import COLUMNS, fmt_usd, row, summary_dict
from llmroute.server.auth import hash_key

from .browser import CHROMIUM, dashboard_dom
from .support import GatewayServer, Serve, assert_openai_error, user
from .test_ledger import ledger_config, wait_for_entries

KEY = "lr-dashboard-key"
KEYS: dict[str, Any] = {"keys": [{"name": "ops", "hash": hash_key(KEY), "role": "admin"}]}
BEARER = {"authorization": f"Bearer {KEY}"}


def keyed_with_ledger(serve: Serve, tmp_path: Path) -> GatewayServer:
    return serve({**KEYS, **ledger_config(tmp_path)})


def send(gw: GatewayServer, models: list[str]) -> Decimal:
    """One chat request per model; the total of the cost headers."""
    total = Decimal(0)
    with gw.client(KEY) as client:
        for i, model in enumerate(models):
            raw = client.chat.completions.with_raw_response.create(
                model=model, messages=user(f"dashboard request {i}"))
            total += Decimal(raw.headers["x-llmroute-cost-usd"])
    return total


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert assert_openai_error(response.json())["type"] == "authentication_error"


def test_dashboard_needs_a_gateway_key(serve: Serve, tmp_path: Path) -> None:
    gw = keyed_with_ledger(serve, tmp_path)
    with gw.http() as http:
        for path in ("/dashboard", "/dashboard/data"):
            assert_unauthorized(http.get(path, headers={"authorization": "Bearer lr-wrong"}))
            for value in (KEY, "lr-wrong", ""):  # a key in a URL is refused, right or wrong
                refused = http.get(path, params={"key": value})
                assert refused.status_code == 400, refused.text
                error = assert_openai_error(refused.json())
                assert (error["code"], error["param"]) == ("key_in_url", "key")
                assert "log in" in error["message"] and KEY not in refused.text
        assert_unauthorized(http.get("/dashboard/data"))
        form = http.get("/dashboard")  # no credentials: the login form, and no data script
        assert form.status_code == 200 and '<form id="login" method="post"' in form.text
        assert 'type="password"' in form.text and "<script>" not in form.text
        page = http.get("/dashboard", headers=BEARER)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script>" in html and "dashboard/data?since=" in html
    for window in ("1h", "24h", "7d"):
        assert f'value="{window}"' in html
    # self-contained: nothing is loaded from anywhere, and the CSP forbids it anyway
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in page.headers["content-security-policy"]
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the login
    # form's POST, which the CSRF check must refuse; the page never sends a referrer elsewhere
    assert page.headers["referrer-policy"] == "same-origin"


def test_dashboard_data_matches_the_ledger(serve: Serve, tmp_path: Path) -> None:
    gw = keyed_with_ledger(serve, tmp_path)
    models = ["fake/mini", "fake/mini", "fake/big", "anthropic-ish/claude"]
    cost = send(gw, models)
    found = wait_for_entries(tmp_path, len(models))
    assert len(found) == len(models)
    with gw.http() as http:
        response = http.get("/dashboard/data", params={"since": "1h"}, headers=BEARER)
        assert response.status_code == 200, response.text
        body = response.json()
        week = http.get("/dashboard/data", params={"since": "7d"}, headers=BEARER).json()
        default = http.get("/dashboard/data", headers=BEARER).json()
        bad = http.get("/dashboard/data", params={"since": "yesterday-ish"}, headers=BEARER)
    total = body["total"]
    assert total["requests"] == len(models) and total["errors"] == 0
    assert Decimal(total["cost_usd"]) == cost == sum(e.cost_usd or Decimal(0) for e in found)
    assert total["cost_usd"] == money_text(cost)
    assert {m["model"]: m["requests"] for m in total["model_mix"]} == {
        "fake/mini": 2, "fake/big": 1, "anthropic-ish/claude": 1}
    expected = build_report(found, "model", "fake/big")
    assert total == summary_dict(expected.total)
    assert [g["label"] for g in body["groups"]] == [s.label for s in expected.groups]
    # the page shows the report's own text, cell for cell
    assert body["text"]["total"] == dict(zip(COLUMNS, row(expected.total), strict=True))
    assert body["text"]["groups"] == [dict(zip(COLUMNS, row(s), strict=True))
                                      for s in expected.groups]
    assert body["baseline"] == "fake/big" and body["headline"].startswith("This traffic cost $")
    assert week["total"] == total and default["total"] == total
    assert bad.status_code == 400
    assert assert_openai_error(bad.json())["param"] == "since"


def test_dashboard_plane_has_each_model_the_routed_traffic_and_the_lab(serve: Serve,
                                                                         tmp_path: Path) -> None:
    from llmroute.reports.plane import LabFrontier, PlanePoint

    gw = keyed_with_ledger(serve, tmp_path)
    lab = LabFrontier("held-out prompts", "fake/big", (
        PlanePoint("fake/big", "lab-model", 0.004, 0.9, 10, "always this model"),
        PlanePoint("default (held-out half)", "lab-policy", 0.001, 0.86, 5, "half")))
    gw.app.state.frontier = lab
    with gw.client(KEY) as client:
        ids = [client.chat.completions.with_raw_response.create(
            model=model, messages=user(text)).headers["x-llmroute-request-id"]
            for model, text in (("auto", "hi"), ("auto", "hello"), ("fake/big", "a big one"))]
    wait_for_entries(tmp_path, len(ids))
    with gw.http() as http:
        for request_id, success in zip(ids, (True, False, True), strict=True):
            answer = http.post("/v1/feedback", json={"request_id": request_id, "success": success},
                               headers=BEARER)
            assert answer.status_code == 200, answer.text
        body = http.get("/dashboard/data", params={"since": "1h"}, headers=BEARER).json()
        page = http.get("/dashboard", headers=BEARER).text
    plane = body["plane"]
    by_label = {(p["kind"], p["label"]): p for p in plane["points"]}
    routed = by_label[("ledger-routed", "policy default")]  # the two `auto` requests
    assert routed["requests"] == 2 and routed["quality"] == 0.5
    assert ("ledger-model", "fake/big") in by_label
    assert ("lab-model", "fake/big") in by_label and ("lab-policy", "default (held-out half)") in by_label
    assert plane["measured_on"] == "held-out prompts"
    assert set(plane["kinds"]) == {"ledger-model", "ledger-routed", "lab-model", "lab-curve",
                                   "lab-policy"}
    assert '<svg id="plane"' in page and "requests it <em>served</em>" in page
    if CHROMIUM is not None:  # the page draws them: a real browser runs its script
        dom = dashboard_dom(tmp_path / "profile-plane", f"{gw.url}/dashboard", KEY,
                            ready="document.querySelector('.pt.lab-policy')")
        for kind in ("ledger-model", "ledger-routed", "lab-model", "lab-policy"):
            assert f'class="pt {kind}"' in dom, (kind, dom[-3000:])
        assert "Lab points: held-out prompts." in dom


def test_dashboard_without_a_ledger(serve: Serve) -> None:
    gw = serve(KEYS)
    with gw.http() as http:
        page = http.get("/dashboard", headers=BEARER)
        data = http.get("/dashboard/data", headers=BEARER)
        assert_unauthorized(http.get("/dashboard/data"))
    assert page.status_code == 200 and "ledger is disabled" in page.text
    assert data.status_code == 503
    assert assert_openai_error(data.json())["code"] == "ledger_disabled"


# -- a real browser --------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of raw pixel bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert data[:8] == PNG_SIGNATURE
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw, stride, rows = zlib.decompress(idat), width * bpp, []
    prior = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prior[x], prior[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prior = line
    return width, height, rows


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install "
                    "chromium): the real-browser check of /dashboard needs it")
def test_dashboard_renders_live_data_in_a_real_browser(serve: Serve, tmp_path: Path) -> None:
    gw = keyed_with_ledger(serve, tmp_path)
    models = ["fake/mini", "fake/mini", "fake/mini", "fake/big", "fake/mid"]
    cost = send(gw, models)
    assert len(wait_for_entries(tmp_path, len(models))) == len(models)
    shot = tmp_path / "dash.png"

    # a person opens /dashboard (no key in any URL), logs in through the form, sees live numbers
    dom = dashboard_dom(tmp_path / "profile-dom", f"{gw.url}/dashboard", KEY, screenshot=shot)
    assert KEY not in dom
    requests = re.search(r'id="requests"[^>]*>([^<]*)<', dom)
    assert requests is not None and requests.group(1) == str(len(models)), dom[-3000:]
    assert re.search(r'id="rows"[^>]*>.*<td>fake/mini</td><td>3</td>', dom, re.S)
    assert re.search(rf'id="cost"[^>]*>{re.escape(fmt_usd(cost))}<', dom)
    mix = re.search(r'<svg id="mix".*?</svg>', dom, re.S)
    assert mix is not None and mix.group(0).count("<rect") == 3  # one bar per model
    assert "This traffic cost $" in dom and "Updated " in dom and 'id="logout"' in dom

    assert shot.exists()
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, len(data)
    width, height, rows = png_pixels(data)
    assert (width, height) == (1280, 900)
    bpp = len(rows[0]) // width
    colours = {row[x:x + 3] for row in rows[::4] for x in range(0, len(row), bpp * 4)}
    assert len(colours) > 8, f"the screenshot is (nearly) flat: {len(colours)} colours"


def test_dashboard_data_has_experiments_and_alerts(serve: Serve, tmp_path: Path) -> None:
    import asyncio
    from datetime import UTC, datetime

    from llmroute.control.alert_store import record_alert
    from llmroute.control.alerts import Alert
    from llmroute.ledger import open_store

    experiment = {"name": "dash", "control": "a", "sticky_by": "user",
                  "arms": {"a": {"policy": "rules"}, "b": {"policy": "cheap"}}}
    gw = serve({**KEYS, **ledger_config(tmp_path), "experiments": [experiment]})
    users = [f"user-{i}" for i in range(12)]
    with gw.client(KEY) as client:
        arms = [client.chat.completions.with_raw_response.create(
                    model="auto/rules", messages=user("hello"), user=u
                ).headers["x-llmroute-experiment"] for u in users]
    found = wait_for_entries(tmp_path, len(users))
    assert sorted(e.experiment_arm or "" for e in found) == sorted(arms)
    ledger = ledger_config(tmp_path)["ledger"]["url"]

    async def alert() -> None:
        store = open_store(ledger)
        await record_alert(store, Alert("spend", "limit", "warning", "global", "spend at 80%", {},
                                        datetime.now(UTC), "k"), delivered=True)
        await store.close()

    asyncio.run(alert())
    with gw.http() as http:
        body = http.get("/dashboard/data", params={"since": "1h"}, headers=BEARER).json()
    [report] = body["experiments"]
    assert report["name"] == "dash" and report["control"] == "a"
    counts = {a["arm"]: a["requests"] for a in report["arms"]}
    assert counts == {"a": arms.count("dash:a"), "b": arms.count("dash:b")}
    assert report["arms"][1]["verdicts"]["error_rate"] == "not enough data yet"
    assert [(a["rule"], a["message"]) for a in body["alerts"]] == [("spend", "spend at 80%")]
    if CHROMIUM is None:  # the page itself needs the real browser (installed by .ci/run)
        return
    dom = dashboard_dom(tmp_path / "profile-panels", f"{gw.url}/dashboard", KEY)
    panel = re.search(r'id="experiments"[^>]*>(.*?)</tbody>', dom, re.S)
    assert panel is not None and panel.group(1).count("<tr>") == 2, dom[-3000:]
    assert "<td>dash (running)</td><td>a</td><td>rules</td>" in panel.group(1)
    assert re.search(r'id="alerts"[^>]*>.*<td>spend at 80%</td>', dom, re.S)


def test_dashboard_shows_caching_beside_routing(serve: Serve, tmp_path: Path) -> None:
    """The hand-worked caching ledger (tests/ledger/test_ledger_caching.py), moved into the last
    hours: the data carries the report's caching numbers and text, and a real browser shows the
    savings from caching beside those from routing, the hit rate, the tokens and the table."""
    import asyncio
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from helpers import REPORT_BASE, hand_worked_caching
    from llmroute.ledger import open_store
    from llmroute.reports.caching import caching_text

    gw = keyed_with_ledger(serve, tmp_path)
    start = datetime.now(UTC) - timedelta(hours=6)
    rows = [dataclasses.replace(e, ts=start + (e.ts - REPORT_BASE)) for e in hand_worked_caching()]

    async def fill() -> None:
        store = open_store(ledger_config(tmp_path)["ledger"]["url"])
        await store.write(rows)
        await store.close()

    asyncio.run(fill())
    with gw.http() as http:
        body = http.get("/dashboard/data", params={"since": "24h"}, headers=BEARER).json()
    expected = build_report(rows, "model")
    assert body["caching"] == caching_text(expected)
    assert body["total"] == summary_dict(expected.total)
    caching = body["total"]["caching"]
    assert (caching["hit_rate"], caching["cached_tokens"], caching["cache_write_tokens"]) == (
        0.4, 1512, 2048)
    assert (caching["caching_saved_usd"], caching["routing_saved_usd"]) == ("1.000516", "1.70")
    assert body["caching"]["rows"][-1] == ["total", "1", "1", "3", "1", "40.0%", "1,512", "2,048",
                                           "$1.00", "$0.000516", "$1.70"]
    if CHROMIUM is None:  # the page itself needs the real browser (installed by .ci/run)
        return
    dom = dashboard_dom(tmp_path / "profile-caching", f"{gw.url}/dashboard", KEY)
    for card, value in (("caching-saved", "$1.00"), ("routing-saved", "$1.70"),
                        ("hit-rate", "40.0%"), ("exact-rate", "20.0%"),
                        ("semantic-rate", "20.0%"),
                        ("cached-tokens", "1,512"), ("written-tokens", "2,048"),
                        ("savings", "58.62%")):
        assert re.search(rf'id="{card}"[^>]*>{re.escape(value)}<', dom), (card, dom[-3000:])
    assert "$1.70 from routing; $1.00 from caching" in dom
    table = re.search(r'id="cache-rows"[^>]*>(.*?)</tbody>', dom, re.S)
    assert table is not None and table.group(1).count("<tr>") == 4, dom[-3000:]
    assert ("<td>m/big</td><td>0</td><td>1</td><td>1</td><td>0</td><td>50.0%</td><td>0</td>"
            "<td>2,048</td><td>$0.90</td><td>-$0.000768</td><td>$0.00</td>") in table.group(1)
    assert "<td>total</td><td>1</td><td>1</td><td>3</td><td>1</td><td>40.0%</td>" in table.group(1)

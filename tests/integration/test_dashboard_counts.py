"""Issue 16's counts through the real gateway, with the OpenAI SDK against the loopback fakes: a
priced answer, an answer by a fallback after the first model failed twice, an answer from an
unpriced model, and two failures that made no paid call. The ledger marks each one, the dashboard's
report counts exactly one unpriced request (the failures cost nothing) and one fallback, its time
series shows the fallback in its hour, and a real Chromium draws the fallbacks chart."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from llmroute.server.auth import hash_key
from llmroute.testing.behaviours import bad_request, server_error
from llmroute.testing.upstream import FakeUpstream

from .browser import CHROMIUM, dashboard_dom
from .support import GatewayServer, Serve, user
from .test_ledger import ledger_config, wait_for_entries

ADMIN = "lr-counts-admin-7c"
CONFIG: dict[str, Any] = {
    "keys": [{"name": "ops", "hash": hash_key(ADMIN), "role": "admin"}],
    "models": {"fake/free": {"deployment": "fake", "upstream_name": "free-up"}},
}


def _traffic(gw: GatewayServer, up: FakeUpstream) -> dict[str, str]:
    """The five requests; their request ids by what they are."""
    ids: dict[str, str] = {}
    with gw.client(ADMIN) as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("hi"))
        ids["priced"] = raw.headers["x-llmroute-request-id"]
        up.script("mini-up", server_error(500), server_error(500))
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=user("again"))
        ids["fallback"] = raw.headers["x-llmroute-request-id"]
        assert raw.parse().model != "fake/mini" and raw.headers["x-llmroute-cost-usd"] != "unpriced"
        raw = client.chat.completions.with_raw_response.create(model="fake/free", messages=user("x"))
        ids["unpriced"] = raw.headers["x-llmroute-request-id"]
        assert raw.headers["x-llmroute-cost-usd"] == "unpriced"
        up.script("mid-up", bad_request("nope"))
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="fake/mid", messages=user("bad"))
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="no/such-model", messages=user("x"))
    return ids


def _data(gw: GatewayServer) -> dict[str, Any]:
    with gw.http() as http:
        answer = http.get("/dashboard/data", params={"since": "24h"},
                          headers={"authorization": f"Bearer {ADMIN}"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_the_gateway_counts_unpriced_and_fallbacks_exactly(serve: Serve, up: FakeUpstream,
                                                          tmp_path: Path) -> None:
    gw = serve({**CONFIG, **ledger_config(tmp_path)})
    ids = _traffic(gw, up)
    found = {e.request_id: e for e in wait_for_entries(tmp_path, 5)}
    assert len(found) == 5
    marks = {rid: (e.status, e.cost_usd is None, e.unpriced, e.fallback) for rid, e in found.items()}
    assert marks.pop(ids["priced"]) == ("ok", False, False, False)
    assert marks.pop(ids["fallback"]) == ("ok", False, False, True)
    assert marks.pop(ids["unpriced"]) == ("ok", True, True, False)
    assert sorted(marks.values()) == [("error", True, False, False)] * 2  # no paid call: no cost

    data = _data(gw)
    total = data["total"]
    assert (total["requests"], total["errors"], total["priced"]) == (5, 2, 2)
    assert (total["unpriced"], total["fallbacks"]) == (1, 1)
    assert "plus 1 unpriced request" in data["headline"] and "failed" not in data["headline"]
    points = data["series"]["points"]
    assert sum(p["fallbacks"] for p in points) == 1 and sum(p["requests"] for p in points) == 5
    hour = next(p for p in points if p["fallbacks"])
    assert hour["requests"] >= 1 and Decimal(hour["cost_usd"]) > 0
    with gw.http() as http:
        metrics = http.get("/metrics", headers={"authorization": f"Bearer {ADMIN}"}).text
    fallbacks = re.findall(r'^llmroute_fallbacks_total\{[^}]*\} ([0-9.]+)$', metrics, re.M)
    assert sum(float(v) for v in fallbacks) == 1.0  # the metric and the ledger agree

    if CHROMIUM is None:  # the page itself needs the real browser (installed by .ci/run)
        return
    dom = dashboard_dom(tmp_path / "profile-counts", f"{gw.url}/dashboard", ADMIN,
                        ready="document.querySelectorAll('#series-fallbacks rect.bar').length > 0")
    chart = re.search(r'<svg id="series-fallbacks".*?</svg>', dom, re.S)
    assert chart is not None, dom[-3000:]
    heights = re.findall(r'height="([0-9.]+)" fill="#4c72b0" class="bar"', chart.group(0))
    assert sum(1 for h in heights if float(h) > 0) == 1, heights  # one hour had the fallback
    assert re.search(r"<title>[^<]*: 1</title>", chart.group(0))
    assert "answered by a fallback" in dom
